"""File tools on real files in a temporary workspace, driven through ToolRegistry.run as the agent loop does."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from jupyterlab_ide_agent.tools import files
from jupyterlab_ide_agent.tools.base import ToolContext, ToolError, ToolRegistry, ToolResult
from jupyterlab_ide_agent.tools.files import file_tools, glob_regex, parse_rg_json
from jupyterlab_ide_agent.tools.paths import display_path, resolve_in_root

OUTSIDE_MSG = "outside the workspace root"


@pytest.fixture(autouse=True)
def _pure_python_grep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests exercise the Python walker whether or not this machine has rg; the parity test runs both."""
    monkeypatch.setattr(files, "_ripgrep", lambda: None)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    (d / "sub").mkdir(parents=True)
    (d / "secret.txt").write_text("secret token\n")
    (d / "sub" / "deep.py").write_text("secret = 1\n")
    return d


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    r = tmp_path / "ws"
    (r / "src" / "pkg").mkdir(parents=True)
    (r / "src" / "pkg" / "mod.py").write_text("import os\n\ndef foo():\n    return 'Foo'\n")
    (r / "README.md").write_text("# Project\nfoo bar\n")
    os.symlink(outside / "secret.txt", r / "leak.txt")  # file link leading out
    os.symlink(outside, r / "leakdir")  # directory link leading out
    return r


@pytest.fixture
def registry() -> ToolRegistry:
    return ToolRegistry(file_tools())


@pytest.fixture
def call(registry: ToolRegistry, root: Path):
    ctx = ToolContext(root=root, session_id="t")

    async def _call(name: str, **args: Any) -> ToolResult:
        return await registry.run(name, args, ctx)

    return _call


# ---------------------------------------------------------------- paths


def test_resolve_relative_and_absolute_inside(root: Path) -> None:
    real = Path(os.path.realpath(root))
    assert resolve_in_root(root, "src/pkg/mod.py") == real / "src/pkg/mod.py"
    assert resolve_in_root(root, str(root / "README.md")) == real / "README.md"
    assert resolve_in_root(root, "src/../README.md") == real / "README.md"
    assert resolve_in_root(root, ".") == real
    assert resolve_in_root(root, "new/dir/file.txt") == real / "new/dir/file.txt"  # need not exist


@pytest.mark.parametrize("bad", ["../x", "src/../../x", "../ws2/x", "/etc/passwd"])
def test_resolve_refuses_escapes(root: Path, bad: str) -> None:
    with pytest.raises(ToolError, match=f"path '{bad}' is outside the workspace root"):
        resolve_in_root(root, bad)


def test_resolve_exact_message(root: Path) -> None:
    with pytest.raises(ToolError) as err:
        resolve_in_root(root, "../x")
    assert str(err.value) == "path '../x' is outside the workspace root"


@pytest.mark.parametrize("through", ["leak.txt", "leakdir", "leakdir/secret.txt", "leakdir/new.txt", "leakdir/a/b/new"])
def test_resolve_refuses_symlinks_out(root: Path, through: str) -> None:
    with pytest.raises(ToolError, match="leads out through a symlink"):
        resolve_in_root(root, through)


def test_resolve_refuses_dotdot_after_symlinked_dir(root: Path, tmp_path: Path) -> None:
    (tmp_path / "outside" / "sub" / "x").mkdir()
    os.symlink(tmp_path / "outside" / "sub" / "x", root / "lx")
    # lexically 'lx/../README.md' is inside, but the kernel resolves lx first: outside/sub/README.md
    with pytest.raises(ToolError, match=OUTSIDE_MSG):
        resolve_in_root(root, "lx/../README.md")


def test_resolve_refuses_dangling_link_out_and_null(root: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path / "nowhere" / "f.txt", root / "dangling")
    with pytest.raises(ToolError, match=OUTSIDE_MSG):
        resolve_in_root(root, "dangling")
    with pytest.raises(ToolError, match="null byte"):
        resolve_in_root(root, "a\x00b")
    with pytest.raises(ToolError, match="empty"):
        resolve_in_root(root, "  ")


