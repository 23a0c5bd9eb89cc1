"""Live edits of a notebook open in JupyterLab: through its collaboration room's shared ``YNotebook``.

When jupyter-collaboration (``jupyter_server_ydoc``) runs in the server and a browser has the notebook open, the
notebook's truth is the room's Yjs document, not the file: the browser edits it, and the room writes it to disk
(autosave). Writing the file behind the room's back would make the room reload it whole ("out-of-band change") and
drop whatever the user typed since. So :class:`~.server.ServerHost` reads and edits such a notebook through the room:

* :func:`shared_notebook` finds the room's live document through the extension's public ``get_document``;
* :func:`read_notebook` turns it into an nbformat dict (cells keep their Yjs ids);
* :func:`apply_changes` applies only what the agent changed (``base`` = what it read, ``new`` = what it wants),
  cell by cell and field by field, by cell id, in one transaction: the user's concurrent edits elsewhere are kept by
  the CRDT, and the document is never replaced whole;
* :class:`LiveOutputs` streams a running cell's outputs into its cell (found by id each time), at most a few
  updates a second.

Nothing here imports jupyter_server_ydoc: without it there is simply no room, and the contents manager is used.
"""

from __future__ import annotations

import asyncio
import bisect
import copy
import logging
import uuid
from typing import Any

from pycrdt import Array, Map, Text

log = logging.getLogger(__name__)

#: the room of a notebook is ``json:notebook:<file id>`` (jupyter_server_ydoc.utils.encode_file_path)
ROOM_FORMAT = "json:notebook:{}"
#: seconds to wait for a room that a browser is just opening to load the file
ROOM_READY_TIMEOUT = 10.0
#: seconds between two output updates of a running cell (the first one goes out at once)
OUTPUT_INTERVAL = 0.25

_CELL_SKIP = {"id", "execution_state"}


# ------------------------------------------------------------------------------------------------ finding the room


async def shared_notebook(settings: Any, path: str, ready_timeout: float = ROOM_READY_TIMEOUT) -> Any | None:
    """The live ``YNotebook`` of the collaboration room of ``path`` (an API path), or None if no room is open.

    ``settings`` are the Tornado settings of the server (``serverapp.web_app.settings``), where the ydoc extension
    (``settings["jupyter_server_ydoc"]``) and the file id manager register themselves. Never opens a room: a notebook
    nobody has open is edited on disk as before.
    """
    ext = settings.get("jupyter_server_ydoc") if settings else None
    ids = settings.get("file_id_manager") if settings else None
    if ext is None or ids is None or not hasattr(ext, "get_document"):
        return None
    try:
        file_id = ids.get_id(path)  # None when never indexed: a room needs an index entry first
    except Exception:  # a file id manager that cannot answer: no room to find
        return None
    if not file_id:
        return None
    room_id = ROOM_FORMAT.format(file_id)
    server = getattr(ext, "ywebsocket_server", None)
    if server is None or room_id not in getattr(server, "rooms", {}):
        return None
    try:
        doc = await ext.get_document(room_id=room_id, copy=False)
    except Exception as exc:
        log.warning("could not get the shared document of %s: %s", path, exc)
        return None
    if doc is None or not hasattr(doc, "ycells"):
        return None
    room = server.rooms.get(room_id)
    if room is not None and not getattr(room, "ready", True):
        # A browser is opening the notebook right now: the room is loading the file. Wait for it, or the document
        # would look empty.
        loop = asyncio.get_running_loop()
        until = loop.time() + ready_timeout
        while not room.ready:
            if loop.time() > until or server.rooms.get(room_id) is not room:
                return None
            await asyncio.sleep(0.05)
    return doc


# ------------------------------------------------------------------------------------------------ reading


def _meta(ynb: Any) -> Map:
    return ynb.ydoc.get("meta", type=Map)


