"""File tools: Read, Write, Edit, ListDir, Glob, Grep and ElapsedTime, all confined to ``ctx.root``.

Every path goes through :func:`resolve_in_root`; tree walks never follow symlinks, so they cannot leave the root
either. The blocking work runs in a thread (``asyncio.to_thread``) because these tools run on the Jupyter server's
event loop. Outputs are plain text for the model; ``ToolResult.data`` carries what the workspace state tracks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import Tool, ToolContext, ToolError, ToolResult
from .paths import SKIP_DIRS, display_path, glob_regex, resolve_in_root, walk_files

READ_MAX_LINE = 2000  # chars per line shown by Read
GREP_MAX_LINE = 500  # chars per line shown by Grep (minified files would flood the context)
GREP_MAX_BYTES = 5 * 1024 * 1024  # larger files are skipped by Grep (logs, data dumps)
GREP_MAX_CONTENT_LINES = 500
GREP_MAX_FILES = 200
GLOB_MAX = 200
LISTDIR_MAX = 500
BINARY_SNIFF = 8192


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _looks_binary(head: bytes) -> bool:
    return b"\0" in head


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # unreachable


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory then ``os.replace``: a reader never sees half a file.

    The temp file is created with mode 0o666 so the umask applies as for any new file; an existing file keeps its mode.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class _FileTool(Tool):
    """Runs the blocking body in a thread and turns OS errors into messages the model can act on."""

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            return await asyncio.to_thread(self.run_sync, args, ctx)
        except OSError as exc:
            where = f" ({display_path(ctx.root, exc.filename)})" if isinstance(exc.filename, str) else ""
            raise ToolError(f"{self.name} failed: {exc.strerror or exc}{where}") from exc
        except UnicodeError as exc:
            raise ToolError(f"{self.name} failed: the text is not valid Unicode ({exc})") from exc

    def run_sync(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raise NotImplementedError


# ---------------------------------------------------------------- Read, Write, Edit


class Read(_FileTool):
    name = "Read"
    description = (
        "Read a text file in the workspace. Output is numbered like `cat -n` (line number, tab, text). "
        "Reads up to `limit` lines (default 2000) from line `offset` (default 1); use both to page through long files. "
        "Lines longer than 2000 characters are truncated. Binary files are refused; use ListDir for directories."
    )
    parameters = _schema(
        {
            "path": {"type": "string", "description": "File path, relative to the workspace root."},
            "offset": {"type": "integer", "minimum": 1, "default": 1, "description": "First line to show (1-based)."},
            "limit": {"type": "integer", "minimum": 1, "default": 2000, "description": "How many lines to show."},
        },
        ["path"],
    )

    def run_sync(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path = resolve_in_root(ctx.root, args["path"], must_exist=True)
        shown = display_path(ctx.root, path)
        if path.is_dir():
            raise ToolError(f"{shown} is a directory, not a file; use ListDir to see its entries")
        if not path.is_file():
            raise ToolError(f"{shown} is not a regular file (a device or a pipe?); Read opens regular files only")
        offset, limit = args.get("offset", 1), args.get("limit", 2000)
        with open(path, "rb") as fh:
            if _looks_binary(fh.read(BINARY_SNIFF)):
                size = path.stat().st_size
                raise ToolError(f"{shown} looks like a binary file ({_human_size(size)}); Read shows text files only")
        out: list[str] = []
        total = truncated = 0
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            for total, line in enumerate(fh, 1):
                if offset <= total < offset + limit:
                    line = line.rstrip("\r\n")
                    if len(line) > READ_MAX_LINE:
                        line = f"{line[:READ_MAX_LINE]} ... [line truncated: {len(line)} characters]"
                        truncated += 1
                    out.append(f"{total:6}\t{line}")
        data = {"path": shown, "total_lines": total}
        if total == 0:
            return ToolResult(f"{shown} is empty (0 lines)", data=data)
        if offset > total:
            raise ToolError(f"offset {offset} is past the end of {shown}, which has {total} lines")
        last = offset + len(out) - 1
        notes = []
        if truncated:
            notes.append(f"[{truncated} long line(s) truncated at {READ_MAX_LINE} characters]")
        if offset > 1 or last < total:
            more = f"; use offset={last + 1} to read more" if last < total else ""
            notes.append(f"[showing lines {offset}-{last} of {total}{more}]")
        data["lines"] = [offset, last]
        return ToolResult("\n".join(out + notes), data=data)


class Write(_FileTool):
    name = "Write"
    description = (
        "Create or overwrite a file in the workspace with `content` (the whole new file). Parent directories are "
        "created. The write is atomic. To change part of an existing file, prefer Edit."
    )
    parameters = _schema(
        {
            "path": {"type": "string", "description": "File path, relative to the workspace root."},
            "content": {"type": "string", "description": "The complete file content."},
        },
        ["path", "content"],
    )

    def run_sync(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path = resolve_in_root(ctx.root, args["path"])
        shown = display_path(ctx.root, path)
        if path.is_dir():
            raise ToolError(f"{shown} is a directory; give a file path")
        existed = path.exists()
        old_size = path.stat().st_size if existed else 0
        data = args["content"].encode("utf-8", errors="surrogateescape")
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, data)
        action = "modified" if existed else "created"
        msg = f"Created {shown} ({len(data)} bytes)"
        if existed:
            msg = f"Overwrote {shown} ({len(data)} bytes, was {old_size})"
        return ToolResult(msg, data={"path": shown, "action": action, "bytes": len(data)})


class Edit(_FileTool):
    name = "Edit"
    description = (
        "Replace an exact string in a file. `old_string` must match the file exactly (whitespace and indentation "
        "included: copy it from Read's output without the line-number prefix) and must occur exactly once, unless "
        "`replace_all` is true. Add surrounding lines to `old_string` to make it unique. Use Write to create files."
    )
    parameters = _schema(
        {
            "path": {"type": "string", "description": "File path, relative to the workspace root."},
            "old_string": {"type": "string", "description": "The exact text to replace."},
            "new_string": {"type": "string", "description": "The text to put in its place."},
            "replace_all": {"type": "boolean", "default": False, "description": "Replace every occurrence."},
        },
        ["path", "old_string", "new_string"],
    )

    def run_sync(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        old, new, replace_all = args["old_string"], args["new_string"], args.get("replace_all", False)
        if not old:
            raise ToolError("old_string is empty; to create or overwrite a whole file use Write")
        if old == new:
            raise ToolError("old_string and new_string are identical; nothing to change")
        path = resolve_in_root(ctx.root, args["path"], must_exist=True)
        shown = display_path(ctx.root, path)
        if path.is_dir():
            raise ToolError(f"{shown} is a directory, not a file")
        if not path.is_file():
            raise ToolError(f"{shown} is not a regular file; Edit changes regular files only")
        raw = path.read_bytes()
        if _looks_binary(raw[:BINARY_SNIFF]):
            raise ToolError(f"{shown} looks like a binary file; Edit changes text files only")
        text = raw.decode("utf-8", errors="surrogateescape")  # round-trips bytes that are not UTF-8
        count = text.count(old)
        if count == 0 and "\r\n" in text and "\n" in old and "\r\n" not in old:
            old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")  # the file uses Windows line endings
            count = text.count(old)
        if count == 0:
            raise ToolError(
                f"old_string was not found in {shown}. It must match exactly, whitespace and indentation included; "
                "Read the file and copy the text again."
            )
        if count > 1 and not replace_all:
            raise ToolError(
                f"old_string occurs {count} times in {shown}; include more surrounding context to make it unique, "
                "or set replace_all to true to replace every occurrence"
            )
        first = text.index(old)
        updated = text.replace(old, new) if replace_all else text.replace(old, new, 1)
        _atomic_write(path, updated.encode("utf-8", errors="surrogateescape"))
        n = count if replace_all else 1
        msg = f"Edited {shown}: replaced {n} occurrence{'s' if n > 1 else ''}\n" + _snippet(updated, first, len(new))
        return ToolResult(msg, data={"path": shown, "action": "modified", "replacements": n})


def _snippet(text: str, start: int, length: int, around: int = 2, cap: int = 20) -> str:
    """The edited region with line numbers, so the model can check its change without another Read."""
    lines = text.split("\n")
    first = text.count("\n", 0, start)
    last = first + text.count("\n", start, start + length)
    lo, hi = max(0, first - around), min(len(lines), last + around + 1, first + cap)
    return "\n".join(f"{i + 1:6}\t{lines[i].rstrip(chr(13))[:READ_MAX_LINE]}" for i in range(lo, hi))


# ---------------------------------------------------------------- ListDir, Glob


class ListDir(_FileTool):
    name = "ListDir"
    description = (
        "List a directory in the workspace: one entry per line with its type (dir, file, link) and size, "
        "directories first. Hidden entries are shown and marked [hidden]. At most 500 entries."
    )
    parameters = _schema(
        {"path": {"type": "string", "default": ".", "description": "Directory, relative to the workspace root."}},
        [],
    )

    def run_sync(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path = resolve_in_root(ctx.root, args.get("path", "."), must_exist=True)
        shown = display_path(ctx.root, path)
        if not path.is_dir():
            raise ToolError(f"{shown} is a file, not a directory; use Read to see its content")
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: (not e.is_dir(follow_symlinks=False), e.name.lower(), e.name))
        rows = [self._row(e, ctx.root) for e in entries[:LISTDIR_MAX]]
        head = f"{shown}/ ({len(entries)} entr{'y' if len(entries) == 1 else 'ies'})"
        if not entries:
            return ToolResult(f"{head}: empty directory", data={"path": shown, "entries": 0})
        if len(entries) > LISTDIR_MAX:
            rows.append(f"[showing {LISTDIR_MAX} of {len(entries)} entries; use Glob to find specific files]")
        return ToolResult("\n".join([head, *rows]), data={"path": shown, "entries": len(entries)})

    @staticmethod
    def _row(entry: os.DirEntry[str], root: Path) -> str:
        hidden = "  [hidden]" if entry.name.startswith(".") else ""
        try:
            if entry.is_symlink():
                target, real_root = os.path.realpath(entry.path), os.path.realpath(root)
                inside = target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)
                where = display_path(root, target) if inside else "(outside the workspace)"
                if inside and not os.path.exists(target):
                    where += " (broken link)"
                return f"link {'-':>9}  {entry.name} -> {where}{hidden}"
            if entry.is_dir(follow_symlinks=False):
                return f"dir  {'-':>9}  {entry.name}/{hidden}"
            size = _human_size(entry.stat(follow_symlinks=False).st_size)
            return f"file {size:>9}  {entry.name}{hidden}"
        except OSError:
            return f"?    {'-':>9}  {entry.name}{hidden}"


class Glob(_FileTool):
    name = "Glob"
    description = (
        "Find files by name pattern, e.g. `**/*.py`, `src/**/*.{ts,tsx}`, `*.ipynb`. `*` matches within one "
        "directory, `**/` any depth. Matched against paths relative to `path` (default: workspace root). Returns "
        "workspace-relative paths, newest first, at most 200. Skips .git, node_modules, __pycache__, "
        ".ipynb_checkpoints and .venv; symlinks are not followed."
    )
    parameters = _schema(
        {
            "pattern": {"type": "string", "description": "Glob pattern, relative to `path`."},
            "path": {"type": "string", "default": ".", "description": "Directory to search in."},
        },
        ["pattern"],
    )

    def run_sync(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        pattern = args["pattern"].strip()
        if not pattern or pattern.startswith("/") or ".." in pattern.split("/") or "\x00" in pattern:
            raise ToolError("pattern must be a non-empty relative glob without '..'; choose the directory with `path`")
        base = resolve_in_root(ctx.root, args.get("path", "."), must_exist=True)
        if not base.is_dir():
            raise ToolError(f"{display_path(ctx.root, base)} is not a directory")
        # Walk only below the pattern's literal prefix: `src/pkg/**/*.py` starts at src/pkg.
        parts = pattern.split("/")
        literal = 0
        while literal < len(parts) - 1 and not re.search(r"[*?\[{]", parts[literal]):
            literal += 1
        if literal:
            start = display_path(ctx.root, base) + "/" + "/".join(parts[:literal])
            base = resolve_in_root(ctx.root, start)  # the prefix may itself be a symlink out of the root
            if not base.is_dir():
                return ToolResult(f"No files match {args['pattern']!r}", data={"count": 0})
        rx = glob_regex("/".join(parts[literal:]))
        skip = len(str(base).rstrip(os.sep)) + 1
        found = []
        for entry in walk_files(str(base)):
            if rx.match(entry.path[skip:].replace(os.sep, "/")):
                found.append((entry.stat(follow_symlinks=False).st_mtime, entry.path))
        found.sort(key=lambda f: (-f[0], f[1]))
        if not found:
            return ToolResult(f"No files match {args['pattern']!r}", data={"count": 0})
        lines = [display_path(ctx.root, p) for _, p in found[:GLOB_MAX]]
        if len(found) > GLOB_MAX:
            lines.append(f"[showing the {GLOB_MAX} newest of {len(found)} matches; narrow the pattern or path]")
        return ToolResult("\n".join(lines), data={"count": len(found)})


# ---------------------------------------------------------------- Grep


@dataclass
class _Hits:
    """Matches in one file: ``count`` matching lines, and in content mode the (line, text, is_match) rows."""

    path: str
    count: int = 0
    rows: list[tuple[int, str, bool]] = field(default_factory=list)


def _sort_key(path: str) -> list[str]:
    return path.split("/")  # the order of a name-sorted depth-first walk, which both search paths share


def _ripgrep() -> str | None:
    return shutil.which("rg")


class Grep(_FileTool):
    name = "Grep"
    description = (
        "Search file contents with a regular expression (Python `re` syntax, matched line by line). "
        "output_mode: 'files_with_matches' (default: matching file paths), 'content' (path:line:text, with "
        "`context` lines around each match shown as path-line-text), or 'count' (path:matching-line-count). "
        "`include` filters files by glob ('*.py' matches names at any depth, 'src/**/*.ts' paths under `path`). "
        "Skips binary files, files over 5 MB, .git, node_modules, __pycache__, .ipynb_checkpoints and .venv."
    )
    parameters = _schema(
        {
            "pattern": {"type": "string", "description": "Regular expression to search for."},
            "path": {"type": "string", "default": ".", "description": "File or directory to search in."},
            "include": {"type": "string", "description": "Only search files matching this glob, e.g. '*.py'."},
            "case_insensitive": {"type": "boolean", "default": False},
            "output_mode": {
                "type": "string",
                "enum": ["content", "files_with_matches", "count"],
                "default": "files_with_matches",
            },
            "context": {"type": "integer", "minimum": 0, "maximum": 50, "default": 0,
                        "description": "Lines of context before and after each match (content mode)."},
        },
        ["pattern"],
    )

    def run_sync(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        flags = re.MULTILINE | (re.IGNORECASE if args.get("case_insensitive") else 0)
        try:
            rx = re.compile(args["pattern"], flags)
        except re.error as exc:
            raise ToolError(f"invalid regular expression {args['pattern']!r}: {exc}") from exc
        base = resolve_in_root(ctx.root, args.get("path", "."), must_exist=True)
        if not (base.is_dir() or base.is_file()):
            raise ToolError(f"{display_path(ctx.root, base)} is not a regular file or a directory")
        mode = args.get("output_mode", "files_with_matches")
        context = args.get("context", 0) if mode == "content" else 0
        include = args.get("include")
        hits = None
        rg = _ripgrep()
        if rg and base.is_dir():
            hits = self._search_rg(rg, args, base, ctx.root, context)  # None when rg failed: fall back
        if hits is None:
            hits = self._search_py(rx, base, ctx.root, include, mode, context)
        return _format(hits, mode, context, args["pattern"], display_path(ctx.root, base))

    @staticmethod
    def _search_py(
        rx: re.Pattern[str], base: Path, root: Path, include: str | None, mode: str, context: int
    ) -> list[_Hits]:
        inc = glob_regex(include) if include else None
        if base.is_dir():
            skip = len(str(base).rstrip(os.sep)) + 1
            files = [(e.path, e.path[skip:].replace(os.sep, "/")) for e in walk_files(str(base))]
        else:
            files = [(str(base), base.name)]
        results, lines_out = [], 0
        for full, rel in files:
            if inc and not inc.match(rel if "/" in (include or "") else rel.rsplit("/", 1)[-1]):
                continue
            try:
                if os.path.getsize(full) > GREP_MAX_BYTES:
                    continue
                raw = Path(full).read_bytes()
            except OSError:
                continue
            if _looks_binary(raw):
                continue
            text = raw.decode("utf-8", errors="replace")
            if not rx.search(text):  # one C-speed scan rejects most files before splitting lines
                continue
            lines = text.split("\n")
            if text.endswith("\n"):
                lines.pop()
            matched = [i for i, line in enumerate(lines) if rx.search(line)]
            if not matched:
                continue
            hit = _Hits(display_path(root, full), len(matched))
            if mode == "content":
                keep = sorted({j for i in matched for j in range(i - context, i + context + 1) if 0 <= j < len(lines)})
                wanted = set(matched)
                hit.rows = [(j + 1, lines[j], j in wanted) for j in keep]
                lines_out += len(hit.rows)
            results.append(hit)
            if mode == "content" and lines_out > GREP_MAX_CONTENT_LINES:
                break  # the output is capped anyway; stop reading a big tree
        return results

    @staticmethod
    def _search_rg(rg: str, args: dict[str, Any], base: Path, root: Path, context: int) -> list[_Hits] | None:
        # same skips as the walker: hidden files searched, no .gitignore, no config, no symlinks followed
        cmd = [rg, "--json", "--hidden", "--no-ignore", "--no-config", "--no-messages",
               "--max-filesize", str(GREP_MAX_BYTES)]
        for d in sorted(SKIP_DIRS):
            cmd += ["--glob", f"!{d}"]
        if args.get("include"):
            cmd += ["--glob", args["include"]]
        if args.get("case_insensitive"):
            cmd.append("-i")
        if context:
            cmd += ["-C", str(context)]
        cmd += ["-e", args["pattern"], "."]
        try:
            proc = subprocess.run(cmd, cwd=base, capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if proc.returncode not in (0, 1):  # e.g. a regex rg's engine does not support: the Python walker will
            return None
        return parse_rg_json(proc.stdout.decode("utf-8", errors="replace"), base, root)


def parse_rg_json(stdout: str, base: Path, root: Path) -> list[_Hits]:
    """Turn ``rg --json`` events into the same :class:`_Hits` the Python walker produces."""

    def text(obj: dict[str, str]) -> str:
        return obj["text"] if "text" in obj else base64.b64decode(obj["bytes"]).decode("utf-8", errors="replace")

    by_path: dict[str, _Hits] = {}
    for raw in stdout.splitlines():
        event = json.loads(raw)
        if event.get("type") not in ("match", "context"):
            continue
        data = event["data"]
        full = os.path.normpath(os.path.join(base, text(data["path"])))
        shown = display_path(root, full)
        hit = by_path.setdefault(shown, _Hits(shown))
        line = text(data["lines"])
        line = line[:-1] if line.endswith("\n") else line
        is_match = event["type"] == "match"
        hit.count += is_match
        hit.rows.append((data["line_number"], line, is_match))
    return [by_path[p] for p in sorted(by_path, key=_sort_key)]


def _clip(line: str) -> str:
    line = line.rstrip("\r")
    return line if len(line) <= GREP_MAX_LINE else f"{line[:GREP_MAX_LINE]} ... [+{len(line) - GREP_MAX_LINE} chars]"


def _format(hits: list[_Hits], mode: str, context: int, pattern: str, where: str) -> ToolResult:
    """One output format for both search paths: rg-like ``path:line:text`` rows, ``--`` between context groups."""
    hits = sorted(hits, key=lambda h: _sort_key(h.path))
    data = {"files": len(hits), "matches": sum(h.count for h in hits), "truncated": False}
    if not hits:
        return ToolResult(f"No matches for /{pattern}/ in {where}", data=data)
    out: list[str] = []
    if mode == "content":
        for hit in hits:
            prev = None
            for num, line, is_match in hit.rows:
                if context and out and (prev is None or num > prev + 1):
                    out.append("--")
                sep = ":" if is_match else "-"
                out.append(f"{hit.path}{sep}{num}{sep}{_clip(line)}")
                prev = num
        if len(out) > GREP_MAX_CONTENT_LINES:
            out = out[:GREP_MAX_CONTENT_LINES]
            out.append(f"[output capped at {GREP_MAX_CONTENT_LINES} lines; narrow the pattern, path or include]")
            data["truncated"] = True
        return ToolResult("\n".join(out), data=data)
    rows = [h.path if mode == "files_with_matches" else f"{h.path}:{h.count}" for h in hits]
    if len(rows) > GREP_MAX_FILES:
        rows = rows[:GREP_MAX_FILES] + [f"[showing {GREP_MAX_FILES} of {len(hits)} files; narrow the search]"]
        data["truncated"] = True
    return ToolResult("\n".join(rows), data=data)


# ---------------------------------------------------------------- ElapsedTime


class ElapsedTime(Tool):
    name = "ElapsedTime"
    description = (
        "How long this session has been running. Use it to plan long jobs: check it before starting work that "
        "takes a while and while waiting on background processes."
    )
    parameters = _schema({}, [])

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        seconds = max(0.0, time.time() - ctx.started_at)
        whole = int(seconds)
        h, m, s = whole // 3600, whole % 3600 // 60, whole % 60
        human = f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s" if m else f"{s}s"
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ctx.started_at))
        return ToolResult(
            f"Session running for {human} ({seconds:.1f} seconds), since {started}.", data={"seconds": seconds}
        )


def file_tools() -> list[Tool]:
    """One instance of each file tool, ready for a :class:`ToolRegistry`."""
    return [Read(), Write(), Edit(), ListDir(), Glob(), Grep(), ElapsedTime()]
