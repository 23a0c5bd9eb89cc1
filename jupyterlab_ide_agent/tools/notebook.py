"""JupyterNotebook: one tool, an ``operation`` enum, the seed's notebook operations done the Jupyter way.

Notebooks are addressed by path and cells by their nbformat id (or index), so an edit never lands on the wrong cell
after the user inserts one. Everything goes through the notebook host in ``ctx.services["host"]`` (the server's
managers inside Jupyter, ``jupyter_client`` standalone): every save is validated nbformat, executed cells get their
outputs and execution count written back, and every execution has a timeout.
"""

from __future__ import annotations

from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from ..host.base import ExecutionResult, HostError, NotebookHost
from .base import Tool, ToolContext, ToolError, ToolResult
from .outputs import (
    MAX_IMAGE_BASE64,
    MAX_IMAGES,
    ImageAttachments,
    as_text,
    cell_line,
    cell_text,
    execution_text,
    human_size,
    truncate_middle,
)
from .paths import display_path, resolve_in_root

DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 3600.0
READ_CELLS_OUTPUT_LIMIT = 2000  # per cell in read_cells / execute_all; read_cell shows up to OUTPUT_LIMIT

OPERATIONS = [
    "list_cells", "read_cell", "read_cells", "create_notebook", "insert_cell", "delete_cell",
    "overwrite_cell_source", "move_cell", "execute_cell", "insert_execute_code_cell", "execute_all",
    "execute_range", "execute_ipython", "interrupt_kernel", "restart_kernel",
]
EDITS = {"insert_cell", "delete_cell", "overwrite_cell_source", "move_cell"}
#: operations whose result can carry the images of the cells they run or read
IMAGE_OPERATIONS = {"read_cell", "read_cells", "execute_cell", "insert_execute_code_cell", "execute_all",
                    "execute_range", "execute_ipython"}
CELL_MAKERS = {"code": new_code_cell, "markdown": new_markdown_cell, "raw": new_raw_cell}

DESCRIPTION = """Work with a Jupyter notebook (.ipynb) and its kernel. One kernel per notebook, kept between calls \
(variables persist); if the user has the notebook open in JupyterLab, it is the same kernel the user sees.
Address cells by `cell_id` (shown as id=... in every result; stable when cells move) or by `index` (0-based).
Operations:
- list_cells: one line per cell (index, id, type, execution count, first line, outputs).
- read_cell (cell_id|index) / read_cells (all, or index..end_index): full source and outputs.
- create_notebook: a new empty notebook (fails if it exists).
- insert_cell: add a cell with `source` and `cell_type` (code, markdown, raw) at `index` (-1 or omitted = at the \
end, 0 = at the beginning) or right after `cell_id`; creates the notebook if it is missing.
- delete_cell, overwrite_cell_source (cell_id|index, `source`; optional `cell_type` converts it; clears old \
outputs), move_cell (cell_id|index to `to_index`).
- execute_cell (cell_id|index): run one code cell; outputs are saved into the notebook.
- insert_execute_code_cell: insert a code cell (as insert_cell) and run it.
- execute_all: run every code cell in order; execute_range: from cell_id|index to end_cell_id|end_index \
(inclusive). Both stop at the first error unless stop_on_error is false.
- execute_ipython: run `source` (IPython magics like %pip, %timeit, !ls work) in the notebook's kernel without \
adding a cell.
- interrupt_kernel, restart_kernel (restart loses all variables).
`timeout` (seconds, per cell): a cell running longer is interrupted; its variables stay. Long outputs \
are shortened here; the notebook keeps them in full. Images are described, not shown."""

IMAGES_SHOWN = f"""Images in outputs are described; with `include_images` (default {{default}}) the images of the \
cells run or read are also shown to you (PNG/JPEG/WebP/GIF, at most {MAX_IMAGES} per call, each up to \
{human_size(MAX_IMAGE_BASE64)}; SVG is only described)."""


