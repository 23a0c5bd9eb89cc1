"""The workspace's files and notebooks for the sidebar's ``@`` completion, ranked for a typed query.

The sidebar asks on (almost) every keystroke, so the listing is cached for a few seconds and built in a thread,
and the walk stops at a file count and a time limit: a home directory with a million files must never hold the
server's event loop, nor keep a thread busy for long. The walk stays inside the root the way the file tools'
walk does (no symlink is followed) and skips hidden entries and the heavy trees nobody attaches (``.git``,
``node_modules``, virtual environments, caches): JupyterLab's file browser hides them too.

Ranking follows what the editors' ``@file`` pickers do: a file whose *name* starts with the query first, then
names containing it, then paths containing it, then a fuzzy match (the query's characters in order), each tier
shortest path first. An empty query lists the most recently modified files.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..tools.paths import SKIP_DIRS as TOOL_SKIP_DIRS
from .state import SKIP_DIRS as STATE_SKIP_DIRS

#: never walked into (besides every hidden directory): vendored trees and caches
SKIP_DIRS = frozenset(TOOL_SKIP_DIRS | STATE_SKIP_DIRS | {"site-packages", "dist-packages"})
MAX_FILES = 50_000
MAX_WALK_SECONDS = 2.0
#: how long a listing is reused: typing a query must not walk the tree per keystroke
CACHE_SECONDS = 5.0
MAX_LIMIT = 200


@dataclass(frozen=True)
class FileEntry:
    path: str  # root-relative, POSIX
    type: str  # "file" | "notebook"
    size: int
    mtime: float

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class Listing:
    entries: list[FileEntry]
    #: the walk stopped early (count or time cap): some files are not offered
    truncated: bool
    made_at: float


def walk_workspace(root: Path, max_files: int = MAX_FILES, max_seconds: float = MAX_WALK_SECONDS) -> Listing:
    """Every visible regular file under ``root`` (breadth first, so a huge deep tree still yields the top levels)."""
    started = time.monotonic()
    base = os.path.realpath(root)
    entries: list[FileEntry] = []
    pending = deque([base])
    truncated = False
    while pending:
        directory = pending.popleft()
        try:
            with os.scandir(directory) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError:  # unreadable: skipped, as the file tools do
            continue
        for entry in children:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIP_DIRS:
                        pending.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    rel = os.path.relpath(entry.path, base).replace(os.sep, "/")
                    kind = "notebook" if entry.name.endswith(".ipynb") else "file"
                    entries.append(FileEntry(rel, kind, st.st_size, st.st_mtime))
            except OSError:
                continue
            if len(entries) >= max_files:
                return Listing(entries, True, time.monotonic())
        if time.monotonic() - started > max_seconds:
            truncated = bool(pending)
            break
    return Listing(entries, truncated, time.monotonic())


def _fuzzy_span(query: str, text: str) -> int | None:
    """Length of the shortest-ending in-order match of ``query``'s characters in ``text`` (None: no match)."""
    start = pos = -1
    for ch in query:
        pos = text.find(ch, pos + 1)
        if pos < 0:
            return None
        if start < 0:
            start = pos
    return pos - start + 1


def rank_key(query: str, entry: FileEntry) -> tuple[int, int, int, str] | None:
    """Sort key of ``entry`` for ``query`` (lower is better), or None when it does not match at all."""
    q = query.lower()
    path, name = entry.path.lower(), entry.name.lower()
    if name.startswith(q):
        tier, closeness = 0, 0
    elif q in name:
        tier, closeness = 1, name.index(q)
    elif q in path:
        tier, closeness = 2, 0
    else:
        span = _fuzzy_span(q, path)
        if span is None:
            return None
        tier, closeness = 3, span - len(q)  # fewer characters between the matched ones is better
    return tier, closeness, len(path), path


def rank(query: str, entries: Iterable[FileEntry], limit: int) -> list[FileEntry]:
    """The best ``limit`` entries for ``query``; with an empty query the most recently modified."""
    query = query.strip().lstrip("@")
    if not query:
        return sorted(entries, key=lambda e: (-e.mtime, e.path))[:limit]
    keyed = [(key, e) for e in entries if (key := rank_key(query, e)) is not None]
    keyed.sort(key=lambda pair: pair[0])
    return [e for _, e in keyed[:limit]]


class FileIndex:
    """The cached listing of one root; concurrent requests share one walk."""

    def __init__(self, root: Path, cache_seconds: float = CACHE_SECONDS, max_files: int = MAX_FILES,
                 max_seconds: float = MAX_WALK_SECONDS) -> None:
        self.root = Path(root)
        self.cache_seconds = cache_seconds
        self.max_files = max_files
        self.max_seconds = max_seconds
        self._listing: Listing | None = None
        self._walking: asyncio.Future[Listing] | None = None

    async def listing(self) -> Listing:
        current = self._listing
        if current is not None and time.monotonic() - current.made_at < self.cache_seconds:
            return current
        if self._walking is None or self._walking.done():
            self._walking = asyncio.ensure_future(
                asyncio.to_thread(walk_workspace, self.root, self.max_files, self.max_seconds))
        self._listing = await asyncio.shield(self._walking)
        return self._listing

    async def search(self, query: str, limit: int = 50) -> dict[str, Any]:
        """``{"files": [{path, type, size, mtime}], "truncated": bool}`` for the completion route."""
        listing = await self.listing()
        found = rank(query, listing.entries, max(1, min(limit, MAX_LIMIT)))
        return {"files": [asdict(e) for e in found], "truncated": listing.truncated}
