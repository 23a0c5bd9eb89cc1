"""JupyterNotebook on the standalone host: real files, real ipykernel kernels, driven through ToolRegistry.run.

These are the seed's notebook scenarios (SEED-PARITY.md) plus what this product adds: cells addressed by id,
timeouts that interrupt, a kernel that dies mid-cell, outputs trimmed for the model but kept in full in the file.
After every call the notebook on disk must still be valid nbformat.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import pytest_asyncio

from jupyterlab_ide_agent.host import LocalHost
from jupyterlab_ide_agent.tools.base import ToolContext, ToolRegistry, ToolResult
from jupyterlab_ide_agent.tools.notebook import notebook_tools
from jupyterlab_ide_agent.tools.outputs import describe_image, outputs_text, strip_ansi

TOOL = "JupyterNotebook"


def png_bytes(width: int, height: int) -> bytes:
    """A real (tiny, grey) PNG, so image descriptions are tested on genuine headers."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest_asyncio.fixture
async def host(tmp_path: Path) -> AsyncIterator[LocalHost]:
    root = tmp_path / "ws"
    root.mkdir()
    h = LocalHost(root, interrupt_grace=5)
    yield h
    await h.shutdown()


@pytest.fixture
def call(host: LocalHost):
    registry = ToolRegistry(notebook_tools(default_timeout=30))
    ctx = ToolContext(root=host.root, session_id="t", services={"host": host})

    async def _call(operation: str, notebook_path: str = "nb.ipynb", check: bool = True, **args: Any) -> ToolResult:
        result = await registry.run(TOOL, {"operation": operation, "notebook_path": notebook_path, **args}, ctx)
        target = host.root / notebook_path
        if check and target.suffix == ".ipynb" and target.is_file() and not target.is_symlink():
            nbformat.validate(nbformat.read(target, as_version=4))  # valid after every operation
        return result

    return _call


def saved(host: LocalHost, name: str = "nb.ipynb") -> nbformat.NotebookNode:
    return nbformat.read(host.root / name, as_version=4)


# ---------------------------------------------------------------- create, execute, persist


async def test_create_and_execute(call, host: LocalHost) -> None:
    created = await call("create_notebook")
    assert not created.is_error and "Created nb.ipynb" in created.output
    assert created.data["action"] == "created" and created.data["cell_count"] == 0
    assert saved(host).metadata.kernelspec.name == "python3"

    inserted = await call("insert_cell", source="print('hello world')")
    cid = inserted.data["cell_id"]
    assert f"id={cid}" in inserted.output and inserted.data["action"] == "modified"

    ran = await call("execute_cell", cell_id=cid)
    assert not ran.is_error, ran.output
    assert "hello world" in ran.output and f"id={cid}" in ran.output and "execution_count 1" in ran.output
    assert ran.data["action"] == "executed" and ran.data["kernel_status"] == "idle"
    assert ran.data["execution_count"] == 1 and ran.data["kernel_id"]
    cell = saved(host).cells[0]
    assert cell.execution_count == 1
    assert cell.outputs == [{"output_type": "stream", "name": "stdout", "text": "hello world\n"}]


async def test_persistent_kernel_and_states(call, host: LocalHost) -> None:
    first = await call("insert_execute_code_cell", source="x = 41")
    second = await call("insert_execute_code_cell", source="x + 1")
    assert "42" in second.output
    assert first.data["kernel_id"] == second.data["kernel_id"]
    assert saved(host).cells[1].outputs[0]["data"]["text/plain"] == "42"
    states = await host.notebook_states()
    assert states == [{"path": "nb.ipynb", "kernel_id": first.data["kernel_id"], "kernel_status": "idle",
                       "execution_count": 2, "cell_count": 2}]


