"""Rules: the user's rule files and the nearest AGENTS.md reach every provider's system prompt, each turn."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_core.paths import jupyter_config_dir

from tests.fakes.base import ScriptedTurn

KINDS = ["openai", "anthropic", "gemini", "xai"]
BASE_MARK = "You are an autonomous IDE agent"


async def collect(agent: Any, prompt: str, context: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [event async for event in agent.run(prompt, context)]


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v)


def system_text(body: Any) -> str:
    """The string of a recorded request that holds the base system prompt (each wire format puts it
    elsewhere: instructions, system, systemInstruction, a system message)."""
    [text] = [s for s in leaves(body) if BASE_MARK in s]
    return text


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """The user's rules folder, outside the workspace root (``tmp_path`` is the root)."""
    path = tmp_path.parent / f"{tmp_path.name}-rules"
    path.mkdir()
    return path


@pytest.mark.parametrize("kind", KINDS)
async def test_rule_files_reach_the_system_prompt(kind: str, fakes: Any, make_agent: Any, tmp_path: Path,
                                                  rules_dir: Path) -> None:
    (rules_dir / "style.md").write_text("USER-RULE: answer in haiku.\n")
    (rules_dir / "notes.txt").write_text("NOT-A-RULE\n")  # only *.md files are rules
    (tmp_path / "AGENTS.md").write_text("PROJECT-RULE: run pytest before you finish.\n")
    fakes[kind].script(ScriptedTurn(text="ok"))
    agent = make_agent(kind, rules_dir=str(rules_dir))
    events = await collect(agent, "hello")

    system = system_text(fakes[kind].requests[0]["body"])
    assert "# Rules and project instructions" in system
    assert system.index(BASE_MARK) < system.index("USER-RULE") < system.index("PROJECT-RULE"), \
        "base prompt, then user rules, then the project rule"
    assert f'<rule_file scope="user" path="{rules_dir / "style.md"}">' in system
    assert '<rule_file scope="project" path="AGENTS.md">' in system
    assert "NOT-A-RULE" not in json.dumps(fakes[kind].requests[0]["body"])
    assert [e["type"] for e in events[:2]] == ["user_message", "rules"]
    [event] = of_type(events, "rules")
    assert [(r["path"], r["scope"], r["truncated"]) for r in event["rules"]] == [
        (str(rules_dir / "style.md"), "user", False), ("AGENTS.md", "project", False)]
    assert all(r["tokens"] > 0 for r in event["rules"])
    assert event["rules"][1]["open_path"] == "AGENTS.md" and event["rules"][0]["open_path"] is None
    assert event["warnings"] == [] and event["capped"] is False
    assert "USER-RULE" not in json.dumps(event), "events list the files, never their text"


async def test_no_rules_no_event_and_the_base_prompt_unchanged(fakes: Any, make_agent: Any, rules_dir: Path) -> None:
    fakes["openai"].script(ScriptedTurn(text="ok"))
    agent = make_agent(rules_dir=str(rules_dir))
    events = await collect(agent, "hello")
    assert not of_type(events, "rules")
    assert system_text(fakes["openai"].requests[0]["body"]) == agent.system_prompt


async def test_the_nearest_agents_md_wins(fakes: Any, make_agent: Any, tmp_path: Path, rules_dir: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("ROOT-RULE\n")
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "sub" / "AGENTS.md").write_text("SUB-RULE\n")
    fakes["openai"].script(ScriptedTurn(text="a"), ScriptedTurn(text="b"), ScriptedTurn(text="c"))
    agent = make_agent(rules_dir=str(rules_dir))

    first = await collect(agent, "in the notebook", {"notebook": "sub/deep/analysis.ipynb"})
    system = system_text(fakes["openai"].requests[0]["body"])
    assert "SUB-RULE" in system and "ROOT-RULE" not in system
    assert [r["path"] for r in of_type(first, "rules")[0]["rules"]] == ["sub/AGENTS.md"]

    second = await collect(agent, "anywhere")  # no context: the root's
    assert "ROOT-RULE" in system_text(fakes["openai"].requests[1]["body"])
    assert [r["path"] for r in of_type(second, "rules")[0]["rules"]] == ["AGENTS.md"]

    # a JupyterLab drive prefix ("RTC:") is not part of the path; the set is unchanged: no event
    third = await collect(agent, "the same folder", {"file": "RTC:notes.md"})
    assert "ROOT-RULE" in system_text(fakes["openai"].requests[2]["body"])
    assert not of_type(third, "rules")


