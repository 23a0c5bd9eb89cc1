"""Files and notebooks the user attached to a prompt (the sidebar's ``@`` mentions and "Attach notebook").

A prompt's ``context.attachments`` holds references, ``[{"type": "file"|"notebook", "path": ..., "cell_ids"?: [...]}]``.
When the turn starts they are read, and the two halves go to different places on purpose:

- the *content* rides on the history's user message (``UserMessage.attachments``), so it is part of the session's
  memory (saved with it, counted against the context budget, summarized by compaction like any message) and every
  later model call sees what the user pointed at, as it was when they sent it;
- the ``user_message`` event keeps only the references, with the size sent and a note when something was cut or
  refused: the event log replays the chips of a reopened session without storing every file twice.

Notebooks are read through the :class:`~..host.base.NotebookHost`, so a notebook open in JupyterLab is attached as
the user sees it (the collaboration room, unsaved typing included), as its cells with outputs trimmed and images
described by the same helpers the notebook tool uses. Files go through the root-confinement gate of the file tools.
Anything missing, outside the root, binary or unreadable becomes a visible note in the message and a log warning,
never a failed turn; sizes are capped per attachment and per message with a note saying how much was left out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..host.base import NotebookHost
from ..tools.notebook import READ_CELLS_OUTPUT_LIMIT
from ..tools.outputs import cell_text, human_size
from ..tools.paths import display_path, resolve_in_root

TYPES = ("file", "notebook")
MAX_ATTACHMENTS = 20
MAX_PATH_CHARS = 1024
MAX_CELL_IDS = 1000
MAX_CELL_ID_CHARS = 256
#: bytes of one attachment's text sent to the model (the rest is cut with a note)
MAX_ATTACHMENT_BYTES = 100_000
#: bytes of all attachments of one message
MAX_TOTAL_BYTES = 300_000
BINARY_SNIFF = 8192

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttachmentRef:
    type: str
    path: str
    cell_ids: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "path": self.path}
        if self.cell_ids is not None:
            out["cell_ids"] = list(self.cell_ids)
        return out


def parse_attachment(item: Any) -> AttachmentRef:
    """One reference from a client, checked strictly; ValueError says what is wrong with it."""
    if not isinstance(item, dict):
        raise ValueError("an attachment must be an object {type, path, cell_ids?}")
    unknown = set(item) - {"type", "path", "cell_ids"}
    if unknown:
        raise ValueError(f"unknown attachment field(s): {', '.join(sorted(map(str, unknown)))}")
    kind, path, cell_ids = item.get("type"), item.get("path"), item.get("cell_ids")
    if kind not in TYPES:
        raise ValueError(f"attachment 'type' must be one of {list(TYPES)}")
    if not isinstance(path, str) or not path.strip():
        raise ValueError("attachment 'path' must be a non-empty string")
    if len(path) > MAX_PATH_CHARS or "\x00" in path:
        raise ValueError(f"attachment 'path' must be at most {MAX_PATH_CHARS} characters, without null bytes")
    path = path.strip()
    if path.endswith(".ipynb"):
        kind = "notebook"  # a notebook's raw JSON is no use to the model: always its cells
    elif kind == "notebook":
        raise ValueError(f"attachment {path!r} has type 'notebook' but is not an .ipynb file")
    ids: tuple[str, ...] | None = None
    if cell_ids is not None:
        if kind != "notebook":
            raise ValueError("'cell_ids' is for notebook attachments only")
        if not isinstance(cell_ids, list) or not cell_ids or len(cell_ids) > MAX_CELL_IDS:
            raise ValueError(f"'cell_ids' must be a non-empty list of at most {MAX_CELL_IDS} cell ids "
                             "(omit it to attach the whole notebook)")
        if not all(isinstance(c, str) and 0 < len(c) <= MAX_CELL_ID_CHARS for c in cell_ids):
            raise ValueError(f"'cell_ids' must be strings of 1 to {MAX_CELL_ID_CHARS} characters")
        ids = tuple(dict.fromkeys(cell_ids))
    return AttachmentRef(kind, path, ids)


def parse_attachments(value: Any) -> list[AttachmentRef]:
    """A prompt's ``context.attachments``, checked strictly (the socket refuses the prompt on ValueError)."""
    if not isinstance(value, list):
        raise ValueError("'context.attachments' must be a list")
    if len(value) > MAX_ATTACHMENTS:
        raise ValueError(f"at most {MAX_ATTACHMENTS} attachments per prompt (got {len(value)})")
    refs = []
    for i, item in enumerate(value):
        try:
            refs.append(parse_attachment(item))
        except ValueError as exc:
            raise ValueError(f"attachment {i}: {exc}") from None
    return refs


class Refused(Exception):
    """Why one attachment is not sent; the text becomes the note the user and the model see."""


@dataclass
class _Read:
    ref: AttachmentRef
    path: str
    content: str = ""
    note: str | None = None
    refused: bool = False


def _read_text_file(root: Path, ref: AttachmentRef, cap: int) -> tuple[str, str, str | None]:
    """(display path, text, note) of a file, at most ``cap`` bytes of it; :class:`Refused` says why not."""
    try:
        real = resolve_in_root(root, ref.path, must_exist=True)
    except Exception as exc:  # ToolError: outside the root, a symlink escape, missing
        raise Refused(str(exc)) from None
    shown = display_path(root, real)
    if real.is_dir():
        raise Refused(f"{shown} is a directory; attach the files in it")
    if not real.is_file():
        raise Refused(f"{shown} is not a regular file")
    size = real.stat().st_size
    with open(real, "rb") as fh:
        data = fh.read(max(cap, BINARY_SNIFF) + 1)
    if b"\0" in data[:BINARY_SNIFF]:
        raise Refused(f"{shown} is a binary file ({human_size(size)}); only text files can be attached")
    if len(data) <= cap:
        return shown, data.decode("utf-8", errors="replace"), None
    kept = data[:cap].decode("utf-8", errors="ignore")  # no half character at the cut
    return shown, kept, f"[truncated: {len(kept.encode())} of {size} bytes]"