async def test_execute_all_and_range(call, host: LocalHost) -> None:
    await call("insert_cell", source="# Title", cell_type="markdown")
    a = (await call("insert_cell", source="a = 1\nprint('a', a)")).data["cell_id"]
    b = (await call("insert_cell", source="b = a + 1\nprint('b', b)")).data["cell_id"]
    await call("insert_cell", source="")  # empty code cells are skipped
    c = (await call("insert_cell", source="print('c', a + b)")).data["cell_id"]
    ran = await call("execute_all")
    assert not ran.is_error, ran.output
    assert "Ran 3 of 3 code cells" in ran.output and "a 1" in ran.output and "c 3" in ran.output
    cells = saved(host).cells
    assert [cell.get("execution_count") for cell in cells] == [None, 1, 2, None, 3]
    assert cells[4].outputs[0]["text"] == "c 3\n"

    await call("overwrite_cell_source", cell_id=b, source="b = 10\nprint('b', b)")
    ranged = await call("execute_range", cell_id=b, end_cell_id=c)
    assert "Ran 2 of 2" in ranged.output and "c 11" in ranged.output
    assert f"id={a}" not in ranged.output
    assert saved(host).cells[1].execution_count == 1  # outside the range: untouched


async def test_execute_all_stops_at_the_first_error(call, host: LocalHost) -> None:
    await call("insert_cell", source="print('one')")
    await call("insert_cell", source="raise ValueError('bad value')")
    await call("insert_cell", source="print('three')")
    stopped = await call("execute_all")
    assert stopped.is_error
    assert "ValueError: bad value" in stopped.output and "three" not in stopped.output
    assert "1 code cell(s) after this one were not run" in stopped.output
    assert saved(host).cells[2].get("execution_count") is None
    go_on = await call("execute_all", stop_on_error=False)
    assert "three" in go_on.output and "1 error" in go_on.output and "2 ok" in go_on.output


async def test_error_cell_returns_a_readable_traceback(call, host: LocalHost) -> None:
    result = await call("insert_execute_code_cell", source="def f():\n    return 1 / 0\n\nf()")
    assert result.is_error
    assert "Error in cell 0" in result.output and "ZeroDivisionError: division by zero" in result.output
    assert "return 1 / 0" in result.output and "f()" in result.output
    assert "\x1b[" not in result.output  # ANSI colours stripped for the model
    out = saved(host).cells[0].outputs
    assert out[0]["output_type"] == "error" and out[0]["ename"] == "ZeroDivisionError"
    assert any("\x1b[" in line for line in out[0]["traceback"])  # the notebook keeps them, as JupyterLab does


# ---------------------------------------------------------------- missing, creating, reading


async def test_missing_notebook(call, host: LocalHost) -> None:
    for op, extra in [("list_cells", {}), ("read_cell", {"index": 0}), ("execute_cell", {"index": 0}),
                      ("delete_cell", {"index": 0}), ("execute_ipython", {"source": "1"})]:
        result = await call(op, "missing.ipynb", **extra)
        assert result.is_error and "missing.ipynb does not exist" in result.output, (op, result.output)
        assert "create_notebook" in result.output
    assert not (host.root / "missing.ipynb").exists()
    again = await call("create_notebook")
    assert not again.is_error
    assert "already exists" in (await call("create_notebook")).output


async def test_insert_creates_the_notebook_if_missing(call, host: LocalHost) -> None:
    result = await call("insert_cell", "sub/dir/new.ipynb", source="1 + 1")
    assert not result.is_error and result.output.startswith("Created sub/dir/new.ipynb.")
    assert result.data["action"] == "created" and result.data["notebook"] == "sub/dir/new.ipynb"
    nb = saved(host, "sub/dir/new.ipynb")
    assert nb.nbformat == 4 and nb.nbformat_minor == 5 and len(nb.cells) == 1