def _schema(default_timeout: float, max_timeout: float, send_images: bool = False) -> dict[str, Any]:
    index = {"type": "integer", "description": "0-based cell index; -1 = the last cell (insert: append)."}
    return {
        "type": "object",
        "properties": {
            "operation": {"type": "string", "enum": OPERATIONS},
            "notebook_path": {"type": "string", "description": "Notebook path relative to the workspace root."},
            "cell_id": {"type": "string", "description": "The target cell's id (insert: insert after it)."},
            "index": index,
            "end_cell_id": {"type": "string", "description": "execute_range: last cell to run (inclusive)."},
            "end_index": {**index, "description": "read_cells / execute_range: last index (inclusive)."},
            "to_index": {**index, "description": "move_cell: the cell's new index (-1 = last)."},
            "source": {"type": "string", "description": "Cell source, or code for execute_ipython."},
            "cell_type": {"type": "string", "enum": ["code", "markdown", "raw"]},
            "timeout": {"type": "number", "minimum": 1, "maximum": max_timeout,
                        "description": f"Seconds per cell before it is interrupted (default {default_timeout:g})."},
            "stop_on_error": {"type": "boolean", "description": "execute_all/range: stop at the first error "
                              "(default true)."},
            "kernel_name": {"type": "string", "description": "create_notebook: kernel spec (default python3)."},
            "include_images": {"type": "boolean", "description": "read_cell(s), execute_*: show you the images "
                               f"of the outputs, not only their description (default {str(send_images).lower()})."},
        },
        "required": ["operation", "notebook_path"],
        "additionalProperties": False,
    }


class NotebookTool(Tool):
    name = "JupyterNotebook"
    description = DESCRIPTION
    runs_code = True

    def __init__(self, default_timeout: float = DEFAULT_TIMEOUT, max_timeout: float = MAX_TIMEOUT,
                 send_images: bool = False) -> None:
        self.default_timeout = min(default_timeout, max_timeout)
        self.max_timeout = max_timeout
        #: attach output images to results (for models that accept images); include_images overrides per call
        self.send_images = send_images
        self.parameters = _schema(self.default_timeout, max_timeout, send_images)
        shown = IMAGES_SHOWN.format(default=str(send_images).lower())
        self.description = DESCRIPTION.replace("Images are described, not shown.", shown)

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        host = ctx.services.get("host")
        if not isinstance(host, NotebookHost):
            raise ToolError("No notebook host is configured for this session, so notebooks cannot be used here; "
                            "use the file tools (Read, Write) to see .ipynb files as JSON.")
        path = resolve_in_root(ctx.root, args["notebook_path"])
        shown = display_path(ctx.root, path)
        if path.suffix != ".ipynb":
            raise ToolError(f"{shown} is not a notebook (.ipynb); use Read/Write/Edit for other files")
        if path.is_dir():
            raise ToolError(f"{shown} is a directory, not a notebook")
        if args["operation"] not in OPERATIONS:
            raise ToolError(f"unknown operation {args['operation']!r}; use one of: {', '.join(OPERATIONS)}")
        op = _Op(self, host, args, host_path(host, path), shown)
        try:
            result = await getattr(op, args["operation"])()
        except HostError as exc:
            raise ToolError(f"{args['operation']} on {shown} failed: {exc}") from exc
        if op.images is not None:  # the description stays in the text; the images ride along
            result.output += op.images.note()
            result.images.extend(op.images.images)
        return result


def host_path(host: NotebookHost, path: Any) -> str:
    try:
        return host.api_path(path)
    except HostError as exc:
        raise ToolError(f"{exc} (the notebook host serves {host.root})") from exc