async def test_a_reopened_session_lists_the_rules_of_its_last_turn(fakes: Any, make_agent: Any, tmp_path: Path,
                                                                   rules_dir: Path) -> None:
    """After a restart the sidebar's list (no turn run yet in this process) follows the context the last
    user message was sent with, which the session's memory keeps."""
    (tmp_path / "AGENTS.md").write_text("ROOT-RULE\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "AGENTS.md").write_text("SUB-RULE\n")
    fakes["openai"].script(ScriptedTurn(text="a"))
    first = make_agent(rules_dir=str(rules_dir))
    await collect(first, "in the notebook", {"notebook": "sub/analysis.ipynb"})
    reopened = make_agent(rules_dir=str(rules_dir))
    reopened.history[:] = first.history  # what the store gives a session reopened after a restart
    assert reopened.rules.last_context == {"notebook": "sub/analysis.ipynb"}
    assert [r["path"] for r in reopened.rules.current(reopened.rules.last_context).to_json()["rules"]] == [
        "sub/AGENTS.md"]


async def test_an_edit_between_turns_is_picked_up_and_unchanged_files_are_not_reread(
        fakes: Any, make_agent: Any, tmp_path: Path, rules_dir: Path) -> None:
    rule = tmp_path / "AGENTS.md"
    rule.write_text("VERSION-ONE\n")
    (rules_dir / "mine.md").write_text("MINE\n")
    fakes["openai"].script(*[ScriptedTurn(text=str(i)) for i in range(3)])
    agent = make_agent(rules_dir=str(rules_dir))
    await collect(agent, "one")
    assert agent.rules.reads == 2
    second = await collect(agent, "two")
    assert agent.rules.reads == 2, "unchanged files come from the cache"
    assert not of_type(second, "rules"), "the same set is not announced again"

    rule.write_text("VERSION-TWO, now longer than before\n")
    os.utime(rule, ns=(rule.stat().st_atime_ns, rule.stat().st_mtime_ns + 1_000_000_000))
    third = await collect(agent, "three")
    system = system_text(fakes["openai"].requests[2]["body"])
    assert "VERSION-TWO" in system and "VERSION-ONE" not in system
    assert agent.rules.reads == 3
    assert of_type(third, "rules"), "a changed file is announced"


async def test_a_huge_file_is_capped_and_flagged(fakes: Any, make_agent: Any, tmp_path: Path, rules_dir: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("HEAD-OF-FILE\n" + "Always write tests for new code.\n" * 40_000)
    fakes["openai"].script(ScriptedTurn(text="ok"))
    agent = make_agent(rules_dir=str(rules_dir), rules_file_max_tokens=1000)
    events = await collect(agent, "hello")
    [rule] = of_type(events, "rules")[0]["rules"]
    assert rule["truncated"] is True and 900 < rule["tokens"] <= 1000
    system = system_text(fakes["openai"].requests[0]["body"])
    assert "HEAD-OF-FILE" in system
    assert "[truncated: AGENTS.md is longer than the per-file cap" in system
    assert len(system) < len(agent.system_prompt) + 6000


async def test_all_rules_together_keep_to_their_share_of_the_budget(
        fakes: Any, make_agent: Any, tmp_path: Path, rules_dir: Path) -> None:
    for name in ("a.md", "b.md", "c.md"):
        (rules_dir / name).write_text(f"{name.upper()}-RULE\n" + "Prefer small pure functions.\n" * 300)
    (tmp_path / "AGENTS.md").write_text("PROJECT-RULE\n" + "Use the project's venv.\n" * 100)
    fakes["openai"].script(ScriptedTurn(text="ok"))
    agent = make_agent(rules_dir=str(rules_dir), context_budget=20_000, rules_budget_share=0.25)
    events = await collect(agent, "hello")
    [event] = of_type(events, "rules")
    assert event["budget_tokens"] == 5000 and event["capped"] is True
    assert event["total_tokens"] <= 5000
    by_path = {Path(r["path"]).name: r for r in event["rules"]}
    assert by_path["AGENTS.md"]["truncated"] is False, "the project rule is the most specific: kept whole"
    assert by_path["a.md"]["truncated"] is False
    assert by_path["c.md"]["truncated"] is True and by_path["c.md"]["tokens"] == 0
    assert any("Left out" in w and "c.md" in w for w in event["warnings"])
    system = system_text(fakes["openai"].requests[0]["body"])
    assert "Rules may take at most 5,000 tokens" in system
    assert "PROJECT-RULE" in system and "A.MD-RULE" in system and "C.MD-RULE" not in system


async def test_the_compactor_counts_the_rules(fakes: Any, make_agent: Any, tmp_path: Path, rules_dir: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("COUNTED-RULE\n")
    fakes["openai"].script(ScriptedTurn(text="ok"))
    agent = make_agent(rules_dir=str(rules_dir))
    compactor = agent.compactor
    seen: list[str] = []
    real = compactor.maybe_compact

    async def recording(history: Any, system: str, *args: Any) -> Any:
        seen.append(system)
        return await real(history, system, *args)

    compactor.maybe_compact = recording
    await collect(agent, "hello")
    assert seen and "COUNTED-RULE" in seen[0]


async def test_a_symlink_out_of_the_root_is_refused(fakes: Any, make_agent: Any, tmp_path: Path,
                                                    rules_dir: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.md"
    outside.write_text("OUTSIDE-SECRET\n")
    (tmp_path / "AGENTS.md").write_text("ROOT-RULE\n")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "AGENTS.md").symlink_to(outside)
    fakes["openai"].script(ScriptedTurn(text="ok"))
    agent = make_agent(rules_dir=str(rules_dir))
    events = await collect(agent, "hello", {"notebook": "linked/nb.ipynb"})
    body = json.dumps(fakes["openai"].requests[0]["body"])
    assert "OUTSIDE-SECRET" not in body
    assert "ROOT-RULE" in body, "the next AGENTS.md up still applies"
    [event] = of_type(events, "rules")
    assert [r["path"] for r in event["rules"]] == ["AGENTS.md"]
    assert any("Refused linked/AGENTS.md" in w and "symlink" in w for w in event["warnings"])


async def test_a_context_path_outside_the_root_is_ignored(fakes: Any, make_agent: Any, tmp_path: Path,
                                                          rules_dir: Path) -> None:
    (tmp_path.parent / "AGENTS.md").write_text("PARENT-RULE\n")
    try:
        fakes["openai"].script(ScriptedTurn(text="ok"))
        agent = make_agent(rules_dir=str(rules_dir))
        events = await collect(agent, "hello", {"notebook": "../elsewhere/nb.ipynb"})
        assert "PARENT-RULE" not in json.dumps(fakes["openai"].requests[0]["body"])
        assert any("outside the workspace root" in w for w in of_type(events, "rules")[0]["warnings"])
    finally:
        (tmp_path.parent / "AGENTS.md").unlink()


def _make_unreadable(path: Path) -> None:
    """A file that exists and cannot be read: mode 000, or (as root, who reads anything) a link to a
    regular file of /proc whose read fails."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if not Path("/proc/self/mem").exists():
            pytest.skip("needs /proc/self/mem to make a file root cannot read")
        path.symlink_to("/proc/self/mem")
    else:
        path.write_text("UNREADABLE\n")
        path.chmod(0)


async def test_unreadable_and_non_utf8_files_are_skipped_with_a_warning(
        fakes: Any, make_agent: Any, tmp_path: Path, rules_dir: Path) -> None:
    (rules_dir / "good.md").write_text("GOOD-RULE\n")
    (rules_dir / "latin1.md").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    _make_unreadable(rules_dir / "locked.md")
    fakes["openai"].script(ScriptedTurn(text="ok"))
    agent = make_agent(rules_dir=str(rules_dir), rule_files=["missing.md"])
    events = await collect(agent, "hello")
    assert events[-1]["reason"] == "completed", "a bad rule file never fails a turn"
    [event] = of_type(events, "rules")
    assert [Path(r["path"]).name for r in event["rules"]] == ["good.md"]
    warnings = "\n".join(event["warnings"])
    assert "latin1.md: it is not UTF-8 text" in warnings
    assert "locked.md" in warnings
    assert "missing.md: it does not exist" in warnings
    assert "GOOD-RULE" in system_text(fakes["openai"].requests[0]["body"])


async def test_project_rules_off_and_extra_rule_files(fakes: Any, make_agent: Any, tmp_path: Path,
                                                      rules_dir: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("PROJECT-RULE\n")
    (tmp_path / "team.md").write_text("TEAM-RULE\n")
    fakes["openai"].script(ScriptedTurn(text="ok"))
    agent = make_agent(rules_dir=str(rules_dir), project_rules=False, rule_files=["team.md"])
    events = await collect(agent, "hello")
    system = system_text(fakes["openai"].requests[0]["body"])
    assert "TEAM-RULE" in system and "PROJECT-RULE" not in system
    [rule] = of_type(events, "rules")[0]["rules"]
    assert rule["scope"] == "user" and rule["open_path"] == "team.md", "a user file inside the root can be opened"


# --- through the server -----------------------------------------------------------------------------
async def test_rules_rest_list_and_event_over_the_socket(jp_fetch: Any, jp_ws_fetch: Any, jp_root_dir: Path,
                                                        fakes: Any) -> None:
    from tests.test_handlers import create_session, read_until_done

    user_dir = Path(jupyter_config_dir()) / "ide_agent" / "rules"  # the default folder
    user_dir.mkdir(parents=True)
    (user_dir / "me.md").write_text("ME-RULE\n")
    (jp_root_dir / "AGENTS.md").write_text("ROOT-RULE\n")
    (jp_root_dir / "sub").mkdir()
    (jp_root_dir / "sub" / "AGENTS.md").write_text("SUB-RULE\n")
    session = await create_session(jp_fetch)

    listed = json.loads((await jp_fetch("ide-agent", "sessions", session["id"], "rules")).body)
    assert [(r["path"], r["scope"]) for r in listed["rules"]] == [(str(user_dir / "me.md"), "user"),
                                                                  ("AGENTS.md", "project")]
    assert listed["budget_tokens"] > 0 and listed["warnings"] == []
    nearer = json.loads((await jp_fetch("ide-agent", "sessions", session["id"], "rules",
                                        params={"path": "sub/nb.ipynb"})).body)
    assert [r["path"] for r in nearer["rules"]] == [str(user_dir / "me.md"), "sub/AGENTS.md"]

    fakes["openai"].script(ScriptedTurn(text="ok"))
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    ws.write_message(json.dumps({"type": "prompt", "text": "hi", "context": {"notebook": "sub/nb.ipynb"}}))
    events = await read_until_done(ws)
    ws.close()
    assert [e["type"] for e in events[:2]] == ["user_message", "rules"]
    assert [r["path"] for r in events[1]["rules"]][-1] == "sub/AGENTS.md"
    assert "SUB-RULE" in system_text(fakes["openai"].requests[0]["body"])
    # the list now follows the last prompt's context
    after = json.loads((await jp_fetch("ide-agent", "sessions", session["id"], "rules")).body)
    assert [r["path"] for r in after["rules"]][-1] == "sub/AGENTS.md"


async def test_rules_route_is_authenticated_and_404s_unknown_sessions(jp_fetch: Any, jp_base_url: str,
                                                                     http_server_port: Any) -> None:
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError

    from tests.test_handlers import create_session

    session = await create_session(jp_fetch)
    url = f"http://127.0.0.1:{http_server_port[-1]}{jp_base_url}ide-agent/sessions/{session['id']}/rules"
    with pytest.raises(HTTPClientError) as err:
        await AsyncHTTPClient().fetch(url)  # no token
    assert err.value.code == 403
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("ide-agent", "sessions", "no-such-session", "rules")
    assert err.value.code == 404


class TestDeniedByTheAuthorizer:
    @pytest.fixture
    def jp_server_config(self, fakes: Any) -> Any:
        from traitlets.config import Config

        from tests.test_authorization import DenyIDEAgent

        return Config({"ServerApp": {"jpserver_extensions": {"jupyterlab_ide_agent": True},
                                     "authorizer_class": DenyIDEAgent}})

    async def test_the_rules_list_is_refused(self, jp_fetch: Any, jp_serverapp: Any) -> None:
        from tornado.httpclient import HTTPClientError

        session = jp_serverapp.web_app.settings["ide_agent_sessions"].create()
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch("ide-agent", "sessions", session.id, "rules")
        assert err.value.code == 403
