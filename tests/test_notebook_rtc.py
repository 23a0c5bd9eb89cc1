"""JupyterNotebook on a notebook open in a collaboration room (jupyter-collaboration's ``jupyter_server_ydoc``).

The "browser" is a pycrdt ``YNotebook`` synced with the room over the room's real WebSocket, exactly as JupyterLab's
docprovider connects (PUT /api/collaboration/session/<path>, then /api/collaboration/room/json:notebook:<file id>).
The agent works through ``ServerHost``: what it does must show up in that client's document at once, the client's own
edits (not yet saved) must survive, and the room's autosave must leave a valid notebook on disk.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest
import pytest_asyncio
import tornado.httpclient
import tornado.websocket
from traitlets.config import Config

pytest.importorskip("jupyter_server_ydoc")

from jupyter_ydoc import YNotebook
from pycrdt import Provider, Text

from jupyterlab_ide_agent.host import ServerHost
from jupyterlab_ide_agent.host.ydoc import OUTPUT_INTERVAL, set_text
from jupyterlab_ide_agent.tools.base import ToolContext, ToolRegistry, ToolResult
from jupyterlab_ide_agent.tools.notebook import notebook_tools

SAVE_DELAY = 0.5


@pytest.fixture
def jp_server_config(jp_root_dir: Path, tmp_path: Path) -> Config:
    return Config({
        "ServerApp": {"jpserver_extensions": {"jupyter_server_ydoc": True, "jupyter_server_fileid": True}},
        "BaseFileIdManager": {"root_dir": str(jp_root_dir), "db_path": str(tmp_path / "fileid.db"),
                              "db_journal_mode": "OFF"},
        "SQLiteYStore": {"db_path": str(tmp_path / "ystore.db")},
        "YDocExtension": {"document_save_delay": SAVE_DELAY, "document_cleanup_delay": 60},
    })


@pytest_asyncio.fixture
async def host(jp_serverapp: Any) -> AsyncIterator[ServerHost]:
    h = ServerHost(jp_serverapp, interrupt_grace=5)
    yield h
    await h.shutdown()


@pytest.fixture
def call(host: ServerHost, jp_root_dir: Path) -> Callable[..., Any]:
    registry = ToolRegistry(notebook_tools(default_timeout=30))
    ctx = ToolContext(root=jp_root_dir, session_id="t", services={"host": host})

    async def _call(operation: str, notebook_path: str = "nb.ipynb", **args: Any) -> ToolResult:
        return await registry.run("JupyterNotebook", {"operation": operation, "notebook_path": notebook_path,
                                                      **args}, ctx)

    return _call


class _Channel:
    """A pycrdt channel over a Tornado WebSocket client connection."""

    def __init__(self, ws: Any, path: str) -> None:
        self._ws, self._path = ws, path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> _Channel:
        return self

    async def __anext__(self) -> bytes:
        message = await self._ws.read_message()
        if message is None:
            raise StopAsyncIteration
        return bytes(message) if not isinstance(message, str) else message.encode()

    async def recv(self) -> bytes:
        return await self.__anext__()

    async def send(self, message: bytes) -> None:
        await self._ws.write_message(bytes(message), binary=True)


@pytest.fixture
def open_in_browser(jp_fetch: Any, jp_http_port: int, jp_base_url: str, jp_auth_header: dict[str, str]):
    """``async with open_in_browser("nb.ipynb") as doc``: a YNotebook synced with the notebook's room."""

    @asynccontextmanager
    async def _open(path: str) -> AsyncIterator[YNotebook]:
        resp = await jp_fetch("api", "collaboration", "session", path, method="PUT",
                              body=json.dumps({"format": "json", "type": "notebook"}))
        session = json.loads(resp.body)
        room = f"{session['format']}:{session['type']}:{session['fileId']}"
        url = f"ws://127.0.0.1:{jp_http_port}{jp_base_url}api/collaboration/room/{room}?sessionId={session['sessionId']}"
        ws = await tornado.websocket.websocket_connect(tornado.httpclient.HTTPRequest(url, headers=jp_auth_header))
        doc = YNotebook()
        try:
            async with Provider(doc.ydoc, _Channel(ws, room)) as provider:
                await asyncio.wait_for(provider.synced.wait(), 10)
                await until(lambda: doc.cell_number > 0, what="the notebook to load in the client")
                yield doc
        finally:
            ws.close()

    return _open