def test_resolve_allows_symlink_inside(root: Path) -> None:
    os.symlink(root / "src", root / "alias")
    assert resolve_in_root(root, "alias/pkg/mod.py") == Path(os.path.realpath(root)) / "src/pkg/mod.py"


def test_root_given_through_a_symlink(root: Path, tmp_path: Path) -> None:
    link_root = tmp_path / "ws-link"
    os.symlink(root, link_root)
    assert resolve_in_root(link_root, "README.md") == Path(os.path.realpath(root)) / "README.md"
    assert resolve_in_root(link_root, str(link_root / "README.md")).name == "README.md"
    assert resolve_in_root(link_root, str(root / "README.md")).name == "README.md"
    assert display_path(link_root, resolve_in_root(link_root, "src/pkg")) == "src/pkg"


def test_must_exist_suggests(root: Path) -> None:
    with pytest.raises(ToolError, match=r"does not exist; did you mean 'src/pkg/mod.py'"):
        resolve_in_root(root, "src/pkg/mods.py", must_exist=True)


def test_display_path(root: Path) -> None:
    assert display_path(root, root) == "."
    assert display_path(root, root / "src" / "pkg") == "src/pkg"


# ---------------------------------------------------------------- escapes, every tool


def _escape_cases(name: str) -> list[dict[str, Any]]:
    per_tool = {
        "Read": lambda p: {"path": p},
        "Write": lambda p: {"path": p, "content": "pwned"},
        "Edit": lambda p: {"path": p, "old_string": "secret", "new_string": "pwned"},
        "ListDir": lambda p: {"path": p},
        "Glob": lambda p: {"pattern": "**/*", "path": p},
        "Grep": lambda p: {"pattern": "secret", "path": p},
    }
    escapes = ("../outside/secret.txt", "OUTSIDE/secret.txt", "leak.txt", "leakdir", "leakdir/secret.txt")
    return [per_tool[name](p) for p in escapes]


@pytest.mark.parametrize("name", ["Read", "Write", "Edit", "ListDir", "Glob", "Grep"])
async def test_every_tool_refuses_escapes(call, name: str, outside: Path, root: Path) -> None:
    for args in _escape_cases(name):
        args = {k: v.replace("OUTSIDE", str(outside)) for k, v in args.items()}
        result = await call(name, **args)
        assert result.is_error, (name, args, result.output)
        assert OUTSIDE_MSG in result.output
    assert (outside / "secret.txt").read_text() == "secret token\n"
    # a three-entry tmp dir, listed inline so the assertion stays readable
    assert sorted(p.name for p in outside.rglob("*")) == ["deep.py", "secret.txt", "sub"]  # noqa: ASYNC240


async def test_walkers_do_not_follow_links_out(call) -> None:
    glob = await call("Glob", pattern="**/*")
    assert "secret" not in glob.output and "deep.py" not in glob.output
    grep = await call("Grep", pattern="secret")
    assert grep.output.startswith("No matches")


# ---------------------------------------------------------------- Read


async def test_read_numbers_lines_like_cat_n(call) -> None:
    r = await call("Read", path="src/pkg/mod.py")
    assert not r.is_error
    assert r.output == "     1\timport os\n     2\t\n     3\tdef foo():\n     4\t    return 'Foo'"
    assert r.data == {"path": "src/pkg/mod.py", "total_lines": 4, "lines": [1, 4]}


async def test_read_offset_limit_and_paging_note(call, root: Path) -> None:
    (root / "long.txt").write_text("".join(f"line {i}\n" for i in range(1, 101)))
    r = await call("Read", path="long.txt", offset=10, limit=3)
    assert r.output.splitlines() == [
        "    10\tline 10",
        "    11\tline 11",
        "    12\tline 12",
        "[showing lines 10-12 of 100; use offset=13 to read more]",
    ]
    r = await call("Read", path="long.txt", offset=99)
    assert r.output.splitlines()[-1] == "[showing lines 99-100 of 100]"
    r = await call("Read", path="long.txt", offset=101)
    assert r.is_error and "past the end" in r.output and "100 lines" in r.output


