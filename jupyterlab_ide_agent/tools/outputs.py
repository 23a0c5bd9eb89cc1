"""Turn notebook cells and their nbformat outputs into compact text for the model.

The notebook keeps every output in full (images, HTML, long logs); the model gets what it can read: stream text with
progress-bar carriage returns resolved, ``text/plain`` of rich results, a one-line description of each image, and
tracebacks with the terminal colour codes stripped. Anything long is cut in the middle (head and tail kept, since the
end of a log or a traceback is usually what matters) with a note saying how much was cut.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .base import ToolImage

if TYPE_CHECKING:
    from ..host.base import ExecutionResult

#: characters of one cell's outputs shown to the model (the rest cut from the middle)
OUTPUT_LIMIT = 8000
#: characters of an error's traceback kept, within OUTPUT_LIMIT
TRACEBACK_LIMIT = 4000
PREVIEW_CHARS = 80

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml", "image/bmp")
#: image types a model may be shown, best first when an output has several; SVG (and BMP) are only described
SENDABLE_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
#: images attached to one tool result, and the largest one (base64 characters) sent
MAX_IMAGES = 4
MAX_IMAGE_BASE64 = 2 * 1024 * 1024
_TEXT_TYPES = ("text/markdown", "text/latex", "application/json", "text/html")


def strip_ansi(text: str) -> str:
    """Remove terminal colour and cursor codes (IPython colours every traceback)."""
    return _ANSI.sub("", text)


def _render_line(line: str) -> str:
    buf: list[str] = []
    pos = 0
    for ch in line:
        if ch == "\r":
            pos = 0
        elif ch == "\b":
            pos = max(0, pos - 1)
        else:
            if pos < len(buf):
                buf[pos] = ch
            else:
                buf.append(ch)
            pos += 1
    return "".join(buf)


def resolve_carriage_returns(text: str) -> str:
    """Keep what a terminal shows: ``\r`` rewrites its line (tqdm progress bars), a backspace steps back."""
    if "\r" not in text and "\b" not in text:
        return text
    text = re.sub(r"\r+\n", "\n", text)
    return "\n".join(_render_line(line) for line in text.split("\n"))


def as_text(value: Any) -> str:
    """nbformat stores multi-line strings either as one string or as a list of lines."""
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    if isinstance(value, (dict, int, float, bool)) or value is None:
        return json.dumps(value, indent=1, ensure_ascii=False)
    return str(value)


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def _image_dimensions(mime: str, raw: bytes) -> tuple[int, int] | None:
    """Width and height read from the header bytes, without an image library."""
    try:
        if mime == "image/png" and raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR":
            return struct.unpack(">II", raw[16:24])
        if mime == "image/gif" and raw[:3] == b"GIF":
            return struct.unpack("<HH", raw[6:10])
        if mime == "image/jpeg" and raw[:2] == b"\xff\xd8":
            i = 2
            while i + 9 < len(raw):
                if raw[i] != 0xFF:
                    return None
                marker, length = raw[i + 1], struct.unpack(">H", raw[i + 2 : i + 4])[0]
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    h, w = struct.unpack(">HH", raw[i + 5 : i + 9])
                    return w, h
                i += 2 + length
    except struct.error:
        return None
    return None


def describe_image(mime: str, data: Any, metadata: Mapping[str, Any] | None = None) -> str:
    """``[image/png 640x480, 23 KB]``: what the model needs to know that a plot exists and looks sane."""
    text = as_text(data)
    if mime == "image/svg+xml":
        raw = text.encode("utf-8")
        m = re.search(r'<svg[^>]*?width="([\d.]+)(?:pt|px)?"[^>]*?height="([\d.]+)(?:pt|px)?"', text)
        dims = (round(float(m.group(1))), round(float(m.group(2)))) if m else None
    else:
        try:
            raw = base64.b64decode(text.replace("\n", ""), validate=False)
        except (binascii.Error, ValueError):
            raw = text.encode("ascii", "replace")
        dims = _image_dimensions(mime, raw[:65536])
    meta = (metadata or {}).get(mime) or {}
    if isinstance(meta, Mapping) and meta.get("width") and meta.get("height"):
        dims = (meta["width"], meta["height"])  # the size it is displayed at
    size = f"{dims[0]}x{dims[1]}, " if dims else ""
    return f"[{mime} {size}{human_size(len(raw))}]"


def truncate_middle(text: str, limit: int, what: str = "output") -> str:
    """Keep the first two thirds and the last third of ``limit`` characters, on line boundaries where possible."""
    if len(text) <= limit:
        return text
    head_n, tail_n = limit * 2 // 3, limit // 3
    head, tail = text[:head_n], text[len(text) - tail_n :]
    if "\n" in head[head_n // 2 :]:
        head = head[: head.rindex("\n") + 1]
    if "\n" in tail[: tail_n // 2]:
        tail = tail[tail.index("\n") + 1 :]
    cut = text[len(head) : len(text) - len(tail)]
    lines = cut.count("\n")
    note = f"[... {len(cut):,} characters ({lines:,} lines) of {what} cut here; the notebook keeps the full {what} ...]"
    return f"{head.rstrip(chr(10))}\n{note}\n{tail}"


def _rich_text(output: Mapping[str, Any]) -> list[str]:
    data = output.get("data") or {}
    parts: list[str] = []
    if "text/plain" in data:
        parts.append(as_text(data["text/plain"]))
    elif "text/markdown" in data or "text/latex" in data:
        parts.append(as_text(data.get("text/markdown", data.get("text/latex"))))
    elif "application/json" in data:
        parts.append(as_text(data["application/json"]))
    for mime in data:
        if mime in _IMAGE_TYPES:
            parts.append(describe_image(mime, data[mime], output.get("metadata")))
        elif mime == "application/vnd.jupyter.widget-view+json":
            parts.append("[Jupyter widget: it renders in JupyterLab only]")
        elif mime == "text/html" and "text/plain" not in data:
            parts.append(f"[text/html {human_size(len(as_text(data[mime])))}, shown in JupyterLab]")
    if not parts:
        parts.append("[" + ", ".join(data) + "]" if data else "[empty output]")
    return parts


def error_text(ename: str, evalue: str, traceback: Iterable[str]) -> str:
    """A readable traceback, colour codes stripped, with the error line last as Python prints it."""
    body = re.sub(r"\A-{20,}\n", "", strip_ansi("\n".join(traceback)).strip("\n"))  # IPython's rule line
    head = f"{ename}: {evalue}" if evalue else ename
    if not body:
        return head
    body = truncate_middle(body, TRACEBACK_LIMIT, "traceback")
    return body if body.rstrip().endswith(head.strip()) else f"{body}\n{head}"


def output_text(output: Mapping[str, Any]) -> str:
    """One nbformat output as model text."""
    kind = output.get("output_type")
    if kind == "stream":
        text = resolve_carriage_returns(strip_ansi(as_text(output.get("text", ""))))
        return text if output.get("name") != "stderr" else "[stderr]\n" + text
    if kind in ("execute_result", "display_data"):
        text = strip_ansi("\n".join(_rich_text(output)))
        count = output.get("execution_count")
        return f"Out[{count}]: {text}" if kind == "execute_result" and count else text
    if kind == "error":
        return error_text(output.get("ename", ""), output.get("evalue", ""), output.get("traceback") or [])
    return f"[{kind} output]"


def outputs_text(outputs: Iterable[Mapping[str, Any]], limit: int = OUTPUT_LIMIT) -> str:
    """All outputs of one cell as one text, cut in the middle past ``limit`` characters."""
    pieces = []
    for output in outputs:
        text = output_text(output).rstrip("\n")
        if pieces and output.get("output_type") == "stream" and pieces[-1][0] == output.get("name"):
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + "\n" + text.removeprefix("[stderr]\n"))
        else:
            pieces.append((output.get("name") if output.get("output_type") == "stream" else None, text))
    return truncate_middle("\n".join(p[1] for p in pieces), limit)


def error_summary(outputs: Iterable[Mapping[str, Any]]) -> str | None:
    for output in outputs:
        if output.get("output_type") == "error":
            return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip().rstrip(":")
    return None


def source_preview(source: str, chars: int = PREVIEW_CHARS) -> str:
    """The first non-empty line of a cell, for one-line listings."""
    lines = source.splitlines()
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if len(first) > chars:
        first = first[: chars - 1] + "…"
    more = f"  (+{len(lines) - 1} line{'s' if len(lines) > 2 else ''})" if len(lines) > 1 else ""
    return (first or "(empty)") + more


def cell_header(index: int, cell: Mapping[str, Any]) -> str:
    """``cell 2 id=3fa1c9e2 code [5]``: every listing shows the id, so the model can address the cell by it."""
    kind = cell.get("cell_type", "?")
    count = cell.get("execution_count") if kind == "code" else None
    exec_part = f" [{count}]" if count else (" [ ]" if kind == "code" else "")
    return f"cell {index} id={cell.get('id', '?')} {kind}{exec_part}"


def cell_line(index: int, cell: Mapping[str, Any]) -> str:
    """One line per cell for list_cells."""
    line = f"{cell_header(index, cell)}: {source_preview(as_text(cell.get('source', '')))}"
    outputs = cell.get("outputs") or []
    if outputs:
        err = error_summary(outputs)
        line += f"  -> {len(outputs)} output{'s' if len(outputs) > 1 else ''}" + (f", error {err}" if err else "")
    return line


def cell_text(index: int, cell: Mapping[str, Any], output_limit: int = OUTPUT_LIMIT) -> str:
    """A whole cell for read_cell(s): header, full source, and its outputs as the model reads them."""
    source = as_text(cell.get("source", ""))
    parts = [cell_header(index, cell), source if source else "(empty source)"]
    outputs = cell.get("outputs") or []
    if outputs:
        parts.append(f"--- outputs ({len(outputs)}) ---")
        parts.append(outputs_text(outputs, output_limit))
    return "\n".join(parts)


def execution_text(what: str, result: ExecutionResult, note: str = "") -> str:
    """What the model reads after an execution: status line, then outputs (errors with their traceback)."""
    count = f", execution_count {result.execution_count}" if result.execution_count else ""
    head = {
        "ok": f"Executed {what}{count} in {result.duration:.1f} s",
        "error": f"Error in {what}{count}: "
                 + (f"{result.error_name}: {result.error_value}".rstrip(": ") if result.error_name else result.message),
        "timeout": f"Timeout in {what}{count}: {result.message}",
        "dead": f"Kernel died in {what}: {result.message}",
    }[result.status]
    outputs = [o for o in result.outputs if o.get("output_type") != "error"]
    body = outputs_text(outputs) if outputs else ""
    if result.status == "error" and (result.traceback or result.error_name):
        body = (body + "\n" if body else "") + error_text(result.error_name, result.error_value, result.traceback)
    elif result.status == "timeout" and result.error_name:
        body = (body + "\n" if body else "") + f"{result.error_name}: {result.error_value}".rstrip(": ")
    if not body and result.status == "ok":
        body = "(no output)"
    return "\n".join(p for p in (head, body) if p) + note


class ImageAttachments:
    """Images of cell outputs to show the model with a tool result, within limits, and a note saying which.

    One image per output (PNG preferred when an output has several forms); SVG and other types models do not
    read stay described only. At most ``limit`` images per result, each at most ``max_base64`` characters.
    """

    def __init__(self, limit: int = MAX_IMAGES, max_base64: int = MAX_IMAGE_BASE64) -> None:
        self.limit, self.max_base64 = limit, max_base64
        self.images: list[ToolImage] = []
        self.attached: list[str] = []
        self.skipped: list[str] = []
        self.over_limit = 0

    def add(self, outputs: Iterable[Mapping[str, Any]], where: str) -> None:
        """Collect the images of one cell's outputs; ``where`` names the cell in the note."""
        for output in outputs:
            if output.get("output_type") not in ("display_data", "execute_result"):
                continue
            data = output.get("data") or {}
            mime = next((m for m in SENDABLE_IMAGE_TYPES if m in data), None)
            if mime is None:
                other = next((m for m in data if m in _IMAGE_TYPES), None)
                if other:
                    self.skipped.append(f"{other} in {where} (models are not sent {other.split('/')[1].upper()} "
                                        "images; its description stands)")
                continue
            b64 = "".join(as_text(data[mime]).split())
            what = describe_image(mime, b64, output.get("metadata"))[1:-1]
            if len(self.images) >= self.limit:
                self.over_limit += 1
            elif len(b64) > self.max_base64:
                self.skipped.append(f"{what} in {where} (over {human_size(self.max_base64)} as base64)")
            elif not _is_base64(b64):
                self.skipped.append(f"{what} in {where} (the data is not valid base64)")
            else:
                self.images.append(ToolImage(mime, b64))
                self.attached.append(f"{len(self.images)}) {what} from {where}")

    def note(self) -> str:
        """The text added to the result: which images are attached and which are not."""
        lines = []
        if self.attached:
            lines.append("[images attached for you to see, in this order: " + "; ".join(self.attached) + "]")
        skipped = list(self.skipped)
        if self.over_limit:
            skipped.append(f"{self.over_limit} more image(s) over the limit of {self.limit} per result "
                           "(read_cell with include_images shows a cell's images)")
        if skipped:
            lines.append("[images not attached: " + "; ".join(skipped) + "]")
        return "\n" + "\n".join(lines) if lines else ""


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return bool(text)
