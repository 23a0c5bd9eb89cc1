"""The terminal CLI as a user runs it: a subprocess, config from jupyter_server_config.json."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from jupyterlab_ide_agent.cli import EventPrinter
from tests.conftest import providers_config
from tests.fakes.base import ScriptedTool, ScriptedTurn


def run_cli(tmp_path: Path, fakes: Any, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    config_dir = tmp_path / "config"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"IDEAgent": {"providers": providers_config(fakes), "main_model": "openai:gpt-5"}})
    )
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config_dir), "JUPYTER_PLATFORM_DIRS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "jupyterlab_ide_agent", f"--workspace={tmp_path}", "--no-color", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=60,
    )


def test_one_shot_prompt_streams_answer_and_shows_tool_calls(tmp_path: Path, fakes: Any) -> None:
    (tmp_path / "todo.txt").write_text("buy milk\n")
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("Read", {"path": "todo.txt"})], input_tokens=200),
        ScriptedTurn(text="You need to buy milk.", input_tokens=200, output_tokens=20),
    )
    result = run_cli(tmp_path, fakes, "what is on my list?")
    assert result.returncode == 0, result.stderr
    assert '-> Read({"path": "todo.txt"})' in result.stdout
    assert "ok 1\tbuy milk" in result.stdout  # the tool result's first line
    assert "Agent: You need to buy milk." in result.stdout
    assert "session 400 in" in result.stdout  # usage summary, both calls counted


def test_interactive_loop_remembers_and_quits_on_eof(tmp_path: Path, fakes: Any) -> None:
    fakes["openai"].script(ScriptedTurn(text="Hi Ada."), ScriptedTurn(text="Your name is Ada."))
    result = run_cli(tmp_path, fakes, stdin="I am Ada\nwho am I?\n")
    assert result.returncode == 0, result.stderr
    assert "Hi Ada." in result.stdout and "Your name is Ada." in result.stdout
    assert "I am Ada" in str(fakes["openai"].requests[1]["body"])


def test_unconfigured_model_exits_with_a_clear_message(tmp_path: Path, fakes: Any) -> None:
    result = run_cli(tmp_path, fakes, "--model=nowhere:some-model", "hi")
    assert result.returncode != 0
    assert "nowhere" in result.stderr


def test_the_rule_files_read_are_listed_once(tmp_path: Path, fakes: Any) -> None:
    user_rules = tmp_path / "config" / "ide_agent" / "rules"  # the default folder under JUPYTER_CONFIG_DIR
    user_rules.mkdir(parents=True)
    (user_rules / "style.md").write_text("Answer briefly.\n")
    (tmp_path / "AGENTS.md").write_text("# Project rules\nRun the tests before you finish.\n")
    fakes["openai"].script(ScriptedTurn(text="Noted."), ScriptedTurn(text="Still noted."))
    result = run_cli(tmp_path, fakes, stdin="follow the rules\nand again\n")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "rules:" in line]
    # user files first, as in the prompt; a second turn with the same files says nothing new
    assert len(lines) == 1, result.stdout
    # (after the "You: " prompt, which piped input does not end with a newline)
    assert re.search(r"(^|: )rules: style\.md \(user, \d+ tok\), AGENTS\.md \(project, \d+ tok\)$", lines[0]), lines
    assert "Answer briefly." in str(fakes["openai"].requests[0]["body"])


def test_printer_rules_details_and_silent_user_message() -> None:
    out = io.StringIO()
    printer = EventPrinter(out, color=False, show_reasoning=True)
    # the prompt as sent, with its attachments: the terminal already shows what was typed
    printer({"type": "user_message", "seq": 1, "turn_id": "t", "text": "look at these",
             "context": {"attachments": [{"type": "file", "path": "src/model.py", "size": 120},
                                         {"type": "notebook", "path": "train.ipynb"}]}})
    assert out.getvalue() == ""
    printer({"type": "rules", "seq": 2, "turn_id": "t", "capped": True, "budget_tokens": 2000,
             "warnings": ["Skipped the rule file /cfg/rules/bad.md: it is not UTF-8 text."],
             "rules": [
                 {"path": "/cfg/rules/long.md", "scope": "user", "tokens": 1800, "truncated": True, "open_path": None},
                 {"path": "sub/AGENTS.md", "scope": "project", "tokens": 0, "truncated": True,
                  "open_path": "sub/AGENTS.md"},
             ]})
    assert out.getvalue().splitlines() == [
        "rules: long.md (user, 1,800 tok, truncated), sub/AGENTS.md (project, left out) [capped at 2,000 tok]",
        "  ! Skipped the rule file /cfg/rules/bad.md: it is not UTF-8 text.",
    ]
    out.truncate(0), out.seek(0)
    printer({"type": "rules", "seq": 3, "turn_id": "t", "rules": [], "warnings": [], "capped": False})
    assert out.getvalue() == "rules: none\n", "every rule file removed since the last turn"
