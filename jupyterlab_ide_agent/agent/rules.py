"""Rules: the user's rule files and the project's AGENTS.md, read into the system prompt each turn.

Two scopes, both plain Markdown:

- *user*: every ``*.md`` in ``c.IDEAgent.rules_dir`` (default ``<jupyter_config_dir()>/ide_agent/rules/``)
  plus the paths in ``c.IDEAgent.rule_files``. The user wrote them for every project, so they are
  trusted wherever they live.
- *project*: the ``AGENTS.md`` nearest to the notebook or file of the prompt's context, walking up to
  the workspace root (``c.IDEAgent.project_rules = False`` turns it off). It comes with the checkout,
  so it is read only through the root-confinement gate (``tools/paths.py``): one that leads out of the
  root through a symlink is refused, like any path the model names.

Why each turn: the user edits AGENTS.md while the session runs and expects the next prompt to follow
it. Each file's ``(mtime, ctime, size, inode)`` is kept, so an unchanged file costs one ``stat``.
Why in the system prompt, after the base prompt: rules are standing instructions, not part of the
conversation; they change rarely, so the providers' prompt caches still hit. The compactor counts the
system prompt, so the rules' size counts against the context budget; a file is capped
(``rules_file_max_tokens``) and all rules together take at most ``rules_budget_share`` of the budget,
and every cut is marked in the prompt and in the ``rules`` event. A file that cannot be read or is not
UTF-8 is skipped with a warning in the event: a rule file never fails a turn.
"""

from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..memory.tokens import TokenCounter
from ..tools.base import ToolError
from ..tools.paths import display_path, resolve_in_root

if TYPE_CHECKING:
    from .loop import IDEAgent

PROJECT_RULE = "AGENTS.md"
#: a file truncated by the total share gets at least this many tokens, else it is left out
MIN_SHARE_TOKENS = 200
#: bytes read per token of the file cap: enough to reach the token cap whatever the script
BYTES_PER_TOKEN_CAP = 16
#: the context budget assumed when the main model's cannot be known (misconfigured model)
FALLBACK_BUDGET = 128_000
_DRIVE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]+:(?![\\/])")  # JupyterLab drive prefixes, e.g. "RTC:"


@dataclass(frozen=True)
class RuleFile:
    """One rule file as it goes into the prompt (``text`` is already capped)."""

    path: str  # the label: root-relative for the project rule, absolute for user files
    scope: str  # "user" | "project"
    text: str
    tokens: int
    truncated: bool = False
    open_path: str | None = None  # root-relative path the sidebar can open; None outside the root

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "scope": self.scope, "tokens": self.tokens, "truncated": self.truncated,
                "open_path": self.open_path}