async def until(check: Callable[[], Any], timeout: float = 10.0, what: str = "the condition") -> float:
    """Wait until ``check()`` is true; the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def settles(get: Callable[[], Any], expected: Any, timeout: float = 5.0) -> None:
    """Wait until ``get()`` equals ``expected`` (updates cross a WebSocket); assert with the last value."""
    try:
        await until(lambda: get() == expected, timeout)
    except AssertionError:
        pass
    assert get() == expected


async def reached_room(host: ServerHost, path: str, check: Callable[[dict[str, Any]], bool]) -> None:
    """Wait until the client's edit is in the room's document (it was sent over the WebSocket)."""
    room_doc = await host.shared_notebook(path)
    assert room_doc is not None
    await until(lambda: check(room_doc.get()), what="the user's edit to reach the room")


def write_notebook(path: Path, *sources: str) -> list[str]:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nbformat.write(nb, path)
    return [c.id for c in nb.cells]


def cells(doc: YNotebook) -> list[dict[str, Any]]:
    return doc.get()["cells"]


def by_id(doc: YNotebook, cell_id: str) -> dict[str, Any] | None:
    return next((c for c in cells(doc) if c.get("id") == cell_id), None)


def stdout(cell: dict[str, Any] | None) -> str:
    return "".join(o.get("text", "") for o in (cell or {}).get("outputs", []) if o.get("output_type") == "stream")


def on_disk(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb


def saved_as(path: Path, check: Callable[[nbformat.NotebookNode], bool]) -> Callable[[], bool]:
    """For :func:`until`: the file is valid and passes ``check`` (a file being written reads as not yet)."""

    def ready() -> bool:
        try:
            return check(on_disk(path))
        except (nbformat.reader.NotJSONError, json.JSONDecodeError):
            return False  # the contents manager writes in place: caught mid-save

    return ready


async def test_agent_cell_and_output_appear_live_and_the_users_unsaved_edit_survives(
        call: Any, host: ServerHost, open_in_browser: Any, jp_root_dir: Path) -> None:
    first, _ = write_notebook(jp_root_dir / "nb.ipynb", "a = 1", "b = 2")
    async with open_in_browser("nb.ipynb") as doc:
        # the user types in the first cell; the agent acts before the room could even save it
        set_text(doc.ycells[0]["source"], "a = 1  # typed by the user")
        started = time.monotonic()
        task = asyncio.create_task(call("insert_execute_code_cell", source="print('hello from the agent')"))
        seen_cell = await until(lambda: len(cells(doc)) == 3, what="the agent's cell in the client")
        seen_output = await until(lambda: "hello from the agent" in stdout(cells(doc)[2]),
                                  what="the agent's output in the client")
        result = await task
        assert not result.is_error, result.output
        took = time.monotonic() - started
        print(f"\ncell seen after {seen_cell:.3f} s, output after {seen_output:.3f} s, tool call {took:.3f} s")
        assert seen_output < 5

        new = cells(doc)[2]
        assert new["id"] == result.data["cell_id"] and new["source"] == "print('hello from the agent')"
        assert await until(lambda: by_id(doc, result.data["cell_id"])["execution_count"] == 1)  # type: ignore[index]
        assert cells(doc)[0]["source"] == "a = 1  # typed by the user"
        assert cells(doc)[0]["id"] == first

        # the room's autosave writes it all, as valid nbformat
        await until(saved_as(jp_root_dir / "nb.ipynb", lambda nb: len(nb.cells) == 3
                             and nb.cells[2].execution_count == 1), what="the autosave")
        nb = on_disk(jp_root_dir / "nb.ipynb")
        assert nb.cells[0].source == "a = 1  # typed by the user"
        assert nb.cells[2].outputs[0]["text"] == "hello from the agent\n"
        assert nb.nbformat_minor >= 5 and [c.id for c in nb.cells] == [c["id"] for c in cells(doc)]
        await asyncio.sleep(SAVE_DELAY + 1.5)  # no out-of-band reload later takes anything back
        assert cells(doc)[0]["source"] == "a = 1  # typed by the user" and len(cells(doc)) == 3


async def test_the_agent_reads_what_the_user_sees(call: Any, host: ServerHost, open_in_browser: Any,
                                                  jp_root_dir: Path) -> None:
    write_notebook(jp_root_dir / "nb.ipynb", "x = 1")
    async with open_in_browser("nb.ipynb") as doc:
        set_text(doc.ycells[0]["source"], "x = 'not saved yet'")
        await reached_room(host, "nb.ipynb", lambda nb: "not saved" in nb["cells"][0]["source"])
        assert "not saved yet" not in (jp_root_dir / "nb.ipynb").read_text()
        read = await call("read_cell", index=0)
        assert "x = 'not saved yet'" in read.output


async def test_outputs_stream_into_the_cell_while_it_runs(call: Any, host: ServerHost, open_in_browser: Any,
                                                          jp_root_dir: Path) -> None:
    write_notebook(jp_root_dir / "nb.ipynb", "pass")
    code = "import time\nfor i in range(6):\n    print('tick', i, flush=True)\n    time.sleep(0.3)"
    async with open_in_browser("nb.ipynb") as doc:
        states: list[str] = []

        def watch(*_: Any) -> None:
            if len(doc.ycells) > 1:
                text = stdout(doc.get_cell(1))
                if not states or states[-1] != text:
                    states.append(text)

        doc.observe(watch)
        result = await call("insert_execute_code_cell", source=code)
        assert not result.is_error, result.output
        expected = "".join(f"tick {i}\n" for i in range(6))
        await until(lambda: stdout(by_id(doc, result.data["cell_id"])) == expected, what="the final outputs")
        final = by_id(doc, result.data["cell_id"])
        partial = [s for s in states if s and s != stdout(final)]
        assert len(partial) >= 2, states  # seen while it ran, not only at the end
        # coalesced: a few updates a second at most (about 1.8 s of output)
        assert len(states) <= 1.8 / OUTPUT_INTERVAL + 4, states


async def test_outputs_land_in_the_cell_by_id_after_the_user_moves_it(call: Any, host: ServerHost,
                                                                      open_in_browser: Any, jp_root_dir: Path) -> None:
    write_notebook(jp_root_dir / "nb.ipynb", "one = 1", "two = 2")
    async with open_in_browser("nb.ipynb") as doc:
        inserted = await call("insert_cell", source="print('mine')")
        cid = inserted.data["cell_id"]
        await until(lambda: len(cells(doc)) == 3)
        # the user drags the agent's cell to the top (JupyterLab moves a cell by delete + insert of the same id)
        moved = doc.get_cell(2)
        with doc.ydoc.transaction():
            del doc.ycells[2]
            doc.ycells.insert(0, doc.create_ycell(moved))
        await reached_room(host, "nb.ipynb", lambda nb: nb["cells"][0]["id"] == cid)
        ran = await call("execute_cell", cell_id=cid)
        assert not ran.is_error, ran.output
        await until(lambda: stdout(cells(doc)[0]) == "mine\n", what="the output in the moved cell")
        assert [c["source"] for c in cells(doc)] == ["print('mine')", "one = 1", "two = 2"]
        assert all(not c["outputs"] for c in cells(doc)[1:])


async def test_edits_touch_only_what_the_agent_changed(call: Any, host: ServerHost, open_in_browser: Any,
                                                      jp_root_dir: Path) -> None:
    a, b, c = write_notebook(jp_root_dir / "nb.ipynb", "a = 1", "b = 2", "c = 3")
    async with open_in_browser("nb.ipynb") as doc:
        set_text(doc.ycells[0]["source"], "a = 'user'")
        doc.ycells[2]["metadata"]["tags"] = ["user-tag"]
        await reached_room(host, "nb.ipynb", lambda nb: nb["cells"][2]["metadata"].get("tags") == ["user-tag"])

        def shape() -> list[tuple[str, str, str]]:
            return [(x["id"], x["cell_type"], x["source"]) for x in cells(doc)]

        for op, args in [("overwrite_cell_source", {"cell_id": b, "source": "b = 'agent'"}),
                         ("move_cell", {"cell_id": c, "to_index": 0}),
                         ("insert_cell", {"cell_id": a, "source": "# agent note", "cell_type": "markdown"})]:
            result = await call(op, **args)
            assert not result.is_error, result.output
        note = result.data["cell_id"]
        await settles(shape, [(c, "code", "c = 3"), (a, "code", "a = 'user'"), (note, "markdown", "# agent note"),
                              (b, "code", "b = 'agent'")])
        assert cells(doc)[0]["metadata"].get("tags") == ["user-tag"]  # moved with the user's tag

        # the user keeps typing in a; the agent turns b into markdown and deletes its note
        set_text(doc.ycells[1]["source"], "a = 'user, again'")
        await reached_room(host, "nb.ipynb", lambda nb: "again" in nb["cells"][1]["source"])
        assert not (await call("overwrite_cell_source", cell_id=b, source="**b**", cell_type="markdown")).is_error
        assert not (await call("delete_cell", cell_id=note)).is_error
        await settles(shape, [(c, "code", "c = 3"), (a, "code", "a = 'user, again'"), (b, "markdown", "**b**")])

        await until(saved_as(jp_root_dir / "nb.ipynb",
                             lambda nb: [(x.id, x.cell_type, x.source) for x in nb.cells] == shape()),
                    what="the autosave")


async def test_concurrent_typing_in_the_cell_being_run_is_kept(call: Any, open_in_browser: Any,
                                                              jp_root_dir: Path) -> None:
    (cid,) = write_notebook(jp_root_dir / "nb.ipynb", "import time\ntime.sleep(1)\nprint('done')")
    async with open_in_browser("nb.ipynb") as doc:
        task = asyncio.create_task(call("execute_cell", cell_id=cid))
        await until(lambda: doc.ycells[0].get("execution_state") == "running", what="the [*] state")
        source = doc.ycells[0]["source"]
        assert isinstance(source, Text)
        source += "\n# the user typed this while it ran"
        result = await task
        assert not result.is_error and "done" in result.output
        await settles(lambda: (stdout(cells(doc)[0]), cells(doc)[0]["execution_count"],
                               doc.ycells[0].get("execution_state")), ("done\n", 1, "idle"))
        assert cells(doc)[0]["source"].endswith("# the user typed this while it ran")


async def test_code_that_is_not_a_cell_does_not_touch_the_notebook(call: Any, open_in_browser: Any,
                                                                   jp_root_dir: Path) -> None:
    write_notebook(jp_root_dir / "nb.ipynb", "x = 1")
    async with open_in_browser("nb.ipynb") as doc:
        before = cells(doc)
        ran = await call("execute_ipython", source="print('side channel')")
        assert not ran.is_error and "side channel" in ran.output
        await asyncio.sleep(0.2)
        assert cells(doc) == before


async def test_without_a_room_the_file_is_edited(call: Any, host: ServerHost, jp_root_dir: Path) -> None:
    """The extension is on but nobody has the notebook open: the contents manager path, as without RTC."""
    write_notebook(jp_root_dir / "nb.ipynb", "x = 1")
    assert await host.shared_notebook("nb.ipynb") is None
    result = await call("insert_execute_code_cell", source="print(41 + 1)")
    assert not result.is_error, result.output
    nb = on_disk(jp_root_dir / "nb.ipynb")  # written at once, no autosave involved
    assert len(nb.cells) == 2 and nb.cells[1].outputs[0]["text"] == "42\n"
    created = await call("create_notebook", "fresh.ipynb")
    assert not created.is_error and (jp_root_dir / "fresh.ipynb").exists()


async def test_live_notebooks_can_be_turned_off(jp_serverapp: Any, open_in_browser: Any, jp_root_dir: Path) -> None:
    write_notebook(jp_root_dir / "nb.ipynb", "x = 1")
    async with open_in_browser("nb.ipynb"):
        on = ServerHost(jp_serverapp)
        off = ServerHost(jp_serverapp, live_notebooks=False)
        try:
            assert await on.shared_notebook("nb.ipynb") is not None
            assert await off.shared_notebook("nb.ipynb") is None
        finally:
            await on.shutdown()
            await off.shutdown()


# ------------------------------------------------------------------------------------------------ without a server


def _ynotebook(*sources: str, minor: int = 5) -> tuple[YNotebook, list[str]]:
    nb = nbformat.v4.new_notebook()
    nb.nbformat_minor = minor
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    ids = [c.id for c in nb.cells]
    if minor < 5:
        for c in nb.cells:
            del c["id"]
    doc = YNotebook()
    doc.set(nb)
    return doc, ids


def _sync(a: YNotebook, b: YNotebook) -> None:
    a.ydoc.apply_update(b.ydoc.get_update(a.ydoc.get_state()))
    b.ydoc.apply_update(a.ydoc.get_update(b.ydoc.get_state()))


def _sources(doc: YNotebook) -> list[str]:
    return [c["source"] for c in doc.get()["cells"]]


def test_apply_changes_merges_with_an_edit_the_room_has_not_seen_yet() -> None:
    from jupyterlab_ide_agent.host.ydoc import apply_changes, read_notebook

    room, (a, b, c) = _ynotebook("a = 1", "b = 2", "c = 3")
    browser = YNotebook()
    _sync(room, browser)
    base = read_notebook(room)
    new = json.loads(json.dumps(base))
    set_text(browser.ycells[0]["source"], "a = 'typed'")  # not yet sent to the room
    new["cells"][1]["source"] = "b = 'agent'"
    new["cells"].insert(1, nbformat.v4.new_markdown_cell("# inserted after a"))
    new["cells"].insert(0, new["cells"].pop(3))  # c to the top
    apply_changes(room, base, new)
    _sync(room, browser)
    assert _sources(room) == _sources(browser) == ["c = 3", "a = 'typed'", "# inserted after a", "b = 'agent'"]
    assert [x["id"] for x in room.get()["cells"]][:2] == [c, a] and room.get()["cells"][3]["id"] == b


def test_apply_changes_moves_only_what_moved() -> None:
    from jupyterlab_ide_agent.host.ydoc import _moved, apply_changes, read_notebook

    assert _moved(list("abcd"), list("bcad")) == {"a"}
    assert _moved(list("abcd"), list("abcd")) == set()
    assert _moved(list("abcd"), list("dabc")) == {"d"}
    room, _ = _ynotebook("0", "1", "2", "3")
    base = read_notebook(room)
    new = json.loads(json.dumps(base))
    new["cells"] = [new["cells"][i] for i in (1, 2, 0, 3)]
    deltas: list[Any] = []
    room.ycells.observe(lambda event: deltas.extend(event.delta))
    apply_changes(room, base, new)
    assert _sources(room) == ["1", "2", "0", "3"]
    # one cell out, one cell in: the others were not recreated (the browser keeps their widgets and cursors)
    assert sum(d.get("delete", 0) for d in deltas) == 1 and sum(len(d.get("insert", [])) for d in deltas) == 1


def test_an_old_notebook_without_ids_gets_them_once() -> None:
    from jupyterlab_ide_agent.host.ydoc import read_notebook

    room, _ = _ynotebook("x", "y", minor=4)
    first = read_notebook(room)
    assert first["nbformat_minor"] == 5 and all(c["id"] for c in first["cells"])
    assert read_notebook(room) == first and room.get()["nbformat_minor"] == 5
    nbformat.validate(nbformat.from_dict(room.get()))  # what the room would save keeps those ids


def test_set_text_changes_only_the_middle() -> None:
    doc = YNotebook()
    for old, new in [("abc", "abXc"), ("aaa", "aa"), ("", "new"), ("gone", ""), ("x = 1", "y = 1"), ("ab", "ab")]:
        text = doc.ydoc.get(f"t{old}{new}", type=Text)
        text += old
        changes: list[Any] = []
        text.observe(changes.append)
        set_text(text, new)
        assert str(text) == new
        assert len(changes) == (0 if old == new else 1)


async def test_live_outputs_coalesce_a_flood_of_chunks() -> None:
    from jupyterlab_ide_agent.host.ydoc import LiveOutputs

    room, (cid,) = _ynotebook("for i in range(500): print(i)")
    live = LiveOutputs(room, cid, interval=0.1)
    assert live.start() and room.ycells[0]["execution_state"] == "running"
    for i in range(500):
        live.on_output({"output_type": "stream", "name": "stdout", "text": f"{i}\n"})
        if i % 50 == 0:
            await asyncio.sleep(0.02)
    live.on_output({"output_type": "display_data", "data": {"text/plain": "done"}, "metadata": {}})
    await asyncio.sleep(0.15)
    assert live.updates <= 5, live.updates
    expected = [{"output_type": "stream", "name": "stdout", "text": "".join(f"{i}\n" for i in range(500))},
                {"output_type": "display_data", "data": {"text/plain": "done"}, "metadata": {}}]
    assert room.get_cell(0)["outputs"] == expected
    live.finish(expected, 7)
    cell = room.get_cell(0)
    assert cell["execution_count"] == 7 and cell["outputs"] == expected
    assert room.ycells[0]["execution_state"] == "idle"
    assert LiveOutputs(room, "no-such-cell").start() is False


async def test_the_host_streams_into_the_cell_it_is_told(host: ServerHost, open_in_browser: Any,
                                                        jp_root_dir: Path) -> None:
    """``ServerHost.execute(..., cell_id=...)``: the outputs go to that cell, whatever its source."""
    _, target = write_notebook(jp_root_dir / "nb.ipynb", "x = 1", "# run for me")
    async with open_in_browser("nb.ipynb") as doc:
        result = await host.execute("nb.ipynb", "print('via the id')", 30, cell_id=target)
        assert result.status == "ok"
        await settles(lambda: (stdout(by_id(doc, target)), by_id(doc, target)["execution_count"]),  # type: ignore[index]
                      ("via the id\n", result.execution_count))
