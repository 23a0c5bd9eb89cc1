"""Images in tool results reach the model: each adapter, through its real SDK, puts them where its API reads
them, attached to the right call; and the notebook tool attaches the images of the cells it runs when asked.

What each fake records is the request body the SDK really sent (JSON for the HTTP APIs, the protobuf as a dict
for xAI's gRPC), so these tests check the wire, not the adapters' intermediate dicts.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import pytest_asyncio

from jupyterlab_ide_agent.agent.messages import AssistantMessage, ToolCall, ToolResultMessage, UserMessage
from jupyterlab_ide_agent.host import LocalHost
from jupyterlab_ide_agent.providers.anthropic_messages import AnthropicProvider
from jupyterlab_ide_agent.providers.base import Finished, Provider, ProviderRequest, ToolSpec
from jupyterlab_ide_agent.providers.gemini import GeminiProvider
from jupyterlab_ide_agent.providers.openai_responses import OpenAIResponsesProvider
from jupyterlab_ide_agent.providers.xai import XAIProvider
from jupyterlab_ide_agent.tools.base import Tool, ToolContext, ToolImage, ToolRegistry, ToolResult
from jupyterlab_ide_agent.tools.notebook import NotebookTool, notebook_tools
from jupyterlab_ide_agent.tools.outputs import ImageAttachments
from tests.fakes.base import ScriptedTool, ScriptedTurn

KINDS = ["openai", "anthropic", "gemini", "xai"]
#: as in conftest.TEST_MODELS (importing conftest as a module would load its fixtures a second time)
MODELS = {"openai": "gpt-5", "anthropic": "claude-opus-4-1", "gemini": "gemini-2.5-pro", "xai": "grok-4-fast-reasoning"}
ADAPTERS: dict[str, type[Provider]] = {"openai": OpenAIResponsesProvider, "anthropic": AnthropicProvider,
                                       "gemini": GeminiProvider, "xai": XAIProvider}
TOOL = "JupyterNotebook"
SPEC = ToolSpec(TOOL, "Run notebook cells.", {"type": "object", "properties": {}})


def png_bytes(width: int, height: int, grey: int = 0x80) -> bytes:
    """A real (tiny, grey) PNG."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes([grey]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = png_bytes(3, 2)
PNG_B64 = base64.b64encode(PNG).decode()
DATA_URL = f"data:image/png;base64,{PNG_B64}"


def decoded(data: str) -> bytes:
    """Bytes of base64 in either alphabet (google-genai sends bytes URL-safe encoded)."""
    return base64.urlsafe_b64decode(data.replace("+", "-").replace("/", "_") + "=" * (-len(data) % 4))


def history(images: list[dict[str, str]] | None = None, parallel: bool = False) -> list[Any]:
    """user -> assistant calling the notebook tool (another provider's turn, rebuilt by every adapter) -> results.

    ``parallel`` adds a second call before it whose result has no image, so "attached to the right call" is
    tested against a neighbour.
    """
    calls = [ToolCall("call_img", TOOL, {"operation": "execute_cell", "index": 0})]
    results = [ToolResultMessage("call_img", TOOL, "Executed cell 0\n[image/png 3x2, 71 B]",
                                 images=[{"mime": "image/png", "data": PNG_B64}] if images is None else images)]
    if parallel:
        calls.insert(0, ToolCall("call_txt", TOOL, {"operation": "list_cells"}))
        results.insert(0, ToolResultMessage("call_txt", TOOL, "nb.ipynb: 1 cell"))
    assistant = AssistantMessage(text="Running it.", tool_calls=calls, provider="elsewhere", model="m")
    return [UserMessage("Plot it and look at the plot."), assistant, *results]


async def send(kind: str, fakes: dict[str, Any], messages: list[Any], model: str | None = None, **options: Any
               ) -> dict[str, Any]:
    """One turn through the real SDK to the fake; the request body the fake received."""
    fakes[kind].script(ScriptedTurn(text="I see a grey rectangle."))
    settings = fakes[kind].settings()
    settings.options.update(options)
    provider = ADAPTERS[kind](settings)
    try:
        events = [e async for e in provider.stream(ProviderRequest(
            model=model or MODELS[kind], system="Be brief.", messages=messages, tools=[SPEC]))]
    finally:
        await provider.aclose()
    assert isinstance(events[-1], Finished) and events[-1].message.text == "I see a grey rectangle."
    return fakes[kind].requests[-1]["body"]


# ---------------------------------------------------------------- where each API carries the image


def openai_output(body: dict[str, Any], call_id: str) -> Any:
    items = body["input"]
    [index] = [i for i, item in enumerate(items) if item.get("type") == "function_call" and item["call_id"] == call_id]
    [output] = [item for item in items if item.get("type") == "function_call_output" and item["call_id"] == call_id]
    # nothing but function calls and outputs between the call and its output (no user message in between)
    between = items[index + 1 : items.index(output)]
    assert all(item.get("type") in ("function_call", "function_call_output") for item in between)
    return output["output"]