async def test_list_and_read_cells(call, host: LocalHost) -> None:
    await call("create_notebook")
    empty = await call("list_cells")
    assert not empty.is_error and "0 cells" in empty.output and "no cells" in empty.output
    assert "kernel: not started" in empty.output
    assert "has no cells" in (await call("read_cell", index=0)).output
    assert "has no cells" in (await call("read_cells")).output

    md = (await call("insert_cell", source="# Heading\nSome *text*", cell_type="markdown")).data["cell_id"]
    code = (await call("insert_execute_code_cell", source="for i in range(3):\n    print(i)")).data["cell_id"]
    listing = await call("list_cells")
    assert f"cell 0 id={md} markdown: # Heading  (+1 line)" in listing.output
    assert f"cell 1 id={code} code [1]: for i in range(3):  (+1 line)  -> 1 output" in listing.output
    assert "python3 idle" in listing.output

    read_md = await call("read_cell", cell_id=md)
    assert read_md.output == f"cell 0 id={md} markdown\n# Heading\nSome *text*"
    read_code = await call("read_cell", index=-1)
    assert "--- outputs (1) ---\n0\n1\n2" in read_code.output
    both = await call("read_cells")
    assert "cells 0-1 of 2" in both.output and "# Heading" in both.output and "print(i)" in both.output

    out_of_range = await call("read_cell", index=5)
    assert out_of_range.is_error and "index 5 is out of range" in out_of_range.output and "0-1" in out_of_range.output
    no_index = await call("read_cell")
    assert no_index.is_error and "needs cell_id or index" in no_index.output
    bad_id = await call("read_cell", cell_id="nope")
    assert bad_id.is_error and "no cell with id 'nope'" in bad_id.output and md in bad_id.output


async def test_insert_at_beginning_end_and_after_a_cell(call, host: LocalHost) -> None:
    await call("insert_cell", source="middle")
    await call("insert_cell", source="first", index=0)
    last = await call("insert_cell", source="last", index=-1)
    after_first = await call("insert_cell", source="second", cell_id=saved(host).cells[0].id)
    assert "at index 1" in after_first.output
    assert [c.source for c in saved(host).cells] == ["first", "second", "middle", "last"]
    assert "at index 2" in last.output
    bad = await call("insert_cell", source="x", index=9)
    assert bad.is_error and "use 0-4 (or -1 to append)" in bad.output


async def test_delete_overwrite_and_move(call, host: LocalHost) -> None:
    ids = [(await call("insert_cell", source=f"v = {i}")).data["cell_id"] for i in range(3)]
    ran = await call("execute_cell", cell_id=ids[1])
    assert not ran.is_error
    over = await call("overwrite_cell_source", cell_id=ids[1], source="v = 'new'")
    assert "old outputs were cleared" not in over.output  # `v = 1` printed nothing
    await call("execute_cell", cell_id=ids[1])
    await call("overwrite_cell_source", cell_id=ids[1], source="v")
    assert "'new'" in (await call("execute_cell", cell_id=ids[1])).output
    over = await call("overwrite_cell_source", cell_id=ids[1], source="## now markdown", cell_type="markdown")
    assert "now a markdown cell" in over.output and "old outputs were cleared" in over.output
    cell = saved(host).cells[1]
    assert cell.id == ids[1] and cell.cell_type == "markdown" and "outputs" not in cell

    moved = await call("move_cell", cell_id=ids[0], to_index=-1)
    assert "from index 0 to 2" in moved.output
    assert [c.id for c in saved(host).cells] == [ids[1], ids[2], ids[0]]
    deleted = await call("delete_cell", cell_id=ids[2])
    assert "Deleted cell 1" in deleted.output and "now has 2 cells" in deleted.output
    assert [c.id for c in saved(host).cells] == [ids[1], ids[0]]
    assert (await call("move_cell", index=0)).output.endswith("needs to_index: the cell's new position")


async def test_execute_markdown_cell_is_a_clear_error(call, host: LocalHost) -> None:
    md = (await call("insert_cell", source="# Not code", cell_type="markdown")).data["cell_id"]
    result = await call("execute_cell", cell_id=md)
    assert result.is_error and "is a markdown cell; only code cells execute" in result.output
    assert "cell_type 'code'" in result.output
    assert await host.kernel_status("nb.ipynb") == {"kernel_id": None, "kernel_name": None,
                                                     "kernel_status": "not started"}


async def test_cells_are_addressed_by_id_after_the_user_inserts_one(call, host: LocalHost) -> None:
    target = (await call("insert_cell", source="print('target')")).data["cell_id"]
    nb = saved(host)
    nb.cells.insert(0, nbformat.v4.new_code_cell("print('inserted by the user')"))
    nbformat.write(nb, host.root / "nb.ipynb")
    ran = await call("execute_cell", cell_id=target)
    assert "target" in ran.output and "inserted by the user" not in ran.output and "cell 1" in ran.output
    assert saved(host).cells[1].outputs[0]["text"] == "target\n"


