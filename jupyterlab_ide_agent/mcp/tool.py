"""An MCP server's tool as one of the agent's tools: its name, schema and results made provider-safe.

Names: every provider takes ``^[a-zA-Z0-9_-]{1,64}$`` (OpenAI, Anthropic, Gemini, xAI), so a tool is
``mcp__<server>__<tool>`` with other characters replaced by ``_``, and names past 64 characters are cut
and given a short hash of the full name so two long names never collide.

Schemas are passed as the server gives them, repaired only where a provider would reject the whole
request: the top level must be ``{"type": "object", "properties": {...}}``.

Results: text stays text, images go to the model as images, structured content as JSON text,
resource links and embedded resources as short text, ``isError`` as an error result.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import jsonschema
import mcp.types as mt

from ..tools.base import Tool, ToolContext, ToolImage, ToolResult

PREFIX = "mcp__"
MAX_NAME = 64
IMAGE_MIMES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
MAX_DESCRIPTION = 4000
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
ANY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": True}

#: calls the server's tool: (original tool name, arguments) -> the SDK's result
CallFn = Callable[[str, dict[str, Any]], Awaitable[mt.CallToolResult]]


def safe_part(text: str) -> str:
    return _UNSAFE.sub("_", text) or "_"


def qualified_name(server: str, tool: str) -> str:
    """``mcp__<server>__<tool>``, provider-safe and at most 64 characters."""
    name = f"{PREFIX}{safe_part(server)}__{safe_part(tool)}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(f"{server}\0{tool}".encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


def repair_schema(schema: Any) -> dict[str, Any]:
    """The input schema a provider accepts: an object schema at the top, with ``properties``."""
    fixed = dict(schema) if isinstance(schema, dict) else {}
    fixed.pop("$schema", None)  # a draft-07 URI makes some providers refuse the request
    if fixed.get("type") != "object":
        fixed["type"] = "object"
    if not isinstance(fixed.get("properties"), dict):
        fixed["properties"] = {}
    if "required" in fixed and not (isinstance(fixed["required"], list)
                                    and all(isinstance(r, str) for r in fixed["required"])):
        fixed.pop("required")
    try:
        jsonschema.Draft202012Validator.check_schema(fixed)
    except jsonschema.SchemaError:  # an invalid schema cannot validate anything: accept any object
        return dict(ANY_OBJECT)
    if _remote_refs(fixed):  # validating would try to fetch them: leave the checking to the server
        return dict(ANY_OBJECT)
    return fixed


def _remote_refs(schema: Any) -> bool:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        return (isinstance(ref, str) and not ref.startswith("#")) or any(_remote_refs(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_remote_refs(v) for v in schema)
    return False


class McpTool(Tool):
    """One tool of one MCP server. Runs code unless the server marks it read-only (approval mode)."""

    def __init__(self, server: str, tool: mt.Tool, call: CallFn, redact: Callable[[str], str]) -> None:
        self.mcp_server = server
        self.tool_name = tool.name
        self.name = qualified_name(server, tool.name)
        text = (tool.description or tool.title or "").strip() or f"The {tool.name!r} tool."
        self.description = f"{text[:MAX_DESCRIPTION]}\n(MCP server {server!r}, tool {tool.name!r})"
        self.summary = text.split("\n")[0][:300]  # for the sidebar's listing
        self.parameters = repair_schema(tool.input_schema)
        self.read_only = bool(tool.annotations and tool.annotations.read_only_hint)
        self.runs_code = not self.read_only
        self._call = call
        self._redact = redact

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        result = await self._call(self.tool_name, args)
        output, images = result_to_text(result)
        output = self._redact(output)
        data = {"mcp_server": self.mcp_server, "mcp_tool": self.tool_name}
        if result.is_error:
            return ToolResult(f"The MCP tool {self.tool_name!r} of {self.mcp_server!r} failed:\n{output}", True, data)
        return ToolResult(output or "(the tool returned no content)", False, data, images)


def result_to_text(result: mt.CallToolResult) -> tuple[str, list[ToolImage]]:
    """The model's view of a tool result: text parts joined, images apart, the rest summarized."""
    parts: list[str] = []
    images: list[ToolImage] = []
    for block in result.content:
        if isinstance(block, mt.TextContent):
            parts.append(block.text)
        elif isinstance(block, mt.ImageContent):
            if block.mime_type in IMAGE_MIMES:
                images.append(ToolImage(block.mime_type, block.data))
                parts.append(f"[image {len(images)}: {block.mime_type}, attached]")
            else:
                parts.append(f"[image of type {block.mime_type}, which models cannot read; not attached]")
        elif isinstance(block, mt.AudioContent):
            parts.append(f"[audio ({block.mime_type}, {len(block.data) * 3 // 4} bytes); not shown]")
        elif isinstance(block, mt.ResourceLink):
            mime = f", {block.mime_type}" if block.mime_type else ""
            about = f": {block.description}" if block.description else ""
            parts.append(f"[resource link {block.name} <{block.uri}>{mime}{about}]")
        elif isinstance(block, mt.EmbeddedResource):
            parts.append(_embedded(block.resource, images))
        else:
            parts.append(f"[{getattr(block, 'type', type(block).__name__)} content; not shown]")
    text = "\n".join(parts)
    structured = result.structured_content
    if structured is not None and not _same_as_text(structured, text):
        as_json = json.dumps(structured, ensure_ascii=False, default=str)
        text = f"{text}\n\nStructured result:\n{as_json}" if text else as_json
    return text, images


def _embedded(resource: mt.TextResourceContents | mt.BlobResourceContents, images: list[ToolImage]) -> str:
    mime = resource.mime_type or "unknown type"
    if isinstance(resource, mt.TextResourceContents):
        return f"[resource <{resource.uri}> ({mime})]\n{resource.text}"
    if resource.mime_type in IMAGE_MIMES:
        images.append(ToolImage(resource.mime_type, resource.blob))
        return f"[resource <{resource.uri}>: image {len(images)}, attached]"
    return f"[binary resource <{resource.uri}> ({mime}, {len(resource.blob) * 3 // 4} bytes); not shown]"


def _same_as_text(structured: Any, text: str) -> bool:
    """Whether the text parts already say what the structured content says (servers are asked to
    send both; sending it twice costs tokens). SDK servers wrap a plain return value as
    ``{"result": value}`` next to the value's text."""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    return structured == parsed or structured == {"result": parsed} or structured == {"result": text}