@dataclass
class ActiveRules:
    """The rules of one turn: what the prompt gets and what the sidebar shows."""

    files: list[RuleFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    budget_tokens: int = 0  # the most all rules may take together
    capped: bool = False  # the total share cut or left out a file

    @property
    def total_tokens(self) -> int:
        return sum(f.tokens for f in self.files)

    def to_json(self) -> dict[str, Any]:
        """The ``rules`` event's fields and the REST answer (paths and sizes, never the text)."""
        return {"rules": [f.to_json() for f in self.files], "total_tokens": self.total_tokens,
                "budget_tokens": self.budget_tokens, "capped": self.capped, "warnings": list(self.warnings)}

    def signature(self) -> tuple[Any, ...]:
        return (tuple((f.path, f.scope, f.tokens, f.truncated) for f in self.files), tuple(self.warnings),
                self.capped)

    def system_prompt(self, base: str) -> str:
        """``base`` followed by one delimited section holding every rule file, user files first."""
        files = [f for f in self.files if f.text]
        if not files:
            return base
        lines = [
            base.rstrip("\n"), "", "# Rules and project instructions", "",
            "The files below hold standing instructions: the user's own rules (scope \"user\") and this "
            "project's AGENTS.md (scope \"project\", the one nearest to the file the user is working in). "
            "Follow them. Where they conflict, the project rule wins: it is the more specific.",
        ]
        if self.capped:
            lines.append(f"Rules may take at most {self.budget_tokens:,} tokens of the context, so some were cut "
                         "or left out (marked [truncated]); read a file with the Read tool when you need the rest.")
        for f in files:
            lines += ["", f'<rule_file scope="{f.scope}" path="{f.path}">', f.text.rstrip("\n"), "</rule_file>"]
        return "\n".join(lines) + "\n"


@dataclass
class _Read:
    key: tuple[int, ...]
    text: str | None
    error: str | None
    complete: bool  # False when only the first bytes were read (the file is larger than any cap)
    capped: dict[tuple[Any, ...], tuple[str, int, bool]] = field(default_factory=dict)


class RuleBook:
    """Finds, reads (mtime-cached) and caps an agent's rules; one per agent.

    It reads the agent's ``c.IDEAgent.*`` traits at every turn, so a changed setting applies to the
    next turn like a changed file does.
    """

    def __init__(self, agent: IDEAgent) -> None:
        self.agent = agent
        self._last_context: dict[str, Any] | None = None  # the latest turn's, for the sidebar's list
        self.reads = 0  # files actually read from disk (the rest came from the cache)
        self._cache: dict[str, _Read] = {}
        self._announced: tuple[Any, ...] = ActiveRules().signature()  # no rules: nothing to announce

    @property
    def last_context(self) -> dict[str, Any] | None:
        """The context of the session's latest turn: this process's, or, in a session reopened
        after a restart, the one its last user message was sent with (kept in its memory)."""
        if self._last_context is not None:
            return self._last_context
        for message in reversed(self.agent.history):
            if getattr(message, "role", None) == "user":
                return getattr(message, "context", None)
        return None

    def for_turn(self, base: str, context: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
        """The turn's system prompt, and the ``rules`` event's fields when the set changed since
        the last turn (None otherwise, and for a session that never had any rule)."""
        self._last_context = context
        active = self.current(context)
        signature = active.signature()
        changed, self._announced = signature != self._announced, signature
        return active.system_prompt(base), active.to_json() if changed else None

    def current(self, context: dict[str, Any] | None = None) -> ActiveRules:
        """The rules for a prompt with ``context``; never raises (a failure becomes a warning)."""
        budget, counter = self._budget()
        active = ActiveRules(budget_tokens=budget)
        try:
            files = [*self._user_files(active.warnings), *self._project_file(context, active.warnings)]
            active.files = self._fit(files, counter, active)
        except Exception as exc:  # a bug of ours must not cost the user a turn
            self.agent.log.warning("IDE agent: reading the rules failed", exc_info=True)
            active.warnings.append(f"The rules could not be read: {type(exc).__name__}: {exc}")
        return active

    # --- where the files are -------------------------------------------------------------------
    def rules_dir(self) -> Path:
        from jupyter_core.paths import jupyter_config_dir

        configured = self.agent.rules_dir
        return Path(os.path.abspath(Path(configured).expanduser())) if configured else \
            Path(jupyter_config_dir()) / "ide_agent" / "rules"

    def _user_files(self, warnings: list[str]) -> list[tuple[str, str, Path]]:
        """``(label, scope, real path)`` of the user's files: the rules dir's ``*.md``, then rule_files."""
        out: list[tuple[str, str, Path]] = []
        directory = self.rules_dir()
        if directory.is_dir():
            try:
                names = sorted(n for n in os.listdir(directory) if n.endswith(".md"))
            except OSError as exc:
                warnings.append(f"Skipped the rules directory {directory}: {exc.strerror or exc}")
                names = []
            out += [(str(directory / n), "user", directory / n) for n in names if (directory / n).is_file()]
        elif self.agent.rules_dir:
            warnings.append(f"The rules directory {directory} does not exist (c.IDEAgent.rules_dir).")
        for entry in self.agent.rule_files:
            path = Path(entry).expanduser()
            path = path if path.is_absolute() else self.agent.workspace_dir / path
            if not path.is_file():
                warnings.append(f"Skipped the rule file {path}: it does not exist or is not a file "
                                "(c.IDEAgent.rule_files).")
                continue
            out.append((str(path), "user", path))
        return out

    def _project_file(self, context: dict[str, Any] | None, warnings: list[str]) -> list[tuple[str, str, Path]]:
        """The AGENTS.md nearest to the context's notebook or file, through the root gate."""
        if not self.agent.project_rules:
            return []
        root = self.agent.workspace_dir
        folder = self._context_folder(context, warnings)
        while True:
            candidate = f"{folder}/{PROJECT_RULE}" if folder else PROJECT_RULE
            if os.path.lexists(root / candidate):
                try:
                    real = resolve_in_root(root, candidate)
                except ToolError:
                    warnings.append(f"Refused {candidate}: it leads outside the workspace root through a symlink.")
                else:
                    if real.is_file():
                        return [(candidate, "project", real)]
            if not folder:
                return []
            folder = folder.rpartition("/")[0]

    def _context_folder(self, context: dict[str, Any] | None, warnings: list[str]) -> str:
        """The root-relative folder of the prompt's notebook (or file); '' for the root."""
        if not isinstance(context, dict):
            return ""
        where = context.get("notebook") or context.get("file")
        if not isinstance(where, str) or not where.strip() or "\x00" in where:
            return ""
        where = _DRIVE.sub("", where.strip())
        root = os.path.abspath(self.agent.workspace_dir)
        lexical = os.path.normpath(os.path.join(root, where))
        if lexical != root and not lexical.startswith(root.rstrip(os.sep) + os.sep):
            warnings.append(f"The context path {where!r} is outside the workspace root; used the root's AGENTS.md.")
            return ""
        folder = os.path.relpath(os.path.dirname(lexical), root)
        return "" if folder == "." else Path(folder).as_posix()

    # --- reading and capping -------------------------------------------------------------------
    def _budget(self) -> tuple[int, TokenCounter]:
        """The rules' share of the main model's context budget, and that model's token counter."""
        try:
            compactor = self.agent.compactor
            budget, counter = compactor.context_budget, compactor.counter
        except Exception:  # noqa: BLE001 - a bad main_model surfaces in the model step, not here
            budget, counter = FALLBACK_BUDGET, TokenCounter()
        return max(0, int(budget * self.agent.rules_budget_share)), counter

    def _read(self, real: Path, limit: int) -> _Read:
        """The file's text (at most ``limit`` bytes of it), from the cache while it is unchanged."""
        st = os.stat(real)
        key = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, limit)
        cached = self._cache.get(str(real))
        if cached is not None and cached.key == key:
            return cached
        self.reads += 1
        try:
            with open(real, "rb") as fh:
                data = fh.read(limit + 1)
            complete = len(data) <= limit
            # a cut may land inside a character: the incremental decoder keeps it back instead of failing
            text = codecs.getincrementaldecoder("utf-8")().decode(data[:limit], final=complete)
            result = _Read(key, text.lstrip("\ufeff"), None, complete)
        except UnicodeDecodeError:
            result = _Read(key, None, "it is not UTF-8 text", True)
        except OSError as exc:
            result = _Read(key, None, exc.strerror or str(exc), True)
        self._cache[str(real)] = result
        return result

    def _capped(self, read: _Read, counter: TokenCounter, cap: int, label: str, share: bool = False
                ) -> tuple[str, int, bool]:
        """:func:`cap` of a read, remembered with it: a huge file is not re-counted every turn."""
        memo_key = (cap, label, share, counter.method)
        hit = read.capped.get(memo_key)
        if hit is None:
            hit = read.capped[memo_key] = cap_text(read.text or "", counter, cap, label, complete=read.complete,
                                                   share=share)
        return hit

    def _fit(self, found: list[tuple[str, str, Path]], counter: TokenCounter, active: ActiveRules) -> list[RuleFile]:
        """Read, cap each file, then cap them all to the budget share: the project rule is kept
        whole first (it is the most specific), then user files in order; a file crossing the line
        is truncated, the ones after it left out."""
        file_cap = max(1, self.agent.rules_file_max_tokens)
        root = self.agent.workspace_dir
        seen: set[Path] = set()
        files: list[tuple[RuleFile, _Read]] = []
        for label, scope, real in found:
            try:
                real = real.resolve()
                if real in seen:
                    continue
                seen.add(real)
                read = self._read(real, file_cap * BYTES_PER_TOKEN_CAP)
            except OSError as exc:
                active.warnings.append(f"Skipped the rule file {label}: {exc.strerror or exc}.")
                continue
            if read.text is None:
                active.warnings.append(f"Skipped the rule file {label}: {read.error}.")
                continue
            if not read.text.strip():
                continue
            text, tokens, cut = self._capped(read, counter, file_cap, label)
            open_path = label if scope == "project" else path_in_root(root, real)
            files.append((RuleFile(label, scope, text, tokens, cut, open_path), read))
        remaining = active.budget_tokens
        fitted: dict[int, RuleFile] = {}
        for i in sorted(range(len(files)), key=lambda i: files[i][0].scope != "project"):
            f, read = files[i]
            if f.tokens <= remaining:
                remaining -= f.tokens
                fitted[i] = f
                continue
            active.capped = True
            if remaining >= MIN_SHARE_TOKENS:
                text, tokens, _ = self._capped(read, counter, min(remaining, file_cap), f.path, share=True)
                fitted[i] = RuleFile(f.path, f.scope, text, tokens, True, f.open_path)
                remaining = 0
            else:
                fitted[i] = RuleFile(f.path, f.scope, "", 0, True, f.open_path)
                active.warnings.append(f"Left out {f.path}: the rules already fill their share of the context "
                                       f"({active.budget_tokens:,} tokens, c.IDEAgent.rules_budget_share).")
        return [fitted[i] for i in range(len(files))]


def cap_text(text: str, counter: TokenCounter, cap: int, label: str, *, complete: bool = True,
         share: bool = False) -> tuple[str, int, bool]:
    """``text`` cut to at most ``cap`` tokens (note included), its token count, and whether it was cut."""
    tokens = counter.text(text)
    if complete and tokens <= cap:
        return text, tokens, False
    why = "the rules' share of the context" if share else "the per-file cap (c.IDEAgent.rules_file_max_tokens)"
    note = f"\n\n[truncated: {label} is longer than {why} allows; only its beginning is included]"
    room = max(0, cap - counter.text(note))
    low, high = 0, len(text)  # the longest prefix that fits
    while low < high:
        mid = (low + high + 1) // 2
        if counter.text(text[:mid]) <= room:
            low = mid
        else:
            high = mid - 1
    head = text[:low]
    newline = head.rfind("\n")
    if newline > low * 0.8:  # end on a whole line when that loses little
        head = head[:newline]
    kept = head.rstrip() + note
    return kept, counter.text(kept), True


def path_in_root(root: Path, real: Path) -> str | None:
    """``real`` as a root-relative path when it lies inside the root, else None."""
    real_root = os.path.realpath(root)
    if str(real) == real_root or str(real).startswith(real_root.rstrip(os.sep) + os.sep):
        return display_path(root, real)
    return None