class _Op:
    """One call: the operations as methods, sharing the argument parsing and the result ``data``."""

    def __init__(self, tool: NotebookTool, host: NotebookHost, args: dict[str, Any], path: str, shown: str):
        self.tool, self.host, self.args, self.path, self.shown = tool, host, args, path, shown
        self.timeout = float(args.get("timeout", tool.default_timeout))
        wanted = args.get("include_images", tool.send_images) and args["operation"] in IMAGE_OPERATIONS
        self.images = ImageAttachments() if wanted else None

    # ------------------------------------------------------------ helpers

    async def _read(self) -> NotebookNode:
        if not await self.host.exists(self.path):
            raise ToolError(f"notebook {self.shown} does not exist; create it with create_notebook (or "
                            "insert_cell, which creates it)")
        return await self.host.read(self.path)

    def _locate(self, nb: NotebookNode, id_key: str = "cell_id", index_key: str = "index",
                required: bool = True) -> int | None:
        """The index of the cell named by id or index; ToolError the model can act on if there is none."""
        cells, op = nb.cells, self.args["operation"]
        if self.args.get(id_key) is not None:
            cid = self.args[id_key]
            for i, cell in enumerate(cells):
                if cell.get("id") == cid:
                    return i
            ids = ", ".join(c.get("id", "?") for c in cells[:30]) or "none: the notebook is empty"
            raise ToolError(f"no cell with id {cid!r} in {self.shown}; cell ids: {ids}")
        if self.args.get(index_key) is None:
            if not required:
                return None
            raise ToolError(f"{op} needs {id_key} or {index_key}: which cell? (list_cells shows ids and indexes)")
        index = self.args[index_key]
        if not cells:
            raise ToolError(f"{self.shown} has no cells; {index_key} {index} does not exist (use insert_cell)")
        if not -len(cells) <= index < len(cells):
            raise ToolError(f"{index_key} {index} is out of range: {self.shown} has {_n(len(cells))} "
                            f"(indexes 0-{len(cells) - 1})")
        return index % len(cells)

    def _see(self, cell: NotebookNode, where: str) -> None:
        """Collect the images of a cell's outputs when this call shows images."""
        if self.images is not None:
            self.images.add(cell.get("outputs") or [], where)

    def _source(self) -> str:
        if "source" not in self.args:
            raise ToolError(f"{self.args['operation']} needs `source`")
        return self.args["source"]

    async def _data(self, action: str, nb: NotebookNode | None = None, **extra: Any) -> dict[str, Any]:
        status = await self.host.kernel_status(self.path)
        return {
            "notebook": self.shown, "action": action, "operation": self.args["operation"],
            "cell_count": len(nb.cells) if nb is not None else None,
            "execution_count": self.host.execution_count(self.path),
            "kernel_id": status.get("kernel_id"), "kernel_status": status.get("kernel_status"), **extra,
        }

    def _kernel_line(self, status: dict[str, Any]) -> str:
        if not status.get("kernel_id"):
            return "kernel: not started (starts on the first execution)"
        return (f"kernel: {status.get('kernel_name') or '?'} {status['kernel_status']} (id {status['kernel_id'][:8]}), "
                f"execution count {self.host.execution_count(self.path)}")

    # ------------------------------------------------------------ reading

    async def list_cells(self) -> ToolResult:
        nb = await self._read()
        status = await self.host.kernel_status(self.path)
        head = f"{self.shown}: {_n(len(nb.cells))}; {self._kernel_line(status)}"
        lines = [cell_line(i, c) for i, c in enumerate(nb.cells)] or ["(no cells: use insert_cell to add one)"]
        return ToolResult("\n".join([head, *lines]), data=await self._data("read", nb))

    async def read_cell(self) -> ToolResult:
        nb = await self._read()
        i = self._locate(nb)
        self._see(nb.cells[i], f"cell {i} (id={nb.cells[i].get('id', '?')})")  # type: ignore[index]
        return ToolResult(cell_text(i, nb.cells[i]), data=await self._data("read", nb, cell_id=nb.cells[i].id))

    async def read_cells(self) -> ToolResult:
        nb = await self._read()
        if not nb.cells:
            message = f"{self.shown} has no cells (use insert_cell to add one)"
            return ToolResult(message, data=await self._data("read", nb))
        start = self._locate(nb, required=False) or 0
        end = self._locate(nb, "end_cell_id", "end_index", required=False)
        end = len(nb.cells) - 1 if end is None else end
        if end < start:
            raise ToolError(f"the range is empty: end ({end}) is before start ({start})")
        parts = [cell_text(i, nb.cells[i], READ_CELLS_OUTPUT_LIMIT) for i in range(start, end + 1)]
        for i in range(start, end + 1):
            self._see(nb.cells[i], f"cell {i} (id={nb.cells[i].get('id', '?')})")
        head = f"{self.shown}: cells {start}-{end} of {len(nb.cells)}"
        return ToolResult("\n\n".join([head, *parts]), data=await self._data("read", nb))

    # ------------------------------------------------------------ editing

    async def create_notebook(self) -> ToolResult:
        async with self.host.edit_lock(self.path):
            if await self.host.exists(self.path):
                raise ToolError(f"{self.shown} already exists; use list_cells to see it or insert_cell to add cells")
            nb = _new_notebook(self.args.get("kernel_name") or self.host.default_kernel_name)
            await self.host.write(self.path, nb)
        return ToolResult(f"Created {self.shown} (empty, kernel {nb.metadata.kernelspec.name})",
                          data=await self._data("created", nb))

    async def _edit(self, op: str) -> tuple[str, NotebookNode, str, str]:
        """Apply one edit under the notebook's lock; (message, notebook, action, affected cell id)."""
        async with self.host.edit_lock(self.path):
            created = op == "insert_cell" and not await self.host.exists(self.path)
            nb = _new_notebook(self.host.default_kernel_name) if created else await self._read()
            message, cid = getattr(self, "_" + op)(nb)
            await self.host.write(self.path, nb)
        return (f"Created {self.shown}. " if created else "") + message, nb, "created" if created else "modified", cid

    def _insert_cell(self, nb: NotebookNode) -> tuple[str, str]:
        kind = "code" if self.args["operation"] == "insert_execute_code_cell" else self.args.get("cell_type", "code")
        cell = CELL_MAKERS[kind](self._source())
        if self.args.get("cell_id") is not None:
            at = self._locate(nb) + 1  # type: ignore[operator]
        else:
            index = self.args.get("index", -1)
            if index == -1:
                at = len(nb.cells)
            elif 0 <= index <= len(nb.cells):
                at = index
            else:
                raise ToolError(f"index {index} is out of range for inserting: {self.shown} has {len(nb.cells)} "
                                f"cells, so use 0-{len(nb.cells)} (or -1 to append)")
        nb.cells.insert(at, cell)
        return f"Inserted {kind} cell at index {at} (id={cell.id}); the notebook has {_n(len(nb.cells))}.", cell.id

    def _delete_cell(self, nb: NotebookNode) -> tuple[str, str]:
        i = self._locate(nb)
        cell = nb.cells.pop(i)  # type: ignore[arg-type]
        return f"Deleted {cell_line(i, cell)}\n{self.shown} now has {_n(len(nb.cells))}.", cell.id  # type: ignore[arg-type]

    def _overwrite_cell_source(self, nb: NotebookNode) -> tuple[str, str]:
        i = self._locate(nb)
        old = nb.cells[i]
        kind = self.args.get("cell_type", old.cell_type)
        cell = CELL_MAKERS[kind](self._source())
        cell.id = old.id
        cell.metadata = old.get("metadata", {})
        if kind != "code":
            cell.metadata.pop("execution", None)
        if kind == "markdown" and old.get("attachments"):
            cell.attachments = old.attachments
        nb.cells[i] = cell  # type: ignore[index]
        changed = f", now a {kind} cell" if kind != old.cell_type else ""
        cleared = "; its old outputs were cleared" if old.get("outputs") else ""
        return f"Overwrote the source of cell {i} (id={cell.id}{changed}){cleared}.", cell.id

    def _move_cell(self, nb: NotebookNode) -> tuple[str, str]:
        i = self._locate(nb)
        if self.args.get("to_index") is None:
            raise ToolError("move_cell needs to_index: the cell's new position")
        to = self.args["to_index"]
        if not -len(nb.cells) <= to < len(nb.cells):
            raise ToolError(f"to_index {to} is out of range: use 0-{len(nb.cells) - 1} (or -1 for last)")
        to %= len(nb.cells)
        cell = nb.cells.pop(i)  # type: ignore[arg-type]
        nb.cells.insert(to, cell)
        return f"Moved cell id={cell.id} from index {i} to {to}.", cell.id

    async def insert_cell(self) -> ToolResult:
        message, nb, action, cid = await self._edit(self.args["operation"])
        return ToolResult(message, data=await self._data(action, nb, cell_id=cid))

    delete_cell = overwrite_cell_source = move_cell = insert_cell

    # ------------------------------------------------------------ executing

    async def _run_cell(self, cell_id: str, index: int) -> tuple[ExecutionResult | None, str]:
        """Execute one code cell (by id) and write its outputs back; the result and its text for the model."""
        nb = await self.host.read(self.path)
        cell = next((c for c in nb.cells if c.id == cell_id), None)
        if cell is None:
            return None, f"cell id={cell_id} disappeared before it ran (deleted by someone else?)"
        if cell.cell_type != "code":
            raise ToolError(f"cell {index} (id={cell_id}) is a {cell.cell_type} cell; only code cells execute. "
                            "To make it code, use overwrite_cell_source with cell_type 'code'.")
        result = await self.host.execute(self.path, as_text(cell.source), self.timeout)
        note = await self._write_back(cell_id, result)
        if self.images is not None:
            self.images.add(result.outputs, f"cell {index} (id={cell_id})")
        return result, execution_text(f"cell {index} (id={cell_id})", result, note)

    async def _write_back(self, cell_id: str, result: ExecutionResult) -> str:
        """Store outputs in the cell, found again by id: the user may have moved or edited cells meanwhile."""
        async with self.host.edit_lock(self.path):
            nb = await self.host.read(self.path)
            cell = next((c for c in nb.cells if c.id == cell_id), None)
            if cell is None:
                return "\n[the cell was deleted while it ran; its outputs were not saved]"
            cell.outputs = [nbformat.from_dict(o) for o in result.outputs]
            cell.execution_count = result.execution_count
            await self.host.write(self.path, nb)
        return ""

    async def execute_cell(self) -> ToolResult:
        nb = await self._read()
        i = self._locate(nb)
        result, text = await self._run_cell(nb.cells[i].id, i)  # type: ignore[index]
        return await self._exec_result(result, text, nb.cells[i].id)  # type: ignore[index]

    async def insert_execute_code_cell(self) -> ToolResult:
        message, nb, action, cid = await self._edit("insert_cell")
        index = next(i for i, c in enumerate(nb.cells) if c.id == cid)
        result, text = await self._run_cell(cid, index)
        return await self._exec_result(result, f"{message}\n{text}", cid, created=action == "created")

    async def _exec_result(self, result: ExecutionResult | None, text: str, cid: str,
                           created: bool = False) -> ToolResult:
        nb = await self.host.read(self.path)
        failed = result is None or result.status != "ok"
        data = await self._data("created" if created else "executed", nb, cell_id=cid,
                                status=result.status if result else "missing")
        return ToolResult(text, failed, data)

    async def execute_all(self) -> ToolResult:
        nb = await self._read()
        ranged = self.args["operation"] == "execute_range"
        if ranged and self.args.get("cell_id") is None and self.args.get("index") is None:
            raise ToolError("execute_range needs a start: cell_id or index (and optionally end_cell_id/end_index)")
        start = (self._locate(nb, required=False) or 0) if ranged else 0
        end = self._locate(nb, "end_cell_id", "end_index", required=False) if ranged else None
        end = len(nb.cells) - 1 if end is None else end
        todo = [(i, c.id) for i, c in enumerate(nb.cells) if start <= i <= end and c.cell_type == "code"
                and as_text(c.source).strip()]
        if not todo:
            return ToolResult(f"{self.shown}: no code cells to run in cells {start}-{end}",
                              data=await self._data("read", nb))
        stop = self.args.get("stop_on_error", True)
        parts, counts = [], {"ok": 0, "error": 0, "timeout": 0, "dead": 0, "missing": 0}
        for n, (i, cid) in enumerate(todo):
            result, text = await self._run_cell(cid, i)
            counts[result.status if result else "missing"] += 1
            ok = result is None or result.status == "ok"  # failures are shown in full: they are what matters
            parts.append(truncate_middle(text, READ_CELLS_OUTPUT_LIMIT) if ok else text)
            if result is not None and (result.status in ("timeout", "dead") or (stop and result.status == "error")):
                if n + 1 < len(todo):
                    parts.append(f"[stopped: {len(todo) - n - 1} code cell(s) after this one were not run]")
                break
        summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        head = f"Ran {sum(counts.values())} of {len(todo)} code cells in {self.shown}: {summary}"
        nb = await self.host.read(self.path)
        failed = any(counts[k] for k in ("error", "timeout", "dead"))
        return ToolResult("\n\n".join([head, *parts]), failed, await self._data("executed", nb, **counts))

    execute_range = execute_all

    async def execute_ipython(self) -> ToolResult:
        code = self._source()
        # the kernel belongs to a notebook, so it must exist; the code leaves the cells alone, so the
        # notebook is not read (parsing and validating it was half the cost of a quick call)
        if not await self.host.exists(self.path):
            await self._read()  # raises the same clear error as every other operation
        result = await self.host.execute(self.path, code, self.timeout)
        text = execution_text("code", result, "")
        if self.images is not None:
            self.images.add(result.outputs, "the code")
        return ToolResult(text, result.status != "ok", await self._data("ran", status=result.status))

    async def interrupt_kernel(self) -> ToolResult:
        kid = await self.host.interrupt(self.path)
        if kid is None:
            return ToolResult(f"{self.shown} has no running kernel; nothing to interrupt",
                              data=await self._data("kernel_interrupted"))
        return ToolResult(f"Sent an interrupt to the kernel of {self.shown} (id {kid[:8]}); a running cell stops "
                          "with KeyboardInterrupt, variables are kept.", data=await self._data("kernel_interrupted"))

    async def restart_kernel(self) -> ToolResult:
        kid = await self.host.restart(self.path)
        return ToolResult(f"Restarted the kernel of {self.shown} (id {kid[:8]}): all variables and imports are "
                          "gone; re-run the cells you need.", data=await self._data("kernel_restarted"))


def _n(count: int) -> str:
    return f"{count} cell{'' if count == 1 else 's'}"


def _new_notebook(kernel_name: str) -> NotebookNode:
    nb = new_notebook()
    display = "Python 3 (ipykernel)" if kernel_name == "python3" else kernel_name
    language = "python" if kernel_name.startswith("python") else ""
    nb.metadata["kernelspec"] = {"name": kernel_name, "display_name": display, "language": language}
    if language:
        nb.metadata["language_info"] = {"name": language}
    return nb


def notebook_tools(default_timeout: float = DEFAULT_TIMEOUT, max_timeout: float = MAX_TIMEOUT,
                   send_images: bool = False) -> list[Tool]:
    """The notebook tool, ready for a :class:`ToolRegistry`; timeouts are per cell, in seconds.
    ``send_images`` attaches the images of executed or read cells to results (``include_images`` per call)."""
    return [NotebookTool(default_timeout, max_timeout, send_images)]