async def _read_notebook(root: Path, host: NotebookHost, ref: AttachmentRef) -> tuple[str, str, str | None]:
    """(display path, the cells as model text, note) of a notebook read through the host (the room when open)."""
    try:
        real = await asyncio.to_thread(resolve_in_root, root, ref.path, must_exist=True)
    except Exception as exc:
        raise Refused(str(exc)) from None
    shown = display_path(root, real)
    try:
        nb = await host.read(shown)
    except Exception as exc:  # HostError: not a notebook, invalid JSON, the contents manager refused
        raise Refused(f"{shown} could not be read as a notebook: {exc}") from None
    cells = list(enumerate(nb.cells))
    note = None
    if ref.cell_ids is not None:
        wanted = set(ref.cell_ids)
        found = {c.get("id") for _, c in cells}
        cells = [(i, c) for i, c in cells if c.get("id") in wanted]
        missing = [cid for cid in ref.cell_ids if cid not in found]
        if not cells:
            raise Refused(f"none of the selected cells are in {shown} any more")
        if missing:
            note = f"[cells no longer in the notebook: {', '.join(missing)}]"
    head = f"Notebook {shown}: {len(nb.cells)} cells" + (
        f"; the {len(cells)} selected cell(s) follow" if ref.cell_ids is not None else "")
    body = "\n\n".join(cell_text(i, cell, READ_CELLS_OUTPUT_LIMIT) for i, cell in cells)
    return shown, f"{head}\n\n{body}", note


def _cap(text: str, cap: int) -> tuple[str, str | None]:
    data = text.encode("utf-8")
    if len(data) <= cap:
        return text, None
    kept = data[:cap].decode("utf-8", errors="ignore")
    return kept, f"[truncated: {len(kept.encode())} of {len(data)} bytes]"


async def _read_one(root: Path, host: NotebookHost, ref: AttachmentRef, budget: int,
                    redact: Callable[[str], str]) -> _Read:
    if budget <= 0:
        return _Read(ref, ref.path, note=f"[not attached: this message's attachments already reach the "
                     f"{human_size(MAX_TOTAL_BYTES)} cap]", refused=True)
    cap = min(budget, MAX_ATTACHMENT_BYTES)
    try:
        if ref.type == "notebook":
            shown, text, note = await _read_notebook(root, host, ref)
            text, cut = _cap(text, cap)
        else:
            shown, text, cut = await asyncio.to_thread(_read_text_file, root, ref, cap)
            note = None
    except Refused as exc:
        return _Read(ref, ref.path, note=f"[not attached: {exc}]", refused=True)
    except Exception as exc:  # an OS error, a bug of ours: the turn goes on without this one
        log.warning("IDE agent: reading attachment %r failed", ref.path, exc_info=True)
        return _Read(ref, ref.path, note=f"[not attached: {ref.path} could not be read: {exc}]", refused=True)
    if cut and cap < MAX_ATTACHMENT_BYTES:
        cut = cut[:-1] + f"; one message's attachments are capped at {human_size(MAX_TOTAL_BYTES)}]"
    return _Read(ref, shown, redact(text), " ".join(n for n in (note, cut) if n) or None)


async def resolve_attachments(
    context: dict[str, Any] | None, root: Path, host: NotebookHost,
    redact: Callable[[str], str] = lambda text: text, logger: logging.Logger | None = None,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Read ``context["attachments"]``. Returns the context for the ``user_message`` event (the references with
    ``size`` sent and ``note``/``refused`` when cut or refused) and the attachments for the history's user
    message (``{type, path, cell_ids?, content}``). Never raises: every problem is a note."""
    if not isinstance(context, dict) or "attachments" not in context:
        return context, []
    logger = logger or log
    raw = context.get("attachments")
    items = raw if isinstance(raw, list) else [raw]
    refs: list[AttachmentRef | tuple[Any, str]] = []
    for item in items[:MAX_ATTACHMENTS]:
        try:
            ref = parse_attachment(item)
            if ref not in refs:
                refs.append(ref)
        except ValueError as exc:  # the socket checks first; the Python API may pass anything
            refs.append((item, str(exc)))
    if len(items) > MAX_ATTACHMENTS:
        refs.append(({"path": f"({len(items) - MAX_ATTACHMENTS} more)"}, f"at most {MAX_ATTACHMENTS} per message"))
    events: list[dict[str, Any]] = []
    attached: list[dict[str, Any]] = []
    used = 0
    for ref in refs:
        if isinstance(ref, tuple):
            item, why = ref
            path = str(item.get("path", "?") if isinstance(item, dict) else item)[:200]
            read = _Read(AttachmentRef("file", path), path, note=f"[not attached: {why}]", refused=True)
        else:
            read = await _read_one(root, host, ref, MAX_TOTAL_BYTES - used, redact)
        size = len(read.content.encode("utf-8"))
        used += size
        event = {**read.ref.to_json(), "path": read.path, "size": size}
        if read.note:
            event["note"] = read.note
            logger.warning("IDE agent: attachment %s: %s", read.path, read.note)
        if read.refused:
            event["refused"] = True
        events.append(event)
        body = read.content + (f"\n{read.note}" if read.note and read.content else read.note or "")
        attached.append({**read.ref.to_json(), "path": read.path, "content": body})
    return {**context, "attachments": events}, attached