def _to_int(value: Any) -> Any:
    """Yjs numbers are floats: give back ints where they were ints (as jupyter_ydoc does)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _to_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_int(v) for v in value]
    return value


def _cell_to_py(ycell: Map) -> dict[str, Any]:
    cell = _to_int(ycell.to_py() or {})
    cell.pop("execution_state", None)
    if cell.get("cell_type") in ("markdown", "raw") and "attachments" in cell and not cell["attachments"]:
        del cell["attachments"]
    return cell


def read_notebook(ynb: Any) -> dict[str, Any]:
    """The notebook in ``ynb`` as an nbformat v4 dict, cells with their ids.

    What the room would save, except that ids are kept even for a 4.0-4.4 notebook (the document is raised to 4.5,
    as JupyterLab does on its first save), so the ids the agent is shown stay valid. A cell without an id or with a
    duplicate id gets a new one in the document.
    """
    ymeta = _meta(ynb)
    meta = _to_int(ymeta.to_py() or {})
    cells: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}
    fixes: list[tuple[Map, str]] = []
    for ycell in ynb.ycells:
        cell = _cell_to_py(ycell)
        cid = cell.get("id")
        if isinstance(cid, str) and cid and cid in seen:
            if seen[cid] == cell:
                continue  # an exact duplicate: the room's save drops it too
            cid = None
        if not isinstance(cid, str) or not cid:
            cid = uuid.uuid4().hex[:8]
            fixes.append((ycell, cid))
            cell["id"] = cid
        seen[cid] = cell
        cells.append(cell)
    minor = int(meta.get("nbformat_minor", 0) or 0)
    if fixes or minor < 5:
        with ynb.ydoc.transaction():
            for ycell, cid in fixes:
                ycell["id"] = cid
            if minor < 5:
                ymeta["nbformat_minor"] = 5.0
                if not meta.get("nbformat"):
                    ymeta["nbformat"] = 4.0
    return {
        "cells": cells,
        "metadata": meta.get("metadata") or {},
        "nbformat": int(meta.get("nbformat", 4) or 4),
        "nbformat_minor": max(minor, 5),
    }


# ------------------------------------------------------------------------------------------------ writing


def _plain(value: Any) -> Any:
    """A JSON value with nbformat's NotebookNodes as plain dicts, deep-copied, ints as floats (Yjs numbers)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else (value or "")


def _youtput(output: dict[str, Any]) -> Map:
    """One output as the frontend stores it: a map, with a stream's text as a shared text it can append to."""
    out = _plain(output)
    if out.get("output_type") == "stream":
        out["text"] = Text(_text(out.get("text", "")))
    return Map(out)


def _ycell(cell: dict[str, Any]) -> Map:
    """A new shared cell (jupyter_ydoc's ``create_ycell`` layout)."""
    cell = _plain(cell)
    cell["source"] = Text(_text(cell.get("source", "")))
    cell["metadata"] = Map(cell.get("metadata") or {})
    if cell.get("cell_type") == "code":
        cell["outputs"] = Array([_youtput(o) for o in cell.get("outputs") or []])
        cell["execution_state"] = "idle"
    elif "attachments" in cell and not cell["attachments"]:
        del cell["attachments"]
    return Map(cell)


def set_text(ytext: Text, value: str) -> None:
    """Replace the text with the fewest changes (common prefix and suffix kept), so cursors elsewhere stay put."""
    old = str(ytext)
    if old == value:
        return
    start = 0
    limit = min(len(old), len(value))
    while start < limit and old[start] == value[start]:
        start += 1
    end_old, end_new = len(old), len(value)
    while end_old > start and end_new > start and old[end_old - 1] == value[end_new - 1]:
        end_old -= 1
        end_new -= 1
    with ytext.doc.transaction():
        if end_old > start:
            del ytext[start:end_old]
        if end_new > start:
            ytext.insert(start, value[start:end_new])


def set_outputs(ycell: Map, outputs: list[dict[str, Any]], written: list[dict[str, Any]] | None = None) -> None:
    """Make the cell's outputs ``outputs``. With ``written`` (what is there now, as dicts), only the tail that
    changed is rewritten and a growing stream is appended to, which is what a streaming cell needs."""
    youtputs = ycell.get("outputs")
    if not isinstance(youtputs, Array):
        ycell["outputs"] = Array([_youtput(o) for o in outputs])
        return
    if written is None or len(youtputs) != len(written):
        written = [_to_int(o.to_py() if isinstance(o, Map) else o) for o in youtputs]
    keep = 0
    while keep < min(len(written), len(outputs)) and written[keep] == outputs[keep]:
        keep += 1
    if keep == len(written) - 1 and keep < len(outputs):
        old, new = written[keep], outputs[keep]
        if (old.get("output_type") == new.get("output_type") == "stream" and old.get("name") == new.get("name")
                and _text(new.get("text")).startswith(_text(old.get("text")))
                and isinstance(youtputs[keep], Map) and isinstance(youtputs[keep].get("text"), Text)):
            ytext = youtputs[keep]["text"]  # not `youtputs[keep]["text"] += ...`: that would re-set the text
            ytext += _text(new.get("text"))[len(_text(old.get("text"))):]
            keep += 1
    if keep < len(youtputs):
        del youtputs[keep:]
    if keep < len(outputs):
        youtputs.extend([_youtput(o) for o in outputs[keep:]])


