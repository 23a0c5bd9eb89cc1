"""The IDE Agent sidebar in a real JupyterLab, in Chromium, against the fake OpenAI server.

Run: ``pytest ui-tests -m browser`` (screenshots land in ui-tests/artifacts/). Skipped when
/usr/bin/chromium or playwright is missing, unless IDE_AGENT_REQUIRE_BROWSER is set.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.base import ScriptedTool, ScriptedTurn

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SIDEBAR = "#jp-ide-agent-sidebar"
PROMPT = f"{SIDEBAR} .jp-IDEAgent-input"
# The environment must not leak real keys or endpoints into the server under test.
NO_PROVIDER_ENV: dict[str, str | None] = {
    name: None
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "GEMINI_API_KEY",
                 "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "XAI_API_KEY", "XAI_API_HOST")
}


def shot(page: Any, name: str) -> Path:
    """The whole page, plus the sidebar alone (``<name>-sidebar.png``) when it is shown."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    sidebar = page.locator(SIDEBAR)
    if sidebar.is_visible():
        sidebar.screenshot(path=str(ARTIFACTS / f"{name}-sidebar.png"))
    return path


def open_lab(page: Any, lab: Any) -> None:
    page.goto(lab.lab_url())
    # our plugin activated = its tab is in the right sidebar
    page.locator(f'.jp-SideBar li[data-id="{SIDEBAR[1:]}"]').wait_for(state="attached", timeout=60000)
    page.locator(".jp-Launcher").first.wait_for()


def run_from_palette(page: Any, query: str, label: str) -> list[str]:
    """Open the command palette, search, click the item labelled ``label``; return the labels found."""
    search = page.locator("#modal-command-palette .lm-CommandPalette-input")
    for _ in range(5):  # the shortcut can be swallowed while an editor or a dialog has focus
        page.keyboard.press("Escape")
        page.keyboard.press("Control+Shift+C")
        try:
            search.wait_for(timeout=5000)
            break
        except Exception:  # noqa: BLE001 - retried, then the final wait below reports it
            continue
    search.wait_for()
    search.fill(query)
    items = page.locator("#modal-command-palette .lm-CommandPalette-item:not(.lm-mod-hidden)"
                         " .lm-CommandPalette-itemLabel")
    items.first.wait_for()
    labels = [t.strip() for t in items.all_inner_texts()]
    items.filter(has_text=label).first.click()
    return labels


def assistant_text(page: Any) -> str:
    return page.locator(f"{SIDEBAR} .jp-IDEAgent-assistant").last.inner_text()


def send(page: Any, text: str) -> None:
    page.locator(PROMPT).fill(text)
    page.locator(PROMPT).press("Enter")


