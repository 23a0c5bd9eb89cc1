"""The ensemble in the sidebar: four member cards with live states, then the verdict on top.

Asked directly ("Ask the ensemble") and by the agent (its ConsultEnsemble tool), on the four fake
providers. Screenshots: ui-tests/artifacts/ensemble-*.png.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fakes.base import ScriptedTool, ScriptedTurn

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SYNTHESIS = (
    "## Plan\n1. Memory-map the dataset with **numpy.memmap**.\n2. Raise `num_workers` to 8.\n"
    "## Agreements\n- The loader is I/O bound\n- Caching decoded images helps\n"
    "## Disagreements\n- Whether to switch to WebDataset shards"
)


def script_members(fakes: dict[str, Any], xai_fails: bool) -> None:
    """Each member answers slowly enough to be seen working; the synthesizer is the OpenAI fake's next turn."""
    fakes["openai"].script(
        ScriptedTurn(reasoning="The loader reads small files one by one.", text="Memory-map it and add workers.",
                     chunks=8, chunk_delay=0.25, input_tokens=900, output_tokens=300),
    )
    fakes["anthropic"].script(
        ScriptedTurn(reasoning="Profile first: is it disk or decode?", text="Cache decoded images; mmap the arrays.",
                     chunks=10, chunk_delay=0.3, input_tokens=800, output_tokens=250),
    )
    fakes["gemini"].script(ScriptedTurn(text="Use WebDataset shards.", chunks=6, chunk_delay=0.3))
    if xai_fails:
        fakes["xai"].script(ScriptedTurn(status=500, error_message="xai is overloaded", delay=0.5))
    else:
        fakes["xai"].script(ScriptedTurn(text="More workers, pinned memory.", chunks=4, chunk_delay=0.2))


def test_ask_the_ensemble_directly(agent_lab: Any, fakes: dict[str, Any], ui: Any) -> None:
    lab = agent_lab()
    ui.open_lab(lab)
    ui.open_sidebar()
    ui.widen_sidebar(520)
    script_members(fakes, xai_fails=True)
    fakes["openai"].script(ScriptedTurn(text=SYNTHESIS, chunks=4, chunk_delay=0.3,
                                        input_tokens=2000, output_tokens=200))

    ui.prompt.fill("How do I speed up my data loader?")
    ui.q(".jp-IDEAgent-askEnsemble").click()
    block = ui.q(".jp-IDEAgent-turn.jp-mod-consultation")
    block.wait_for()
    assert "How do I speed up my data loader?" in block.locator(".jp-IDEAgent-ensembleQuestion").inner_text()
    members = block.locator(".jp-IDEAgent-member")
    # live: a member thinks (its reasoning folds open), others answer, while Stop is offered
    thinking = block.locator('.jp-IDEAgent-member.jp-mod-thinking[data-member="anthropic"]')
    thinking.wait_for()
    ui.q(".jp-IDEAgent-stop").wait_for()
    assert members.count() == 4
    thinking.locator("details.jp-IDEAgent-memberReasoning > summary").click()
    # the reasoning streams in: wait for its first word rather than reading a half-streamed text
    expect(thinking.locator(".jp-IDEAgent-reasoningText")).to_contain_text("Profile")
    block.locator(".jp-IDEAgent-member.jp-mod-answering").first.wait_for()
    ui.shot("ensemble-01-running")

    verdict = block.locator(".jp-IDEAgent-verdict")
    verdict.wait_for(timeout=60000)
    ui.wait_idle()
    assert members.count() == 4, "the synthesizer is not a fifth card"
    states = {m.get_attribute("data-member"): m.get_attribute("class") for m in members.all()}
    assert set(states) == {"openai", "anthropic", "xai", "gemini"}
    for name in ("openai", "anthropic", "gemini"):
        assert "jp-mod-finished" in states[name], states
    assert "jp-mod-failed" in states["xai"], states
    xai = block.locator('.jp-IDEAgent-member[data-member="xai"]')
    assert "failed" in xai.locator(".jp-IDEAgent-memberState").inner_text()
    assert xai.locator(".jp-IDEAgent-memberReason").inner_text().strip(), "a failed member says why"
    openai = block.locator('.jp-IDEAgent-member[data-member="openai"]').locator(".jp-IDEAgent-memberUsage").inner_text()
    assert "900 in" in openai and "300 out" in openai and "$" in openai, openai

    # the verdict sits above the member cards, its plan rendered as markdown
    v_box, m_box = verdict.bounding_box(), members.first.bounding_box()
    assert v_box["y"] < m_box["y"]
    assert verdict.locator(".jp-RenderedMarkdown strong").first.inner_text() == "numpy.memmap"
    assert "The loader is I/O bound" in verdict.locator(".jp-mod-agreements").inner_text()
    assert "WebDataset" in verdict.locator(".jp-mod-disagreements").inner_text()
    missing = verdict.locator(".jp-IDEAgent-verdictMissing").inner_text()
    assert "xai" in missing
    facts = verdict.locator(".jp-IDEAgent-verdictFacts").inner_text()
    assert "3/4 answered" in facts and "$" in facts, facts
    # the session's total includes the consultation
    session = lab.api("ide-agent/sessions")["sessions"][0]
    assert session["usage"]["cost_usd"] > 0
    assert ui.q(".jp-IDEAgent-sessionCost").inner_text().startswith("$")
    ui.shot("ensemble-02-verdict")
    ui.dark_theme()
    ui.shot("ensemble-03-verdict-dark")

    # after a reload the consultation comes back from the log, once
    ui.reload()
    ui.open_sidebar()
    ui.q(".jp-IDEAgent-verdict").wait_for()
    assert ui.q(".jp-IDEAgent-member").count() == 4
    assert ui.q(".jp-IDEAgent-verdict").count() == 1
    assert not ui.page.page_errors, ui.page.page_errors