def _update_cell(ycell: Map, base: dict[str, Any], new: dict[str, Any]) -> None:
    """Write the fields the agent changed (base -> new); everything else in the shared cell stays as it is."""
    for key in (set(base) | set(new)) - _CELL_SKIP:
        if base.get(key) == new.get(key):
            continue
        if key not in new:
            if key in ycell:
                del ycell[key]
        elif key == "source" and isinstance(ycell.get("source"), Text):
            set_text(ycell["source"], _text(new["source"]))
        elif key == "outputs":
            set_outputs(ycell, list(new["outputs"] or []))
        elif key == "metadata" and isinstance(ycell.get("metadata"), Map):
            ymeta, old, value = ycell["metadata"], base.get("metadata") or {}, new["metadata"] or {}
            for k in set(old) | set(value):
                if old.get(k) == value.get(k):
                    continue
                if k in value:
                    ymeta[k] = _plain(value[k])
                elif k in ymeta:
                    del ymeta[k]
        elif key == "source":
            ycell["source"] = Text(_text(new["source"]))
        elif key == "metadata":
            ycell["metadata"] = Map(_plain(new["metadata"] or {}))
        else:
            ycell[key] = _plain(new[key])


def _positions(ycells: Array) -> dict[str, int]:
    """Cell id -> index (the first cell with that id)."""
    positions: dict[str, int] = {}
    for i, ycell in enumerate(ycells):
        positions.setdefault(ycell.get("id"), i)
    return positions


def _index_of(ycells: Array, cell_id: str) -> int | None:
    for i, ycell in enumerate(ycells):
        if ycell.get("id") == cell_id:
            return i
    return None


def find_cell(ynb: Any, cell_id: str) -> Map | None:
    """The shared cell with this id, wherever the user has moved it; None if it is gone."""
    i = _index_of(ynb.ycells, cell_id)
    return None if i is None else ynb.ycells[i]


def _moved(base_order: list[str], new_order: list[str]) -> set[str]:
    """Cells whose place the agent changed: those outside a longest run kept in the same relative order."""
    if base_order == new_order:
        return set()
    rank = {cid: i for i, cid in enumerate(base_order)}
    seq = [rank[cid] for cid in new_order]
    # longest increasing subsequence, O(n log n), remembering predecessors
    tails: list[int] = []
    tails_at: list[int] = []
    prev = [-1] * len(seq)
    for i, value in enumerate(seq):
        j = bisect.bisect_left(tails, value)
        if j == len(tails):
            tails.append(value)
            tails_at.append(i)
        else:
            tails[j] = value
            tails_at[j] = i
        prev[i] = tails_at[j - 1] if j > 0 else -1
    keep: set[str] = set()
    i = tails_at[-1] if tails_at else -1
    while i >= 0:
        keep.add(new_order[i])
        i = prev[i]
    return set(new_order) - keep


