"""Files and notebooks the user attaches to a prompt, and the ``GET /ide-agent/files`` completion behind ``@``.

What the model receives is checked on the fake provider's recorded request; what the browser gets (and a reopened
session replays) is checked on the ``user_message`` event, which keeps the references and never the content.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import nbformat
import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets.config import Config

from jupyterlab_ide_agent.agent.attachments import (
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    parse_attachments,
    resolve_attachments,
)
from jupyterlab_ide_agent.host.ydoc import set_text
from jupyterlab_ide_agent.workspace.files import FileIndex
from tests.conftest import providers_config
from tests.fakes.base import ScriptedTurn
from tests.test_durable_sessions import restart
from tests.test_handlers import create_session, read_until_done
from tests.test_notebook_rtc import open_in_browser as _open_in_browser
from tests.test_notebook_rtc import reached_room

open_in_browser = _open_in_browser  # the fixture: a client synced with a notebook's collaboration room


@pytest.fixture
def with_rooms() -> None:
    """Asked for by a test that needs jupyter-collaboration's rooms (see ``jp_server_config``)."""


@pytest.fixture
def jp_server_config(fakes: dict[str, Any], request: pytest.FixtureRequest, tmp_path: Path,
                     jp_root_dir: Path) -> Config:
    """The extension on the fakes; a test asking for ``with_rooms`` also gets the collaboration rooms."""
    extensions = {"jupyterlab_ide_agent": True}
    config: dict[str, Any] = {"IDEAgent": {"providers": providers_config(fakes), "main_model": "openai:gpt-5"}}
    if "with_rooms" in request.fixturenames:
        extensions.update({"jupyter_server_ydoc": True, "jupyter_server_fileid": True})
        config.update({
            "BaseFileIdManager": {"root_dir": str(jp_root_dir), "db_path": str(tmp_path / "fileid.db"),
                                  "db_journal_mode": "OFF"},
            "SQLiteYStore": {"db_path": str(tmp_path / "ystore.db")},
            "YDocExtension": {"document_save_delay": 0.5, "document_cleanup_delay": 60},
        })
    return Config({"ServerApp": {"jpserver_extensions": extensions}, **config})


def sent_user_text(fake: Any) -> str:
    """The last user message of the last request the fake OpenAI received."""
    items = fake.requests[-1]["body"]["input"]
    users = [i for i in items if i.get("role") == "user"]
    return "".join(part.get("text", "") for part in users[-1]["content"])


async def run_turn(agent: Any, context: dict[str, Any], text: str = "Look at this.") -> list[dict[str, Any]]:
    return [event async for event in agent.run(text, context)]


def tiny_png() -> str:
    raw = b"\x00\xff\x00\x00"
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


def write_notebook(path: Path) -> list[str]:
    """Three cells: code with a long log and a plot, markdown, code with a short result. Returns the ids."""
    nb = nbformat.v4.new_notebook()
    log = nbformat.v4.new_code_cell("for i in range(5000):\n    print('step', i)", execution_count=1)
    log.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="".join(f"step {i}\n" for i in range(5000))),
        nbformat.v4.new_output("display_data", data={"image/png": tiny_png(), "text/plain": "<Figure>"}),
    ]
    notes = nbformat.v4.new_markdown_cell("## Findings: the loss plateaus")
    result = nbformat.v4.new_code_cell("answer = 6 * 7\nanswer", execution_count=2)
    result.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "42"}, execution_count=2)]
    nb.cells = [log, notes, result]
    nbformat.write(nb, path)
    return [c.id for c in nb.cells]


# --- the prompt's references are checked strictly ---------------------------------------------------


