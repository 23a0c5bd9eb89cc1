"""Confine every path a tool touches to the workspace root, and walk trees without leaving it.

The model names files with strings it made up or read somewhere; any of them may be ``../x``, an absolute path,
or a path through a symlink that leads out of the workspace. :func:`resolve_in_root` is the one gate: it returns
the *real* path (symlinks resolved), so the caller then operates on a location that was checked, never on a link
that could point elsewhere.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePath

from .base import ToolError

#: never walked into by Glob and Grep: tool caches and vendored trees that drown real results
SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__", ".ipynb_checkpoints", ".venv"})


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def resolve_in_root(root: Path, user_path: str, *, must_exist: bool = False) -> Path:
    """Return the real path of ``user_path`` inside ``root``, or raise :class:`ToolError`.

    Relative paths are taken from ``root``; absolute ones are accepted only inside it. The check is done twice:
    lexically (``..``) and on the fully resolved path, so a symlinked file, a symlinked parent directory, or a
    not-yet-existing file under a symlinked directory cannot lead outside.
    """
    if not isinstance(user_path, str):
        raise ToolError(f"path must be a string, got {type(user_path).__name__}")
    if "\x00" in user_path:
        raise ToolError("path contains a null byte")
    if not user_path.strip():
        raise ToolError("path is empty; use '.' for the workspace root")
    abs_root = os.path.abspath(root)
    real_root = os.path.realpath(root)
    given = os.path.join(abs_root, user_path)  # an absolute user_path replaces abs_root
    lexical = os.path.normpath(given)
    if not (_within(lexical, abs_root) or _within(lexical, real_root)):
        raise ToolError(f"path {user_path!r} is outside the workspace root")
    real = os.path.realpath(given)
    if not _within(real, real_root):
        raise ToolError(f"path {user_path!r} is outside the workspace root (it leads out through a symlink)")
    if must_exist and not os.path.exists(real):
        raise ToolError(f"path {user_path!r} does not exist{_suggest(Path(real), user_path)}")
    return Path(real)


def _suggest(missing: Path, user_path: str) -> str:
    """A 'did you mean' hint from the parent directory: the model often gets one letter or the extension wrong."""
    try:
        names = os.listdir(missing.parent)
    except OSError:
        return ""
    close = difflib.get_close_matches(missing.name, names, n=3, cutoff=0.6)
    if not close:
        return ""
    head = PurePath(user_path).parent.as_posix()
    shown = [n if head == "." else f"{head}/{n}" for n in close]
    return "; did you mean " + " or ".join(repr(s) for s in shown) + "?"


def display_path(root: Path, p: Path | str) -> str:
    """The root-relative POSIX path shown to the model ('.' for the root), so it can pass it straight back."""
    absolute = os.path.abspath(p)
    for base in (os.path.realpath(root), os.path.abspath(root)):
        try:
            rel = PurePath(absolute).relative_to(base)
        except ValueError:
            continue
        return rel.as_posix() or "."
    return PurePath(absolute).as_posix()


def _entries(directory: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:  # unreadable directory: skip it, as find and rg do
        return []


def walk_files(base: str) -> Iterator[os.DirEntry[str]]:
    """Regular files under ``base`` in name order, depth first; skips SKIP_DIRS and never follows a symlink.

    Not following links is what keeps a walk inside the root (and out of link cycles); ripgrep does the same.
    """
    stack = [iter(_entries(base))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        try:
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIP_DIRS:
                    stack.append(iter(_entries(entry.path)))
            elif entry.is_file(follow_symlinks=False):
                yield entry
        except OSError:
            continue


def _expand_braces(pattern: str, limit: int = 64) -> list[str]:
    """``*.{py,ts}`` -> ``*.py``, ``*.ts``; nesting allowed, an unmatched brace stays literal, at most ``limit``."""
    depth, start = 0, -1
    for i, ch in enumerate(pattern):
        if ch == "{":
            depth, start = depth + 1, i if depth == 0 else start
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                body, alts, level, cut = pattern[start + 1 : i], [], 0, 0
                for j, c in enumerate(body):
                    level += {"{": 1, "}": -1}.get(c, 0)
                    if c == "," and level == 0:
                        alts.append(body[cut:j])
                        cut = j + 1
                alts.append(body[cut:])
                if len(alts) == 1:
                    continue
                out: list[str] = []
                for alt in alts:  # stop early: '{a,b}' repeated 30 times must not make 2**30 patterns
                    out += _expand_braces(pattern[:start] + alt + pattern[i + 1 :], limit - len(out))
                    if len(out) >= limit:
                        break
                return out[:limit]
    return [pattern]


def _glob_part(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body[0] in "!^" else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob for POSIX relative paths: ``*`` stays in one directory, ``**/`` spans any number of them."""
    return re.compile("(?:" + "|".join(_glob_part(p) for p in _expand_braces(pattern)) + r")\Z", re.DOTALL)