def test_conversation_streams_tools_and_stops(start_lab: Any, fake_openai: Any, page: Any) -> None:
    fake_openai.reset()
    lab = start_lab(
        [
            f"c.IDEAgent.providers = {{'openai': {{'base_url': {fake_openai.base_url!r}, 'api_key': 'test'}}}}",
            "c.IDEAgent.main_model = 'openai:gpt-5'",
        ],
        NO_PROVIDER_ENV,
    )
    (lab.root / "hello.txt").write_text("hi\n")
    open_lab(page, lab)
    shot(page, "01-lab-loaded")

    labels = run_from_palette(page, "IDE Agent", "IDE Agent: Open")
    assert "IDE Agent: Open" in labels and "IDE Agent: New Session" in labels, labels
    page.locator(PROMPT).wait_for()
    assert page.locator(f"{SIDEBAR} .jp-IDEAgent-model").inner_text() == "openai:gpt-5"
    page.locator(f"{SIDEBAR} .jp-IDEAgent-connection.jp-mod-open").wait_for()
    shot(page, "02-sidebar-open")

    # --- a turn with reasoning, one tool call, then a streamed markdown answer -----------------
    answer = "The folder holds **hello.txt** and nothing else, so there is exactly one file to read."
    fake_openai.script(
        ScriptedTurn(reasoning="I will list the folder first.", tool_calls=[ScriptedTool("ListDir", {"path": "."})]),
        ScriptedTurn(text=answer, chunks=14, chunk_delay=0.25, input_tokens=120, output_tokens=30),
    )
    send(page, "What is in this folder?")
    assert page.locator(PROMPT).input_value() == ""  # Enter sent it and cleared the box
    page.locator(f"{SIDEBAR} .jp-IDEAgent-user").filter(has_text="What is in this folder?").wait_for()

    tool = page.locator(f"{SIDEBAR} .jp-IDEAgent-tool").filter(has_text="ListDir")
    tool.locator(".jp-IDEAgent-toolStatus").filter(has_text="done").wait_for()
    assert "hello.txt" in tool.locator(".jp-IDEAgent-toolResult").inner_text()

    # streamed: we see a partial answer before the full one
    page.wait_for_function(
        """([sel, end]) => {
             const nodes = document.querySelectorAll(sel);
             const t = nodes.length ? nodes[nodes.length - 1].innerText.trim() : '';
             return t.length > 0 && !t.includes(end);
           }""",
        arg=[f"{SIDEBAR} .jp-IDEAgent-assistant", "exactly one file to read."],
        timeout=20000,
    )
    shot(page, "03-streaming")
    page.locator(f"{SIDEBAR} .jp-IDEAgent-assistant").filter(has_text="exactly one file to read.").wait_for()
    # rendered as markdown by JupyterLab's renderer
    bold = page.locator(f"{SIDEBAR} .jp-IDEAgent-assistant .jp-RenderedMarkdown strong").first
    assert bold.inner_text() == "hello.txt"
    usage = page.locator(f"{SIDEBAR} .jp-IDEAgent-usage").last
    usage.wait_for()
    assert " in" in usage.inner_text() and " out" in usage.inner_text()
    page.locator(f"{SIDEBAR} .jp-IDEAgent-stop").wait_for(state="detached")
    reasoning = page.locator(f"{SIDEBAR} details.jp-IDEAgent-reasoning")
    assert reasoning.count() == 1 and reasoning.get_attribute("open") is None  # collapsed
    shot(page, "04-answer")

    # --- reload: the same session comes back, replayed once (no duplicates) ---------------------
    page.reload()
    page.locator(".jp-Launcher").first.wait_for(timeout=60000)
    if not page.locator(PROMPT).is_visible():
        run_from_palette(page, "IDE Agent: Open", "IDE Agent: Open")
    page.locator(f"{SIDEBAR} .jp-IDEAgent-assistant").filter(has_text="exactly one file to read.").wait_for()
    assert page.locator(f"{SIDEBAR} .jp-IDEAgent-user").count() == 1
    assert page.locator(f"{SIDEBAR} .jp-IDEAgent-tool").count() == 1
    assert assistant_text(page).count("exactly one file to read.") == 1

    # --- a slow turn, stopped with the Stop button -----------------------------------------------
    slow = " ".join(f"word{i}" for i in range(400))
    fake_openai.script(ScriptedTurn(text=slow, chunks=200, chunk_delay=0.2))
    send(page, "Write something very long.")
    stop = page.locator(f"{SIDEBAR} .jp-IDEAgent-stop")
    stop.wait_for()
    page.locator(f"{SIDEBAR} .jp-IDEAgent-assistant").filter(has_text="word1").wait_for()
    shot(page, "05-running")
    stop.click()
    page.locator(f"{SIDEBAR} .jp-IDEAgent-doneNote").filter(has_text="Stopped").wait_for(timeout=15000)
    stop.wait_for(state="detached")
    assert "word399" not in assistant_text(page)
    shot(page, "06-stopped")

    # --- a provider error is shown in the conversation ------------------------------------------
    fake_openai.script(ScriptedTurn(status=401, error_message="Incorrect API key provided"))
    send(page, "This one fails.")
    page.locator(f"{SIDEBAR} .jp-IDEAgent-error").filter(has_text="Incorrect API key provided").wait_for()
    stop.wait_for(state="detached")
    shot(page, "06b-error")

    # --- the dark theme --------------------------------------------------------------------------
    run_from_palette(page, "JupyterLab Dark", "JupyterLab Dark")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=15000)
    page.wait_for_timeout(500)
    shot(page, "07-dark")

    # --- New Session: an empty conversation on a new server session -----------------------------
    before = {s["id"] for s in lab.api("ide-agent/sessions")["sessions"]}
    run_from_palette(page, "IDE Agent: New Session", "IDE Agent: New Session")
    page.locator(f"{SIDEBAR} .jp-IDEAgent-empty").wait_for()
    assert page.locator(f"{SIDEBAR} .jp-IDEAgent-turn").count() == 0
    after = {s["id"] for s in lab.api("ide-agent/sessions")["sessions"]}
    assert len(after - before) == 1
    fake_openai.script(ScriptedTurn(text="Fresh start."))
    send(page, "Hello again")
    page.locator(f"{SIDEBAR} .jp-IDEAgent-assistant").filter(has_text="Fresh start.").wait_for()
    (new_id,) = after - before
    new_events = lab.api(f"ide-agent/sessions/{new_id}/events?after_seq=0")["events"]
    assert new_events[0]["type"] == "user_message"

    assert not page.page_errors, page.page_errors


