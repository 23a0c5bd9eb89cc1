"""The terminal CLI on the same core: ``jupyter ide-agent`` or ``python -m jupyterlab_ide_agent``.

It reads the same ``c.IDEAgent.*`` lines as the server (from ``jupyter_server_config.py``/``.json``
on the Jupyter config path), streams answers as they arrive and shows every tool call and result.
Ctrl-C during a turn cancels the turn; Ctrl-C or Ctrl-D at the prompt quits.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from jupyter_core.application import JupyterApp
from traitlets import Bool, Unicode

from . import __version__
from .agent.loop import IDEAgent, args_preview

DIM, BOLD, RED, GREEN, RESET = "\033[2m", "\033[1m", "\033[31m", "\033[32m", "\033[0m"


def rules_line(event: dict[str, Any]) -> str:
    """``rules: style.md (user, 5 tok), AGENTS.md (project, 14 tok)``: the rule files the turn reads.

    User files are named by their file name (their folder is the user's own rules folder or a path
    they configured); the project rule by its root-relative path, which says which AGENTS.md it is.
    """
    parts = []
    for rule in event.get("rules") or []:
        path = str(rule.get("path", ""))
        name = Path(path).name if rule.get("scope") == "user" else path
        tokens = int(rule.get("tokens") or 0)
        facts = [str(rule.get("scope", "")), f"{tokens:,} tok" if tokens else "left out"]
        if tokens and rule.get("truncated"):
            facts.append("truncated")
        parts.append(f"{name} ({', '.join(facts)})")
    line = "rules: " + (", ".join(parts) or "none")
    if event.get("capped"):
        line += f" [capped at {int(event.get('budget_tokens') or 0):,} tok]"
    return line


class EventPrinter:
    """Renders agent events as a terminal transcript."""

    def __init__(self, out: TextIO, color: bool, show_reasoning: bool) -> None:
        self.out, self.color, self.show_reasoning = out, color, show_reasoning
        self._mode = ""

    def _style(self, code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if self.color else text

    def _switch(self, mode: str) -> None:
        if mode != self._mode and self._mode in ("text", "reasoning"):
            self.out.write("\n")
        self._mode = mode

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "text_delta":
            if self._mode != "text":
                self._switch("text")
                self.out.write(self._style(BOLD, "Agent: "))
            self.out.write(event["text"])
        elif kind == "reasoning_delta" and self.show_reasoning:
            if self._mode != "reasoning":
                self._switch("reasoning")
                self.out.write(self._style(DIM, "thinking: "))
            self.out.write(self._style(DIM, event["text"]))
        elif kind == "tool_call":
            self._switch("tool")
            self.out.write(self._style(DIM, f"  -> {event['name']}({args_preview(event['arguments'])})\n"))
        elif kind == "tool_result":
            self._switch("tool")
            lines = event["output"].strip().splitlines() or [""]
            mark = self._style(RED, "  x ") if event["is_error"] else self._style(GREEN, "  ok ")
            self.out.write(f"{mark}{lines[0][:160]}\n")
            if event["is_error"] and len(lines) > 1:  # the end of an error says what went wrong
                shown = lines[1:][-4:]
                if len(lines) - 1 > len(shown):
                    self.out.write(self._style(DIM, "     ...\n"))
                for line in shown:
                    self.out.write(self._style(RED, f"     {line[:160]}\n"))
        elif kind == "error":
            self._switch("error")
            self.out.write(self._style(RED, f"Error: {event['message']}\n"))
        elif kind == "done":
            self._switch("done")
            if event["reason"] != "completed":
                self.out.write(self._style(DIM, f"[turn {event['reason']}]\n"))
        elif kind == "approval_request":
            self._switch("tool")
            self.out.write(self._style(DIM, f"  ? {event['name']} waits for approval\n"))
        elif kind == "ensemble_member" and event.get("state") in ("finished", "failed"):
            self._switch("tool")
            detail = event.get("reason") or f"${event.get('cost_usd') or 0:.4f}"
            self.out.write(self._style(DIM, f"  ensemble {event['member']}: {event['state']} ({detail})\n"))
        elif kind == "ensemble_verdict":
            self._switch("tool")
            self.out.write(self._style(DIM, f"  ensemble verdict: {event['status']}, ${event['cost_usd']:.4f}\n"))
        elif kind == "rules":  # only sent when the set of rule files changed
            self._switch("tool")
            self.out.write(self._style(DIM, rules_line(event) + "\n"))
            for warning in event.get("warnings") or []:
                self.out.write(self._style(DIM, f"  ! {warning}\n"))
        elif kind == "usage":
            self._last_usage = event
        # user_message (with any attachments) echoes what was typed: nothing to print
        self.out.flush()

    def summary(self) -> str | None:
        usage = getattr(self, "_last_usage", None)
        if usage is None:
            return None
        cost = usage["session_cost_usd"]
        return (f"[{usage['model']}: session {usage['session_input_tokens']} in / "
                f"{usage['session_output_tokens']} out tokens, ${cost:.4f}]")


class IDEAgentCLI(JupyterApp):
    name = "jupyter-ide-agent"
    version = __version__
    description = "Chat with the IDE agent in the terminal; same tools and config as the JupyterLab sidebar."
    examples = 'jupyter ide-agent --model=anthropic:claude-opus-4-1 "list the notebooks here"'
    # read the same file users configure the server with
    config_file_name = Unicode("jupyter_server_config")

    workspace = Unicode(".", help="Workspace root the agent's tools are confined to.").tag(config=True)
    show_reasoning = Bool(True, help="Print reasoning/thinking text.").tag(config=True)
    color = Bool(sys.stdout.isatty(), help="Use ANSI colours.").tag(config=True)

    aliases = {
        "model": "IDEAgent.main_model",
        "workspace": "IDEAgentCLI.workspace",
        "log-level": "Application.log_level",
    }
    flags = {
        "no-reasoning": ({"IDEAgentCLI": {"show_reasoning": False}}, "Hide reasoning text."),
        "no-color": ({"IDEAgentCLI": {"color": False}}, "Plain output."),
    }
    classes = [IDEAgent]

    def start(self) -> None:
        prompt = " ".join(self.extra_args).strip()
        sys.exit(asyncio.run(self.main(prompt or None)))

    async def main(self, one_shot: str | None) -> int:
        agent = IDEAgent(workspace_dir=self.workspace, parent=self)
        printer = EventPrinter(sys.stdout, self.color, self.show_reasoning)
        problems = agent.pool.problems(agent.main_model)
        if problems:
            print(f"Main model {agent.main_model} is not usable: {'; '.join(problems)}", file=sys.stderr)
            await agent.cleanup()
            return 2
        try:
            if one_shot:
                return await self._turn(agent, one_shot, printer)
            print(f"IDE agent {__version__} ({agent.main_model}) in {agent.workspace_dir}. Ctrl-D quits.")
            while True:
                try:
                    text = await asyncio.get_running_loop().run_in_executor(None, input, "\nYou: ")
                except (EOFError, KeyboardInterrupt):
                    print()
                    return 0
                if text.strip() in {"exit", "quit"}:
                    return 0
                if text.strip():
                    await self._turn(agent, text, printer)
        finally:
            await agent.cleanup()

    async def _turn(self, agent: IDEAgent, text: str, printer: EventPrinter) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, agent.cancel)
        status = 0
        try:
            async for event in agent.run(text):
                printer(event)
                if event["type"] == "done" and event["reason"] == "error":
                    status = 1
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        summary = printer.summary()
        if summary:
            print(printer._style(DIM, summary))
        return status


main = IDEAgentCLI.launch_instance