def test_the_agent_consults_the_ensemble_inside_its_tool_card(agent_lab: Any, fakes: dict[str, Any], ui: Any) -> None:
    lab = agent_lab()
    ui.open_lab(lab)
    ui.open_sidebar()
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("ConsultEnsemble", {"question": "Which loader design is fastest?"})]),
    )
    script_members(fakes, xai_fails=False)  # the openai member is the fake's 2nd request
    fakes["openai"].script(
        ScriptedTurn(text=SYNTHESIS),  # the synthesizer
        ScriptedTurn(text="The ensemble agrees: **memory-map** the dataset."),  # the main model again
    )
    ui.send("Make my loader faster; ask the ensemble.")
    tool = ui.q('.jp-IDEAgent-tool[data-tool="ConsultEnsemble"]')
    tool.locator(".jp-IDEAgent-member").first.wait_for()
    ui.shot("ensemble-04-tool-running", sidebar_only=True)
    tool.locator(".jp-IDEAgent-verdict").wait_for(timeout=60000)
    ui.q(".jp-IDEAgent-assistant").filter(has_text="The ensemble agrees").wait_for()
    ui.wait_idle()
    assert tool.locator(".jp-IDEAgent-member").count() == 4
    assert tool.locator(".jp-IDEAgent-member.jp-mod-finished").count() == 4
    assert ui.q(".jp-IDEAgent-turn.jp-mod-consultation").count() == 0, "no separate block for the agent's call"
    # the raw text the agent read is still there, folded
    assert tool.locator("details.jp-IDEAgent-toolResult").count() == 1
    ui.shot("ensemble-05-tool-verdict")
    assert not ui.page.page_errors, ui.page.page_errors


def test_the_ensemble_setting_off_hides_the_button(agent_lab: Any, ui: Any) -> None:
    lab = agent_lab(settings={"ensemble": False})
    ui.open_lab(lab)
    ui.open_sidebar()
    ui.q(".jp-IDEAgent-send").wait_for()
    assert ui.q(".jp-IDEAgent-askEnsemble").count() == 0
    labels = ui.palette("IDE Agent", "IDE Agent: Open")
    assert "IDE Agent: Consult the Ensemble on the Selection" not in labels, labels