async def test_read_truncates_long_lines_and_strips_crlf(call, root: Path) -> None:
    (root / "wide.txt").write_bytes(b"x" * 2500 + b"\r\nshort\r\n")
    r = await call("Read", path="wide.txt")
    first, second, note = r.output.splitlines()
    assert first == "     1\t" + "x" * 2000 + " ... [line truncated: 2500 characters]"
    assert second == "     2\tshort"
    assert "1 long line(s) truncated" in note


async def test_read_errors(call, root: Path) -> None:
    (root / "blob.bin").write_bytes(b"\x89PNG\r\n\x00\x00binary")
    (root / "empty.txt").write_text("")
    r = await call("Read", path="blob.bin")
    assert r.is_error and "binary" in r.output
    r = await call("Read", path="src")
    assert r.is_error and "is a directory" in r.output and "ListDir" in r.output
    r = await call("Read", path="nope.txt")
    assert r.is_error and "does not exist" in r.output
    r = await call("Read", path="empty.txt")
    assert not r.is_error and "empty" in r.output
    os.mkfifo(root / "pipe")  # opening a pipe would block forever
    r = await call("Read", path="pipe")
    assert r.is_error and "not a regular file" in r.output
    r = await call("Grep", pattern="x", path="pipe")
    assert r.is_error and "not a regular file" in r.output


# ---------------------------------------------------------------- Write


async def test_write_creates_with_parents_then_overwrites(call, root: Path) -> None:
    r = await call("Write", path="new/deep/café.txt", content="héllo\n")
    assert not r.is_error
    assert r.output == "Created new/deep/café.txt (7 bytes)"
    assert r.data == {"path": "new/deep/café.txt", "action": "created", "bytes": 7}
    assert (root / "new/deep/café.txt").read_text() == "héllo\n"
    r = await call("Write", path="new/deep/café.txt", content="x")
    assert r.output == "Overwrote new/deep/café.txt (1 bytes, was 7)"
    assert r.data["action"] == "modified"
    assert [p.name for p in (root / "new/deep").iterdir()] == ["café.txt"]  # no temp file left behind


async def test_write_keeps_mode_and_link(call, root: Path) -> None:
    script = root / "run.sh"
    script.write_text("echo 1\n")
    script.chmod(0o755)
    os.symlink("run.sh", root / "run-link.sh")
    r = await call("Write", path="run-link.sh", content="echo 2\n")
    assert r.data == {"path": "run.sh", "action": "modified", "bytes": 7}  # written through to the real file
    assert (root / "run-link.sh").is_symlink() and script.read_text() == "echo 2\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


async def test_write_new_file_gets_normal_mode(call, root: Path) -> None:
    await call("Write", path="plain.txt", content="a")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((root / "plain.txt").stat().st_mode) == 0o666 & ~umask


async def test_write_errors(call, root: Path) -> None:
    r = await call("Write", path="src", content="x")
    assert r.is_error and "is a directory" in r.output
    r = await call("Write", path="README.md/child.txt", content="x")  # parent is a file
    assert r.is_error and r.output.startswith("Write failed:")


# ---------------------------------------------------------------- Edit


async def test_edit_replaces_once_and_shows_snippet(call, root: Path) -> None:
    r = await call("Edit", path="src/pkg/mod.py", old_string="return 'Foo'", new_string="return 'Bar'")
    assert not r.is_error
    assert r.data == {"path": "src/pkg/mod.py", "action": "modified", "replacements": 1}
    assert (root / "src/pkg/mod.py").read_text() == "import os\n\ndef foo():\n    return 'Bar'\n"
    assert r.output.startswith("Edited src/pkg/mod.py: replaced 1 occurrence\n")
    assert "     4\t    return 'Bar'" in r.output  # the changed region, numbered like Read