async def test_old_notebooks_get_cell_ids(call, host: LocalHost) -> None:
    old = {"nbformat": 4, "nbformat_minor": 2, "metadata": {},
           "cells": [{"cell_type": "code", "source": "1", "metadata": {}, "outputs": [], "execution_count": None}]}
    (host.root / "old.ipynb").write_text(json.dumps(old))
    listing = await call("list_cells", "old.ipynb")
    cid = saved(host, "old.ipynb").cells[0].id  # stored on first read, so the id shown stays valid
    assert f"cell 0 id={cid} code" in listing.output
    assert f"id={cid}" in (await call("list_cells", "old.ipynb")).output
    assert "Out[1]: 1" in (await call("execute_cell", "old.ipynb", cell_id=cid)).output
    nb = saved(host, "old.ipynb")
    assert nb.nbformat_minor == 5 and nb.cells[0].id == cid


async def test_invalid_notebook_is_reported_and_left_untouched(call, host: LocalHost) -> None:
    (host.root / "broken.ipynb").write_text("{not json")
    result = await call("insert_cell", "broken.ipynb", check=False, source="x")
    assert result.is_error and "not valid notebook JSON" in result.output
    assert (host.root / "broken.ipynb").read_text() == "{not json"
    (host.root / "empty.ipynb").write_text("{}")
    result = await call("list_cells", "empty.ipynb", check=False)
    assert result.is_error and "empty.ipynb is not a readable Jupyter notebook" in result.output


# ---------------------------------------------------------------- execute_ipython, kernel control


async def test_execute_ipython_with_a_magic_and_with_an_error(call, host: LocalHost) -> None:
    await call("insert_cell", source="existing = 7")
    magic = await call("execute_ipython", source="%time total = sum(range(10))\n!echo from-shell\nprint(total)")
    assert not magic.is_error, magic.output
    assert "Wall time" in magic.output and "from-shell" in magic.output and "45" in magic.output
    helped = await call("execute_ipython", source="len?")
    assert "Return the number of items" in helped.output and "\x1b[" not in helped.output  # the pager payload
    failed = await call("execute_ipython", source="%not_a_magic")
    assert failed.is_error and "UsageError" in failed.output
    raised = await call("execute_ipython", source="undefined_name")
    assert raised.is_error and "NameError" in raised.output and "undefined_name" in raised.output
    assert len(saved(host).cells) == 1  # no cell added


async def test_timeout_interrupts_and_keeps_variables(call, host: LocalHost) -> None:
    await call("insert_execute_code_cell", source="kept = 'still here'")
    loop = await call("insert_execute_code_cell", source="while True:\n    pass", timeout=1)
    assert loop.is_error and "ran past its 1 s timeout and was interrupted" in loop.output
    assert "KeyboardInterrupt" in loop.output and loop.data["status"] == "timeout"
    assert saved(host).cells[1].outputs[-1]["ename"] == "KeyboardInterrupt"
    after = await call("execute_ipython", source="print(kept)")
    assert not after.is_error and "still here" in after.output
    too_long = await call("execute_ipython", source="1", timeout=10**6)
    assert too_long.is_error and "Invalid arguments" in too_long.output


async def test_a_cancelled_call_interrupts_its_cell(call, host: LocalHost) -> None:
    await call("insert_execute_code_cell", source="state = 'kept'")
    running = asyncio.create_task(call("execute_ipython", source="import time\nwhile True:\n    time.sleep(0.05)"))
    await asyncio.sleep(1.0)
    running.cancel()  # what the agent loop does when the user presses stop
    with pytest.raises(asyncio.CancelledError):
        await running
    started = time.monotonic()
    after = await call("execute_ipython", source="print(state)", timeout=5)
    assert "kept" in after.output and time.monotonic() - started < 3  # not stuck behind the endless loop