@pytest.mark.parametrize(("value", "why"), [
    ("a.py", "must be a list"),
    ([{"type": "directory", "path": "src"}], "'type' must be one of"),
    ([{"type": "file", "path": ""}], "non-empty string"),
    ([{"type": "file", "path": 3}], "non-empty string"),
    ([{"type": "file", "path": "a\x00b"}], "null bytes"),
    ([{"type": "file", "path": "x" * 2000}], "at most 1024"),
    ([{"type": "file", "path": "a.py", "content": "injected"}], "unknown attachment field"),
    ([{"type": "file", "path": "a.py", "cell_ids": ["c1"]}], "notebook attachments only"),
    ([{"type": "notebook", "path": "a.py"}], "not an .ipynb"),
    ([{"type": "notebook", "path": "a.ipynb", "cell_ids": []}], "non-empty list"),
    ([{"type": "notebook", "path": "a.ipynb", "cell_ids": [7]}], "strings of 1 to"),
    ([{"type": "file", "path": f"f{i}.py"} for i in range(MAX_ATTACHMENTS + 1)], "at most 20 attachments"),
    (["a.py"], "must be an object"),
])
def test_attachment_references_are_checked_strictly(value: Any, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_attachments(value)


def test_an_ipynb_is_always_a_notebook_and_repeated_cell_ids_count_once() -> None:
    [ref] = parse_attachments([{"type": "file", "path": " nb.ipynb ", "cell_ids": ["a", "b", "a"]}])
    assert ref.to_json() == {"type": "notebook", "path": "nb.ipynb", "cell_ids": ["a", "b"]}


# --- what the model receives, what the event keeps -----------------------------------------------------


async def test_a_file_reaches_the_model_and_the_event_keeps_only_the_reference(
        make_agent: Any, fakes: Any, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.py").write_text("LEARNING_RATE = 0.0314  # tuned on fold 3\n")
    agent = make_agent("openai")
    events = await run_turn(agent, {"attachments": [{"type": "file", "path": "src/model.py"}]})

    sent = sent_user_text(fakes["openai"])
    assert '<attachment path="src/model.py" type="file">\nLEARNING_RATE = 0.0314  # tuned on fold 3\n' in sent
    assert "<context>" not in sent, "the references are not repeated as JSON"
    user_event = events[0]
    assert user_event["type"] == "user_message" and events[-1]["reason"] == "completed"
    size = len("LEARNING_RATE = 0.0314  # tuned on fold 3\n")
    assert user_event["context"] == {"attachments": [{"type": "file", "path": "src/model.py", "size": size}]}
    assert "0.0314" not in json.dumps(events), "the content is not in the event log"
    assert "0.0314" in agent.history[0].attachments[0]["content"], "it is in the memory"


async def test_a_notebook_is_attached_as_its_cells_with_outputs_trimmed(
        make_agent: Any, fakes: Any, tmp_path: Path) -> None:
    ids = write_notebook(tmp_path / "train.ipynb")
    agent = make_agent("openai")
    events = await run_turn(agent, {"attachments": [{"type": "notebook", "path": "train.ipynb"}]})
    sent = sent_user_text(fakes["openai"])
    block = sent[sent.index('<attachment path="train.ipynb" type="notebook">'):]
    assert block.startswith('<attachment path="train.ipynb" type="notebook">\nNotebook train.ipynb: 3 cells')
    for expected in (f"cell 0 id={ids[0]} code [1]", "print('step', i)", "step 0\n", "step 4999",
                     "of output cut here", "[image/png 1x1", f"cell 1 id={ids[1]} markdown",
                     "## Findings: the loss plateaus", f"cell 2 id={ids[2]} code [2]", "Out[2]: 42"):
        assert expected in block, expected
    assert "step 2500\n" not in block, "a long log is cut in the middle"
    assert tiny_png() not in sent, "images are described, not pasted"
    [ref] = events[0]["context"]["attachments"]
    assert ref["type"] == "notebook" and 0 < ref["size"] < 5000 and "note" not in ref


async def test_selected_cells_only(make_agent: Any, fakes: Any, tmp_path: Path) -> None:
    ids = write_notebook(tmp_path / "train.ipynb")
    agent = make_agent("openai")
    events = await run_turn(agent, {"attachments": [
        {"type": "notebook", "path": "train.ipynb", "cell_ids": [ids[2], "gone-cell"]}]})
    sent = sent_user_text(fakes["openai"])
    assert f'<attachment path="train.ipynb" type="notebook" cells="{ids[2]},gone-cell">' in sent
    assert "3 cells; the 1 selected cell(s) follow" in sent and "answer = 6 * 7" in sent
    assert "print('step', i)" not in sent and "Findings" not in sent
    assert "[cells no longer in the notebook: gone-cell]" in sent
    [ref] = events[0]["context"]["attachments"]
    assert ref["cell_ids"] == [ids[2], "gone-cell"] and ref["note"] == "[cells no longer in the notebook: gone-cell]"


async def test_refusals_are_notes_and_the_turn_goes_on(make_agent: Any, fakes: Any, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("outside the workspace")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (root / "image.bin").write_bytes(b"\x89PNG\x00\x00binary")
    (root / "big.log").write_text("x" * (MAX_ATTACHMENT_BYTES + 5000))
    (root / "data").mkdir()
    agent = make_agent("openai")
    agent.workspace_dir = root
    paths = ["../secret.txt", "escape.txt", "image.bin", "big.log", "missing.py", "data", "broken.ipynb"]
    (root / "broken.ipynb").write_text("{not json")
    with caplog.at_level(logging.WARNING):
        events = await run_turn(agent, {"attachments": [{"type": "file", "path": p} for p in paths]})
    assert events[-1]["reason"] == "completed"
    refs = {r["path"]: r for r in events[0]["context"]["attachments"]}
    expected_notes = {
        "../secret.txt": "is outside the workspace root",
        "escape.txt": "leads out through a symlink",
        "image.bin": "is a binary file",
        "missing.py": "does not exist",
        "data": "is a directory",
        "broken.ipynb": "could not be read as a notebook",
    }
    sent = sent_user_text(fakes["openai"])
    for path, why in expected_notes.items():
        assert refs[path]["refused"] is True and refs[path]["size"] == 0, path
        assert why in refs[path]["note"] and refs[path]["note"].startswith("[not attached:"), refs[path]
        assert why in sent, why
    assert "outside the workspace" not in sent.replace("outside the workspace root", "")
    big = refs["big.log"]
    assert big["size"] == MAX_ATTACHMENT_BYTES and "refused" not in big
    assert big["note"] == f"[truncated: {MAX_ATTACHMENT_BYTES} of {MAX_ATTACHMENT_BYTES + 5000} bytes]"
    assert big["note"] in sent
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "escape.txt" in warned and "big.log" in warned


async def test_all_attachments_of_a_message_are_capped_together(make_agent: Any, fakes: Any,
                                                                tmp_path: Path) -> None:
    chunk = 90_000
    for i in range(5):
        (tmp_path / f"part{i}.txt").write_text(str(i) * chunk)
    agent = make_agent("openai")
    events = await run_turn(agent, {"attachments": [{"type": "file", "path": f"part{i}.txt"} for i in range(5)]})
    refs = events[0]["context"]["attachments"]
    assert [r["size"] for r in refs] == [chunk, chunk, chunk, 30_000, 0]
    assert "capped at" in refs[3]["note"] and refs[3]["note"].startswith("[truncated: 30000 of 90000 bytes")
    assert refs[4]["refused"] and "already reach" in refs[4]["note"]
    assert len(sent_user_text(fakes["openai"])) > 300_000


async def test_keys_in_an_attached_file_are_redacted(make_agent: Any, fakes: Any, tmp_path: Path) -> None:
    (tmp_path / "settings.py").write_text("OPENAI_API_KEY = 'sk-fake-test-key'\n")
    agent = make_agent("openai")
    await run_turn(agent, {"attachments": [{"type": "file", "path": "settings.py"}]})
    sent = sent_user_text(fakes["openai"])
    assert "sk-fake-test-key" not in sent and "[redacted API key]" in sent


async def test_bad_references_from_the_python_api_become_notes(make_agent: Any, tmp_path: Path) -> None:
    agent = make_agent("openai")
    context, attached = await resolve_attachments(
        {"notebook": "x.ipynb", "attachments": [{"type": "folder", "path": "src"}, 42]}, tmp_path, agent.host)
    assert context is not None and context["notebook"] == "x.ipynb"
    assert [r["refused"] for r in context["attachments"]] == [True, True]
    assert "'type' must be one of" in attached[0]["content"]


# --- through the server: the socket, the store, a reopened session ---------------------------------------


async def test_attachments_over_the_socket_and_a_reopened_session_replays_the_chips(
        jp_serverapp: Any, jp_fetch: Any, jp_ws_fetch: Any, jp_configurable_serverapp: Any, fakes: Any,
        jp_root_dir: Path) -> None:
    (jp_root_dir / "plan.md").write_text("1. load the parquet files\n")
    ids = write_notebook(jp_root_dir / "train.ipynb")
    fakes["openai"].script(ScriptedTurn(text="Noted."))
    session = await create_session(jp_fetch, "attached")
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    attachments = [{"type": "file", "path": "plan.md"},
                   {"type": "notebook", "path": "train.ipynb", "cell_ids": [ids[1]]}]
    ws.write_message(json.dumps({"type": "prompt", "text": "Follow the plan", "context": {"attachments": attachments}}))
    events = await read_until_done(ws)
    ws.close()
    sent = sent_user_text(fakes["openai"])
    assert "1. load the parquet files" in sent and "## Findings: the loss plateaus" in sent
    refs = events[0]["context"]["attachments"]
    assert [(r["type"], r["path"], r.get("cell_ids")) for r in refs] == [
        ("file", "plan.md", None), ("notebook", "train.ipynb", [ids[1]])]
    assert refs[0]["size"] == len("1. load the parquet files\n") and refs[1]["size"] > 0

    app2 = await restart(jp_serverapp, jp_configurable_serverapp)
    manager = app2.web_app.settings["ide_agent_sessions"]
    [reopened] = manager.list()
    replayed = reopened.events_after(0)
    assert replayed[0]["type"] == "user_message" and replayed[0]["context"]["attachments"] == refs
    assert "parquet" not in json.dumps(replayed), "the stored events keep references only"
    assert "1. load the parquet files" in reopened.agent.history[0].rendered(), "the memory keeps the content"
    await manager.shutdown()


@pytest.mark.parametrize("attachments", [
    [{"type": "directory", "path": "src"}],
    [{"type": "file", "path": "a.py", "size": 10}],
    {"type": "file", "path": "a.py"},
    [{"type": "file", "path": f"f{i}"} for i in range(MAX_ATTACHMENTS + 1)],
])
async def test_the_socket_refuses_bad_attachments(jp_fetch: Any, jp_ws_fetch: Any, attachments: Any) -> None:
    session = await create_session(jp_fetch)
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    ws.write_message(json.dumps({"type": "prompt", "text": "hi", "context": {"attachments": attachments}}))
    reply = json.loads(await ws.read_message())
    assert reply["type"] == "error" and reply["kind"] == "bad_request" and reply["seq"] is None
    assert "'context.attachments'" in reply["message"]
    ws.close()
    assert json.loads((await jp_fetch("ide-agent", "sessions", session["id"], "events")).body)["events"] == []


async def test_an_open_notebook_is_attached_as_the_user_sees_it(
        with_rooms: None, jp_serverapp: Any, open_in_browser: Any, jp_root_dir: Path) -> None:
    ids = write_notebook(jp_root_dir / "live.ipynb")
    host = jp_serverapp.web_app.settings["ide_agent_sessions"].host
    async with open_in_browser("live.ipynb") as doc:
        set_text(doc.ycells[2]["source"], "answer = 'typed, not saved'")
        await reached_room(host, "live.ipynb", lambda nb: "not saved" in nb["cells"][2]["source"])
        assert "not saved" not in (jp_root_dir / "live.ipynb").read_text()
        _, [attached] = await resolve_attachments(
            {"attachments": [{"type": "notebook", "path": "live.ipynb", "cell_ids": [ids[2]]}]}, jp_root_dir, host)
    assert "answer = 'typed, not saved'" in attached["content"]


# --- GET /ide-agent/files: the @ completion ------------------------------------------------------------------


def make_tree(root: Path) -> None:
    files = ["train.py", "src/trainer_utils.py", "notebooks/Training.ipynb", "docs/retrain_notes.md",
             "train_data/readme.md", "other/t_r_a_i_n.txt", "unrelated.csv",
             ".git/train_hidden.py", "node_modules/pkg/train.js", ".hidden/train.py", ".train_secret",
             "src/__pycache__/train.cpython-312.pyc", ".venv/lib/train.py"]
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"# {name}\n")


async def files(jp_fetch: Any, **params: str) -> dict[str, Any]:
    return json.loads((await jp_fetch("ide-agent", "files", params=params)).body)


async def test_files_are_ranked_name_prefix_then_substring_then_fuzzy(jp_fetch: Any, jp_root_dir: Path) -> None:
    make_tree(jp_root_dir)
    found = await files(jp_fetch, q="train")
    assert [f["path"] for f in found["files"]] == [
        "train.py", "src/trainer_utils.py", "notebooks/Training.ipynb",  # the name starts with it
        "docs/retrain_notes.md",  # the name contains it
        "train_data/readme.md",  # the path contains it
        "other/t_r_a_i_n.txt",  # its letters in order
    ], "hidden entries, .git, node_modules, caches and virtualenvs are skipped"
    by_path = {f["path"]: f for f in found["files"]}
    assert by_path["notebooks/Training.ipynb"]["type"] == "notebook" and by_path["train.py"]["type"] == "file"
    assert by_path["train.py"]["size"] == len("# train.py\n") and by_path["train.py"]["mtime"] > 0
    assert found["truncated"] is False
    assert [f["path"] for f in (await files(jp_fetch, q="src/tr"))["files"]] == ["src/trainer_utils.py"]


async def test_an_empty_query_lists_recent_files_and_limit_applies(jp_fetch: Any, jp_root_dir: Path) -> None:
    make_tree(jp_root_dir)
    os.utime(jp_root_dir / "unrelated.csv", (2_000_000_000, 2_000_000_000))
    found = await files(jp_fetch, q="", limit="2")
    assert len(found["files"]) == 2 and found["files"][0]["path"] == "unrelated.csv"


async def test_the_files_route_checks_its_arguments_and_needs_a_token(
        jp_fetch: Any, jp_base_url: str, http_server_port: Any) -> None:
    for params in ({"limit": "0"}, {"limit": "lots"}, {"limit": "1000"}, {"q": "x" * 501}):
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch("ide-agent", "files", params=params)
        assert err.value.code == 400, params
    with pytest.raises(HTTPClientError) as err:
        await AsyncHTTPClient().fetch(f"http://127.0.0.1:{http_server_port[-1]}{jp_base_url}ide-agent/files?q=a")
    assert err.value.code == 403


async def test_the_walk_is_capped(tmp_path: Path) -> None:
    for i in range(10):
        (tmp_path / f"f{i}.txt").write_text("x")
    index = FileIndex(tmp_path, max_files=4)
    found = await index.search("f", limit=50)
    assert found["truncated"] is True and len(found["files"]) == 4