async def test_edit_counts_ambiguity_and_replace_all(call, root: Path) -> None:
    (root / "dup.txt").write_text("a x a x a\n")
    r = await call("Edit", path="dup.txt", old_string="a", new_string="b")
    assert r.is_error and "occurs 3 times" in r.output and "replace_all" in r.output
    assert (root / "dup.txt").read_text() == "a x a x a\n"
    r = await call("Edit", path="dup.txt", old_string="a", new_string="b", replace_all=True)
    assert not r.is_error and r.data["replacements"] == 3 and "3 occurrences" in r.output
    assert (root / "dup.txt").read_text() == "b x b x b\n"


async def test_edit_errors(call, root: Path) -> None:
    r = await call("Edit", path="README.md", old_string="absent", new_string="x")
    assert r.is_error and "not found" in r.output
    r = await call("Edit", path="README.md", old_string="foo", new_string="foo")
    assert r.is_error and "identical" in r.output
    r = await call("Edit", path="README.md", old_string="", new_string="x")
    assert r.is_error and "Write" in r.output
    r = await call("Edit", path="missing.md", old_string="a", new_string="b")
    assert r.is_error and "does not exist" in r.output
    (root / "b.bin").write_bytes(b"ab\x00cd")
    r = await call("Edit", path="b.bin", old_string="ab", new_string="x")
    assert r.is_error and "binary" in r.output and (root / "b.bin").read_bytes() == b"ab\x00cd"


async def test_edit_adapts_to_crlf_and_keeps_foreign_bytes(call, root: Path) -> None:
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\nlatin \xe9\r\n")
    r = await call("Edit", path="win.txt", old_string="one\ntwo", new_string="1\n2")
    assert not r.is_error
    assert (root / "win.txt").read_bytes() == b"1\r\n2\r\nlatin \xe9\r\n"


# ---------------------------------------------------------------- ListDir


async def test_listdir_dirs_first_hidden_and_links(call, root: Path) -> None:
    (root / ".env").write_text("K=V\n")
    (root / "big.bin").write_bytes(b"\0" * 2048)
    os.symlink(root / "README.md", root / "readme-link")
    r = await call("ListDir")
    assert r.output.splitlines() == [
        "./ (7 entries)",
        "dir          -  src/",  # directories first, then case-insensitive name order
        "file       4 B  .env  [hidden]",
        "file    2.0 KB  big.bin",
        "link         -  leak.txt -> (outside the workspace)",
        "link         -  leakdir -> (outside the workspace)",
        "link         -  readme-link -> README.md",
        "file      18 B  README.md",
    ]
    assert r.data == {"path": ".", "entries": 7}


async def test_listdir_cap_and_errors(call, root: Path) -> None:
    many = root / "many"
    many.mkdir()
    for i in range(510):
        (many / f"f{i:03}.txt").write_text("")
    r = await call("ListDir", path="many")
    assert len(r.output.splitlines()) == 1 + 500 + 1
    assert r.output.splitlines()[-1].startswith("[showing 500 of 510 entries")
    (root / "void").mkdir()
    assert "empty directory" in (await call("ListDir", path="void")).output
    r = await call("ListDir", path="README.md")
    assert r.is_error and "use Read" in r.output


# ---------------------------------------------------------------- Glob