def apply_changes(ynb: Any, base: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Apply the agent's change (``base`` -> ``new``, nbformat dicts with cell ids) to the shared notebook.

    Three-way, by cell id, in one transaction: cells the agent deleted are deleted, cells it changed get only the
    fields it changed, new cells are inserted after the cell that precedes them in ``new`` (wherever that cell is
    now), moved cells are moved the same way. Cells and fields the agent did not touch keep whatever the user has
    in them now, including edits not yet saved. ``base`` None means "what the document holds now".
    """
    if base is None:
        base = read_notebook(ynb)
    new_cells = [dict(c) for c in new.get("cells", [])]
    base_cells = {c["id"]: c for c in base.get("cells", []) if c.get("id")}
    new_ids = [c["id"] for c in new_cells]
    new_set = set(new_ids)
    ycells: Array = ynb.ycells
    with ynb.ydoc.transaction():
        # the notebook's own fields
        ymeta = _meta(ynb)
        for key in ("nbformat", "nbformat_minor"):
            if new.get(key) is not None and (base.get(key) != new.get(key) or key not in ymeta):
                ymeta[key] = float(new[key])
        old_md, new_md = base.get("metadata") or {}, new.get("metadata") or {}
        if old_md != new_md:
            ymd = ymeta.get("metadata")
            if not isinstance(ymd, Map):
                ymeta["metadata"] = Map(_plain(new_md))
            else:
                for k in set(old_md) | set(new_md):
                    if old_md.get(k) == new_md.get(k):
                        continue
                    if k in new_md:
                        ymd[k] = _plain(new_md[k])
                    elif k in ymd:
                        del ymd[k]

        # deleted by the agent
        positions = _positions(ycells)
        for i in sorted((positions[cid] for cid in base_cells.keys() - new_set if cid in positions), reverse=True):
            del ycells[i]

        # changed by the agent (a cell whose type changed is replaced: the frontend makes a new widget for it)
        positions = _positions(ycells)
        present = set(positions)
        for cell in new_cells:
            cid = cell["id"]
            if cid not in present:
                continue
            i = positions[cid]
            old = base_cells.get(cid)
            if old is None:  # not in what the agent read, yet there: compare with what is there
                old = _cell_to_py(ycells[i])
            if old == cell:
                continue
            if old.get("cell_type") != cell.get("cell_type"):
                ycells[i] = _ycell(cell)
            else:
                _update_cell(ycells[i], old, cell)

        # moved and inserted, placed in the agent's order after their predecessor
        common = [cid for cid in new_ids if cid in base_cells and cid in present]
        common_set = set(common)
        base_order = [c["id"] for c in base.get("cells", []) if c.get("id") in common_set]
        to_place = _moved(base_order, common) | {cid for cid in new_ids if cid not in present}
        if to_place:
            by_id = {c["id"]: c for c in new_cells}
            for k, cid in enumerate(new_ids):
                if cid not in to_place:
                    continue
                i = _index_of(ycells, cid)
                if i is not None:  # a move: carry the cell as it is now (the user's edits included)
                    current = _cell_to_py(ycells[i])
                    del ycells[i]
                else:
                    current = by_id[cid]
                ycells.insert(_place(ycells, new_ids, k), _ycell(current))


def _place(ycells: Array, order: list[str], k: int) -> int:
    """Where cell ``order[k]`` goes: after the nearest cell before it (in ``order``) that is in the document, else
    before the nearest one after it, else at the start (or the end, for an empty document)."""
    for j in range(k - 1, -1, -1):
        i = _index_of(ycells, order[j])
        if i is not None:
            return i + 1
    for j in range(k + 1, len(order)):
        i = _index_of(ycells, order[j])
        if i is not None:
            return i
    return 0 if k == 0 else len(ycells)


# ------------------------------------------------------------------------------------------------ live outputs


class LiveOutputs:
    """Streams one execution's outputs into a shared cell, found by id at every update.

    The host's ``on_output`` notifications are folded into an output list the way the kernel's messages are
    (streams appended, ``clear_output`` honoured); the list is written at once for the first output and then at
    most every ``interval`` seconds. :meth:`finish` writes the final outputs and execution count.
    """

    def __init__(self, ynb: Any, cell_id: str, interval: float = OUTPUT_INTERVAL) -> None:
        self.ynb, self.cell_id, self.interval = ynb, cell_id, interval
        self.outputs: list[dict[str, Any]] = []
        self.updates = 0
        self._written: list[dict[str, Any]] | None = None
        self._clear_pending = False
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._dirty = False

    def _cell(self) -> Map | None:
        return find_cell(self.ynb, self.cell_id)

    def start(self) -> bool:
        """Mark the cell running with no outputs (JupyterLab shows ``[*]``); False if the cell is not there."""
        ycell = self._cell()
        if ycell is None:
            return False
        with self.ynb.ydoc.transaction():
            set_outputs(ycell, [])
            ycell["execution_count"] = None
            ycell["execution_state"] = "running"
        self._written = []
        return True

    def on_output(self, item: dict[str, Any]) -> None:
        kind = item.get("output_type")
        if kind == "clear_output":
            if item.get("wait"):
                self._clear_pending = True
            else:
                self.outputs = []
        elif kind == "update_display_data":
            return  # the final outputs carry the update; a display id is not in the streamed output
        else:
            if self._clear_pending:
                self.outputs, self._clear_pending = [], False
            last = self.outputs[-1] if self.outputs else None
            if (kind == "stream" and last and last.get("output_type") == "stream"
                    and last.get("name") == item.get("name")):
                self.outputs[-1] = {**last, "text": _text(last.get("text")) + _text(item.get("text"))}
            else:
                self.outputs.append(copy.deepcopy(dict(item)))
        self._dirty = True
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last + self.interval - loop.time()
        if wait <= 0:
            self.flush()
        else:
            self._timer = loop.call_later(wait, self.flush)

    def flush(self) -> None:
        self._timer = None
        if not self._dirty:
            return
        self._dirty = False
        self._last = asyncio.get_running_loop().time()
        self._write(self.outputs)

    def _write(self, outputs: list[dict[str, Any]], **fields: Any) -> None:
        ycell = self._cell()
        if ycell is None:
            return
        try:
            with self.ynb.ydoc.transaction():
                set_outputs(ycell, outputs, self._written)
                for key, value in fields.items():
                    ycell[key] = value
            self._written = copy.deepcopy(outputs)
            self.updates += 1
        except Exception as exc:  # a live preview must never break the execution it shows
            log.warning("could not update the outputs of cell %s: %s", self.cell_id, exc)
            self._written = None

    def finish(self, outputs: list[dict[str, Any]] | None, execution_count: int | None) -> None:
        """The execution ended: its outputs (None = keep what was streamed) and count; the cell is idle again."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        final = [dict(o) for o in outputs] if outputs is not None else self.outputs
        count = float(execution_count) if execution_count else None
        self._write(final, execution_count=count, execution_state="idle")