async def test_kernel_death_is_reported_and_recovered(call, host: LocalHost) -> None:
    first = await call("insert_execute_code_cell", source="x = 1")
    died = await call("insert_execute_code_cell", source="import os\nos._exit(1)")
    assert died.is_error
    assert "the kernel died while running this cell; it will be restarted on the next call" in died.output
    assert died.data["kernel_status"] == "dead"
    back = await call("execute_ipython", source="print('x' in globals())")
    assert not back.is_error and "False" in back.output
    assert back.data["kernel_id"] != first.data["kernel_id"] and back.data["kernel_status"] == "idle"


async def test_interrupt_and_restart_kernel(call, host: LocalHost) -> None:
    await call("create_notebook")
    nothing = await call("interrupt_kernel")
    assert not nothing.is_error and "no running kernel" in nothing.output
    await call("execute_ipython", source="y = 5")
    interrupted = await call("interrupt_kernel")
    assert "Sent an interrupt" in interrupted.output and interrupted.data["action"] == "kernel_interrupted"
    assert "5" in (await call("execute_ipython", source="y")).output
    restarted = await call("restart_kernel")
    assert "all variables and imports are gone" in restarted.output
    gone = await call("execute_ipython", source="y")
    assert gone.is_error and "NameError" in gone.output
    assert gone.data["execution_count"] == 1


# ---------------------------------------------------------------- outputs for the model


async def test_images_are_described_and_long_output_is_cut(call, host: LocalHost) -> None:
    png = base64.b64encode(png_bytes(64, 48)).decode()
    code = (f"from IPython.display import Image, display\nimport base64\n"
            f"display(Image(data=base64.b64decode('{png}')))\nprint('x' * 50000)\nprint('THE END')")
    result = await call("insert_execute_code_cell", source=code)
    assert "[image/png 64x48, " in result.output
    assert "characters (0 lines) of output cut here; the notebook keeps the full output" in result.output
    assert "THE END" in result.output and len(result.output) < 10000
    outputs = saved(host).cells[0].outputs
    assert outputs[0]["data"]["image/png"].replace("\n", "") == png  # the notebook keeps the image
    assert len(outputs[1]["text"]) > 50000  # and the full output


def test_output_rendering_units() -> None:
    assert describe_image("image/png", base64.b64encode(png_bytes(640, 480)).decode()).startswith("[image/png 640x480")
    assert strip_ansi("\x1b[31mred\x1b[0m") == "red"
    progress = {"output_type": "stream", "name": "stdout", "text": "10%\r50%\r100%\ndone\n"}
    assert outputs_text([progress]) == "100%\ndone"
    html_only = {"output_type": "display_data", "data": {"text/html": "<b>x</b>"}, "metadata": {}}
    assert outputs_text([html_only]) == "[text/html 8 B, shown in JupyterLab]"
    streams = [{"output_type": "stream", "name": "stderr", "text": "warn\n"},
               {"output_type": "stream", "name": "stderr", "text": "again\n"}]
    assert outputs_text(streams) == "[stderr]\nwarn\nagain"


# ---------------------------------------------------------------- refusals


async def test_paths_outside_the_root_are_refused(call, host: LocalHost, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), outside / "secret.ipynb")
    os.symlink(outside / "secret.ipynb", host.root / "link.ipynb")
    os.symlink(outside, host.root / "linkdir")
    for bad in ["../outside/secret.ipynb", str(outside / "secret.ipynb"), "link.ipynb", "linkdir/new.ipynb"]:
        result = await call("insert_cell", bad, source="x")
        assert result.is_error and "outside the workspace root" in result.output, bad
    assert nbformat.read(outside / "secret.ipynb", as_version=4).cells == []
    assert not (outside / "new.ipynb").exists()
    not_nb = await call("list_cells", "notes.txt")
    assert not_nb.is_error and "not a notebook (.ipynb)" in not_nb.output


async def test_without_a_host_the_tool_says_so(tmp_path: Path) -> None:
    registry = ToolRegistry(notebook_tools())
    result = await registry.run(TOOL, {"operation": "list_cells", "notebook_path": "nb.ipynb"},
                                ToolContext(root=tmp_path, session_id="t"))
    assert result.is_error and "No notebook host is configured" in result.output