async def test_glob_recursive_newest_first_and_skips(call, root: Path) -> None:
    for skipped in (".git", "node_modules", "__pycache__", ".ipynb_checkpoints", ".venv"):
        (root / skipped).mkdir()
        (root / skipped / "x.py").write_text("")
    (root / "top.py").write_text("")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "h.py").write_text("")
    now = time.time()
    os.utime(root / "top.py", (now - 100, now - 100))
    os.utime(root / "src/pkg/mod.py", (now - 10, now - 10))
    os.utime(root / ".hidden/h.py", (now - 50, now - 50))
    r = await call("Glob", pattern="**/*.py")
    assert r.output.splitlines() == ["src/pkg/mod.py", ".hidden/h.py", "top.py"]
    assert (await call("Glob", pattern="*.py")).output == "top.py"  # '*' stays in one directory
    assert (await call("Glob", pattern="pkg/*.py", path="src")).output == "src/pkg/mod.py"
    assert (await call("Glob", pattern="**/*.{md,py}", path="src")).output == "src/pkg/mod.py"
    assert (await call("Glob", pattern="src/**/mod.py")).output == "src/pkg/mod.py"


async def test_glob_cap_and_errors(call, root: Path) -> None:
    (root / "gen").mkdir()
    for i in range(205):
        (root / "gen" / f"{i}.txt").write_text("")
    r = await call("Glob", pattern="gen/*.txt")
    assert len(r.output.splitlines()) == 201 and "200 newest of 205" in r.output and r.data == {"count": 205}
    for bad in ("../*", "/etc/*", "a/../../*"):
        r = await call("Glob", pattern=bad)
        assert r.is_error and "'..'" in r.output
    assert (await call("Glob", pattern="*.nothing")).output.startswith("No files match")
    assert (await call("Glob", pattern="nodir/*.py")).output.startswith("No files match")
    assert (await call("Glob", pattern="leakdir/**/*.py")).is_error  # literal prefix through a link out


def test_glob_regex_semantics() -> None:
    assert glob_regex("**/*.py").match("a.py") and glob_regex("**/*.py").match("a/b/c.py")
    assert not glob_regex("*.py").match("a/b.py")
    assert glob_regex("*.{py,ts}").match("x.ts") and not glob_regex("*.{py,ts}").match("x.js")
    assert glob_regex("f[!0-9].txt").match("fa.txt") and not glob_regex("f[!0-9].txt").match("f1.txt")
    assert glob_regex("a?c").match("abc") and not glob_regex("a?c").match("a/c")
    t0 = time.perf_counter()
    glob_regex("{a,b}" * 30)  # brace expansion is bounded, not 2**30 alternatives
    assert time.perf_counter() - t0 < 1


# ---------------------------------------------------------------- Grep


@pytest.fixture
def tree(root: Path) -> Path:
    (root / "src" / "pkg" / "util.py").write_text("x = 1\nfoo = 2\ny = 3\nz = 4\nw = 5\nFOO = 6\n")
    (root / "notes.txt").write_text("nothing here\n")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "lib.js").write_text("foo\n")
    (root / "img.png").write_bytes(b"\x89PNG\x00\x00foo")
    return root


async def test_grep_files_with_matches_default(call, tree: Path) -> None:
    r = await call("Grep", pattern="foo")
    assert r.output.splitlines() == ["README.md", "src/pkg/mod.py", "src/pkg/util.py"]
    assert r.data == {"files": 3, "matches": 3, "truncated": False}


async def test_grep_content_context_and_count(call, tree: Path) -> None:
    r = await call("Grep", pattern=r"^foo|^FOO", path="src", output_mode="content")
    assert r.output.splitlines() == ["src/pkg/util.py:2:foo = 2", "src/pkg/util.py:6:FOO = 6"]
    r = await call("Grep", pattern="^foo", path="src/pkg/util.py", output_mode="content", context=1,
                   case_insensitive=True)
    assert r.output.splitlines() == [
        "src/pkg/util.py-1-x = 1", "src/pkg/util.py:2:foo = 2", "src/pkg/util.py-3-y = 3",
        "--",
        "src/pkg/util.py-5-w = 5", "src/pkg/util.py:6:FOO = 6",
    ]
    r = await call("Grep", pattern="foo", output_mode="count", case_insensitive=True)
    assert r.output.splitlines() == ["README.md:1", "src/pkg/mod.py:2", "src/pkg/util.py:2"]