async def test_openai_function_call_output_carries_input_image(fakes: dict[str, Any]) -> None:
    body = await send("openai", fakes, history(parallel=True))
    output = openai_output(body, "call_img")
    assert output == [
        {"type": "input_text", "text": "Executed cell 0\n[image/png 3x2, 71 B]"},
        {"type": "input_image", "image_url": DATA_URL},
    ]
    assert openai_output(body, "call_txt") == "nb.ipynb: 1 cell"  # a result without images stays a string
    assert body["input"][-1]["type"] == "function_call_output"  # no user message added


async def test_anthropic_tool_result_carries_image_block(fakes: dict[str, Any]) -> None:
    body = await send("anthropic", fakes, history(parallel=True))
    last = body["messages"][-1]
    assert last["role"] == "user"
    assert [b["type"] for b in last["content"]] == ["tool_result", "tool_result"]
    plain, with_image = last["content"]
    assert plain["tool_use_id"] == "call_txt" and plain["content"] == "nb.ipynb: 1 cell"
    assert with_image["tool_use_id"] == "call_img" and with_image["is_error"] is False
    assert with_image["content"] == [
        {"type": "text", "text": "Executed cell 0\n[image/png 3x2, 71 B]"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
    ]


def gemini_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    last = body["contents"][-1]
    assert last["role"] == "user"
    return last["parts"]


def blob(part: dict[str, Any]) -> tuple[str, bytes]:
    data = part.get("inlineData") or part.get("inline_data")
    return data.get("mimeType") or data.get("mime_type"), decoded(data["data"])


def function_response(part: dict[str, Any]) -> dict[str, Any]:
    return part.get("functionResponse") or part.get("function_response")


async def test_gemini_2_images_follow_the_function_responses(fakes: dict[str, Any]) -> None:
    """Before Gemini 3 a functionResponse holds no media: the image is an inline_data part after the results."""
    body = await send("gemini", fakes, history(parallel=True), model="gemini-2.5-pro")
    parts = gemini_parts(body)
    assert [function_response(p)["name"] for p in parts[:2]] == [TOOL, TOOL]
    assert function_response(parts[0])["response"] == {"output": "nb.ipynb: 1 cell"}
    assert function_response(parts[1])["response"] == {"output": "Executed cell 0\n[image/png 3x2, 71 B]"}
    assert not function_response(parts[1]).get("parts")
    label, image = parts[2:]
    assert "function response 2" in label["text"] and TOOL in label["text"]
    assert blob(image) == ("image/png", PNG)


async def test_gemini_3_images_inside_the_function_response(fakes: dict[str, Any]) -> None:
    body = await send("gemini", fakes, history(parallel=True), model="gemini-3-pro-preview")
    parts = gemini_parts(body)
    assert len(parts) == 2 and all(function_response(p) for p in parts)
    assert not function_response(parts[0]).get("parts")
    [media] = function_response(parts[1])["parts"]
    assert blob(media) == ("image/png", PNG)
    # the option overrides the guess from the model name
    body = await send("gemini", fakes, history(), model="gemini-3-pro-preview", function_response_parts=False)
    assert [blob(p) for p in gemini_parts(body)[2:]] == [("image/png", PNG)]


async def test_xai_images_in_a_user_message_after_the_tool_results(fakes: dict[str, Any]) -> None:
    """A gRPC tool message carries text only: the image follows the results in a user message naming the call."""
    body = await send("xai", fakes, history(parallel=True))
    messages = body["messages"]
    roles = [m["role"] for m in messages]
    assert roles[-4:] == ["ROLE_ASSISTANT", "ROLE_TOOL", "ROLE_TOOL", "ROLE_USER"]
    plain, with_image, shown = messages[-3:]
    assert plain["tool_call_id"] == "call_txt" and with_image["tool_call_id"] == "call_img"
    assert "attached in the next user message" in with_image["content"][0]["text"]
    label, image = shown["content"]
    assert "call_img" in label["text"] and TOOL in label["text"]
    assert image["image_url"]["image_url"] == DATA_URL


@pytest.mark.parametrize("kind", KINDS)
async def test_image_types_an_api_refuses_are_named_not_sent(kind: str, fakes: dict[str, Any]) -> None:
    svg = {"mime": "image/svg+xml", "data": base64.b64encode(b"<svg/>").decode()}
    body = await send(kind, fakes, history(images=[svg]))
    text = str(body)
    assert "not shown to you: 1 image(s) of type image/svg+xml" in text
    assert "PHN2Zy8+" not in text  # the SVG's base64 is not in the request


@pytest.mark.parametrize("kind", KINDS)
async def test_a_tool_image_reaches_the_model_through_the_loop(kind: str, fakes: dict[str, Any],
                                                               make_agent: Any) -> None:
    """End to end: a tool returns ToolResult.images, the loop keeps them, the next request carries them."""

    class PlotTool(Tool):
        name = "Plot"
        description = "Make a plot."

        async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
            return ToolResult("[image/png 3x2, 71 B]", images=[ToolImage("image/png", PNG_B64)])

    fakes[kind].script(ScriptedTurn(tool_calls=[ScriptedTool("Plot", {})]), ScriptedTurn(text="grey"))
    agent = make_agent(kind)
    agent.tools.register(PlotTool())
    events = [e async for e in agent.run("plot")]
    assert events[-1]["reason"] == "completed"
    [result] = [m for m in agent.history if isinstance(m, ToolResultMessage)]
    assert result.images == [{"mime": "image/png", "data": PNG_B64}]
    first, second = (str(r["body"]) for r in fakes[kind].requests)
    assert PNG_B64[:40] not in first
    sent = PNG_B64 if kind != "gemini" else base64.urlsafe_b64encode(PNG).decode()
    assert sent[:40] in second or PNG_B64[:40] in second


# ---------------------------------------------------------------- the notebook tool attaches cell images


@pytest_asyncio.fixture
async def host(tmp_path: Path) -> AsyncIterator[LocalHost]:
    root = tmp_path / "ws"
    root.mkdir()
    h = LocalHost(root, interrupt_grace=5)
    yield h
    await h.shutdown()


def caller(host: LocalHost, **tool_options: Any) -> Any:
    registry = ToolRegistry(notebook_tools(default_timeout=30, **tool_options))
    ctx = ToolContext(root=host.root, session_id="t", services={"host": host})

    async def call(operation: str, **args: Any) -> ToolResult:
        return await registry.run(TOOL, {"operation": operation, "notebook_path": "nb.ipynb", **args}, ctx)

    return call


def show_png(grey: int = 0x80) -> str:
    data = base64.b64encode(png_bytes(3, 2, grey)).decode()
    return f"display(Image(data=base64.b64decode('{data}')))"


SETUP = "from IPython.display import Image, SVG, display\nimport base64\n"


async def test_notebook_tool_sends_images_when_asked(host: LocalHost) -> None:
    call = caller(host, send_images=True)
    result = await call("insert_execute_code_cell", source=SETUP + show_png() + "\nprint('drawn')")
    assert not result.is_error, result.output
    assert result.images == [ToolImage("image/png", PNG_B64)]
    assert "[image/png 3x2, " in result.output and "drawn" in result.output  # the description stays
    assert "[images attached for you to see, in this order: 1) image/png 3x2, " in result.output
    assert "from cell 0 (id=" in result.output
    cell_id = nbformat.read(host.root / "nb.ipynb", as_version=4).cells[0].id
    # per call, include_images overrides the tool's default
    quiet = await call("execute_cell", cell_id=cell_id, include_images=False)
    assert quiet.images == [] and "[image/png 3x2, " in quiet.output and "images attached" not in quiet.output
    # the image kept in the notebook is shown when the cell is read, too
    read = await call("read_cell", cell_id=cell_id)
    assert read.images == [ToolImage("image/png", PNG_B64)]
    # edits and listings never carry images
    listed = await call("list_cells")
    assert listed.images == [] and "images" not in listed.output


async def test_notebook_tool_without_the_option_describes_only(host: LocalHost) -> None:
    call = caller(host)
    assert "include_images` (default false)" in NotebookTool().description
    result = await call("insert_execute_code_cell", source=SETUP + show_png())
    assert not result.is_error, result.output
    assert result.images == [] and "[image/png 3x2, " in result.output and "images attached" not in result.output
    shown = await call("execute_ipython", source=SETUP + show_png(), include_images=True)
    assert shown.images == [ToolImage("image/png", PNG_B64)] and "from the code" in shown.output


async def test_notebook_tool_caps_images_and_skips_svg(host: LocalHost) -> None:
    call = caller(host, send_images=True)
    code = (SETUP + "\n".join(show_png(g) for g in range(10, 70, 10))
            + "\ndisplay(SVG('<svg width=\"5\" height=\"5\"/>'))")
    result = await call("insert_execute_code_cell", source=code)
    assert not result.is_error, result.output
    assert [i.data for i in result.images] == [base64.b64encode(png_bytes(3, 2, g)).decode() for g in (10, 20, 30, 40)]
    assert "2 more image(s) over the limit of 4 per result" in result.output
    assert "image/svg+xml in cell 0" in result.output and "its description stands" in result.output
    assert "[image/svg+xml" in result.output  # still described


def test_image_attachment_limits() -> None:
    big = {"output_type": "display_data", "metadata": {}, "data": {"image/png": PNG_B64 * 3}}
    svg_and_png = {"output_type": "display_data", "metadata": {},
                   "data": {"image/svg+xml": "<svg/>", "image/png": PNG_B64 + "\n", "text/plain": "<Figure>"}}
    broken = {"output_type": "display_data", "metadata": {}, "data": {"image/jpeg": "not base64!"}}
    stream = {"output_type": "stream", "name": "stdout", "text": "x"}
    images = ImageAttachments(limit=2, max_base64=len(PNG_B64) + 10)
    images.add([stream, big, svg_and_png, broken], "cell 1 (id=abc)")
    assert images.images == [ToolImage("image/png", PNG_B64)]  # PNG preferred over SVG, newlines dropped
    note = images.note()
    assert "1) image/png 3x2, 71 B from cell 1 (id=abc)" in note
    assert "image/png 3x2, " in note and "as base64)" in note  # the big one
    assert "the data is not valid base64" in note
    assert ImageAttachments().note() == ""