def test_setup_card_when_no_provider_is_configured(start_lab: Any, page: Any) -> None:
    lab = start_lab(["c.IDEAgent.main_model = 'openai:gpt-5'"], NO_PROVIDER_ENV)
    status = lab.api("ide-agent/status")
    assert status["ready"] is False, status
    open_lab(page, lab)
    page.keyboard.press("Control+Shift+Y")  # the shortcut of ide-agent:open
    card = page.locator(f"{SIDEBAR} .jp-IDEAgent-setup")
    card.wait_for()
    text = card.inner_text()
    for problem in status["problems"]:
        assert problem in text
    assert "OPENAI_API_KEY" in text and "c.IDEAgent.providers" in text
    shot(page, "08-setup-card")
    # the rest of JupyterLab keeps working
    page.locator(".jp-LauncherCard").first.click()
    page.locator(".jp-MainAreaWidget").last.wait_for()
    assert not page.page_errors, page.page_errors


def test_reconnect_resumes_after_the_last_seq(start_lab: Any, fake_openai: Any, page: Any) -> None:
    """Drop the socket mid-answer: the client reconnects with after_seq and shows every token once."""
    fake_openai.reset()
    lab = start_lab(
        [
            f"c.IDEAgent.providers = {{'openai': {{'base_url': {fake_openai.base_url!r}, 'api_key': 'test'}}}}",
            "c.IDEAgent.main_model = 'openai:gpt-5'",
        ],
        NO_PROVIDER_ENV,
    )
    routes: list[Any] = []

    def proxy(ws: Any) -> None:  # forward everything, keep a handle to cut the page side
        ws.connect_to_server()
        routes.append(ws)

    page.route_web_socket(re.compile(r".*/ide-agent/sessions/[^/]+/stream.*"), proxy)
    open_lab(page, lab)
    run_from_palette(page, "IDE Agent: Open", "IDE Agent: Open")
    page.locator(f"{SIDEBAR} .jp-IDEAgent-connection.jp-mod-open").wait_for()
    assert len(routes) == 1 and "after_seq=0" in routes[0].url

    words = [f"w{i}" for i in range(60)]
    fake_openai.script(ScriptedTurn(text=" ".join(words), chunks=30, chunk_delay=0.15))
    send(page, "Count slowly.")
    page.locator(f"{SIDEBAR} .jp-IDEAgent-assistant").filter(has_text="w10").wait_for()
    routes[0].close()  # the page's socket drops; the server keeps running the turn
    page.locator(f"{SIDEBAR} .jp-IDEAgent-assistant").filter(has_text="w59").wait_for(timeout=30000)
    page.locator(f"{SIDEBAR} .jp-IDEAgent-stop").wait_for(state="detached")

    assert len(routes) >= 2
    resumed = int(re.search(r"after_seq=(\d+)", routes[1].url).group(1))  # type: ignore[union-attr]
    assert resumed > 0
    assert assistant_text(page).split() == words  # nothing lost, nothing twice
    assert page.locator(f"{SIDEBAR} .jp-IDEAgent-user").count() == 1
    shot(page, "09-after-reconnect")
    assert not page.page_errors, page.page_errors