async def test_grep_include_filter(call, tree: Path) -> None:
    r = await call("Grep", pattern="foo", include="*.py")
    assert r.output.splitlines() == ["src/pkg/mod.py", "src/pkg/util.py"]
    assert (await call("Grep", pattern="foo", include="src/**/u*.py")).output == "src/pkg/util.py"
    assert (await call("Grep", pattern="foo", include="*.{md,txt}")).output == "README.md"


async def test_grep_skips_big_files(call, tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "GREP_MAX_BYTES", 30)
    (tree / "big.txt").write_text("foo " * 20)
    assert "big.txt" not in (await call("Grep", pattern="foo")).output
    assert "README.md" in (await call("Grep", pattern="foo")).output


async def test_grep_caps_and_clips(call, root: Path) -> None:
    (root / "many.txt").write_text("hit\n" * 600 + "hit" + "y" * 600 + "\n")
    r = await call("Grep", pattern="hit", path="many.txt", output_mode="content")
    lines = r.output.splitlines()
    assert len(lines) == 501 and lines[-1].startswith("[output capped at 500 lines") and r.data["truncated"]
    r = await call("Grep", pattern="y{600}", path="many.txt", output_mode="content")
    assert r.output.endswith("y" * (500 - 3) + " ... [+103 chars]")
    (root / "d").mkdir()
    for i in range(210):
        (root / "d" / f"{i:03}.txt").write_text("hit\n")
    r = await call("Grep", pattern="hit", path="d")
    assert len(r.output.splitlines()) == 201 and "showing 200 of 210 files" in r.output


async def test_grep_errors(call, tree: Path) -> None:
    r = await call("Grep", pattern="(unclosed")
    assert r.is_error and "invalid regular expression" in r.output
    r = await call("Grep", pattern="zzz-none")
    assert not r.is_error and r.output == "No matches for /zzz-none/ in ."
    r = await call("Grep", pattern="foo", path="nowhere")
    assert r.is_error and "does not exist" in r.output


async def test_grep_walks_a_big_tree_quickly(call, root: Path) -> None:
    for d in range(40):
        sub = root / "big" / f"d{d}"
        sub.mkdir(parents=True)
        for f in range(50):
            (sub / f"f{f}.py").write_text("def f():\n    return 1\n" * 20)
    (root / "big" / "d7" / "f3.py").write_text("needle\n")
    t0 = time.perf_counter()
    r = await call("Grep", pattern="needle", path="big", output_mode="content")
    assert r.output == "big/d7/f3.py:1:needle"
    assert time.perf_counter() - t0 < 5


def test_parse_rg_json_matches_python_format(tmp_path: Path) -> None:
    """The rg path goes through the same formatter: events for one match and its context give rg-like rows."""
    import base64
    import json

    events = [
        {"type": "begin", "data": {"path": {"text": "./b.py"}}},
        {"type": "context", "data": {"path": {"text": "./b.py"}, "lines": {"text": "a\n"}, "line_number": 1}},
        {"type": "match", "data": {"path": {"text": "./b.py"}, "lines": {"text": "foo\r\n"}, "line_number": 2}},
        {"type": "match", "data": {"path": {"text": "./a/z.py"},
                                   "lines": {"bytes": base64.b64encode(b"foo \xff\n").decode()}, "line_number": 9}},
        {"type": "summary", "data": {}},
    ]
    hits = parse_rg_json("\n".join(json.dumps(e) for e in events), tmp_path / "src", tmp_path)
    assert [(h.path, h.count) for h in hits] == [("src/a/z.py", 1), ("src/b.py", 1)]
    result = files._format(hits, "content", 1, "foo", "src")
    assert result.output.splitlines() == ["src/a/z.py:9:foo \ufffd", "--", "src/b.py-1-a", "src/b.py:2:foo"]


