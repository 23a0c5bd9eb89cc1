"""The terminal CLI as a user runs it: a subprocess, config from jupyter_server_config.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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