def _rg() -> str | None:
    return os.environ.get("IDE_AGENT_RG") or shutil.which("rg")


@pytest.mark.skipif(not _rg(), reason="ripgrep not installed (set IDE_AGENT_RG to a binary to run this)")
@pytest.mark.parametrize(
    "args",
    [
        {"pattern": "foo"},
        {"pattern": "foo", "output_mode": "count", "case_insensitive": True},
        {"pattern": "^foo|FOO", "output_mode": "content", "context": 1},
        {"pattern": "foo", "include": "*.py", "output_mode": "content"},
        {"pattern": "foo", "include": "src/**/u*.py"},
        {"pattern": "(?<=x) = 1", "output_mode": "content"},  # look-behind: rg refuses it, the walker answers
    ],
)
async def test_ripgrep_and_walker_agree(call, tree: Path, monkeypatch: pytest.MonkeyPatch, args: dict) -> None:
    walker = await call("Grep", **args)
    answered: list[bool] = []
    search_rg = files.Grep._search_rg

    def spy(*a: Any) -> Any:
        hits = search_rg(*a)
        answered.append(hits is not None)
        return hits

    monkeypatch.setattr(files, "_ripgrep", _rg)
    monkeypatch.setattr(files.Grep, "_search_rg", staticmethod(spy))
    ripgrep = await call("Grep", **args)
    assert ripgrep.output == walker.output and not walker.is_error
    assert answered == ["(?<=" not in args["pattern"]]  # rg answered itself, except where it had to fall back
    assert "node_modules" not in walker.output and "img.png" not in walker.output


# ---------------------------------------------------------------- ElapsedTime and the registry


async def test_elapsed_time(registry: ToolRegistry, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files.time, "time", lambda: 1_000_000.0 + 3725.5)
    ctx = ToolContext(root=root, session_id="t", started_at=1_000_000.0)
    r = await registry.run("ElapsedTime", {}, ctx)
    assert r.output == "Session running for 1h 02m 05s (3725.5 seconds), since 1970-01-12 13:46:40 UTC."
    assert r.data == {"seconds": 3725.5}
    ctx.started_at = 1_000_000.0 + 3725.5 - 42
    assert (await registry.run("ElapsedTime", {}, ctx)).output.startswith("Session running for 42s (42.0 seconds)")


def test_schemas_are_strict(registry: ToolRegistry) -> None:
    assert registry.names() == ["Read", "Write", "Edit", "ListDir", "Glob", "Grep", "ElapsedTime"]
    for spec in registry.specs():
        assert spec.parameters["additionalProperties"] is False and spec.description
        assert set(spec.parameters["required"]) <= set(spec.parameters["properties"])


@pytest.mark.parametrize(
    ("name", "args", "expect"),
    [
        ("Read", {}, "'path' is a required property"),
        ("Read", {"path": "README.md", "bogus": 1}, "Additional properties"),
        ("Read", {"path": "README.md", "offset": 0}, "offset"),
        ("Write", {"path": "a.txt", "content": 5}, "content"),
        ("Edit", {"path": "README.md", "old_string": "a"}, "'new_string' is a required property"),
        ("Grep", {"pattern": "x", "output_mode": "lines"}, "output_mode"),
        ("Glob", {"pattern": ["*.py"]}, "pattern"),
        ("ElapsedTime", {"x": 1}, "Additional properties"),
    ],
)
async def test_invalid_args_become_error_results(call, name: str, args: dict, expect: str) -> None:
    r = await call(name, **args)
    assert r.is_error and r.output.startswith(f"Invalid arguments for {name}") and expect in r.output


async def test_registry_non_dict_and_unknown(registry: ToolRegistry, root: Path) -> None:
    ctx = ToolContext(root=root, session_id="t")
    assert (await registry.run("Read", "README.md", ctx)).is_error
    r = await registry.run("Delete", {}, ctx)
    assert r.is_error and "Unknown tool" in r.output
