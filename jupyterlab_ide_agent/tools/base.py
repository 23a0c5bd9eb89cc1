"""Tools: declared once (name, JSON schema, async run), rendered by each provider adapter.

A tool never raises into the loop: invalid arguments, refused paths and failures all become a
:class:`ToolResult` with ``is_error=True`` that the model can read and recover from.
"""

from __future__ import annotations

import json
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from ..providers.base import ToolSpec


class ToolError(Exception):
    """Raised inside a tool for an expected failure; the registry turns it into an error result."""


@dataclass
class ToolImage:
    """An image a tool shows the model (e.g. a plot), for models that accept images."""

    mime: str  # image/png, image/jpeg, image/gif, image/webp
    data: str  # base64, no data: prefix


@dataclass
class ToolResult:
    output: str
    is_error: bool = False
    data: dict[str, Any] | None = None  # structured extras for the sidebar (never sent to the model)
    images: list[ToolImage] = field(default_factory=list)  # sent to the model with the output


@dataclass
class ToolContext:
    """What a tool may touch. ``root`` confines every path; ``emit`` streams extra events (ensemble)."""

    root: Path
    session_id: str
    started_at: float = field(default_factory=time.time)
    emit: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None
    services: dict[str, Any] = field(default_factory=dict)  # host, workspace state, process table


class Tool(ABC):
    name: str = ""
    description: str = ""
    parameters: dict[str, Any] = {"type": "object", "properties": {}}
    #: tools that run code or scripts ask the user first when approval mode is on
    runs_code: bool = False

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)

    @abstractmethod
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        ...


#: schema (as canonical JSON) -> its validator, shared by every registry: each session builds its
#: own tools, with the same schemas, and checking a schema against the metaschema costs milliseconds
_VALIDATORS: dict[str, jsonschema.Draft202012Validator] = {}


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator for ``schema``, checked once (a bad schema raises SchemaError at registration).
    Built once rather than per call: jsonschema.validate() checks the schema itself again and
    builds a validator every time, which costs more than a small tool call (a cell's `1+1`)."""
    key = json.dumps(schema, sort_keys=True, default=str)
    validator = _VALIDATORS.get(key)
    if validator is None:
        jsonschema.Draft202012Validator.check_schema(schema)
        if len(_VALIDATORS) >= 1000:  # MCP servers bring schemas of their own: keep the cache bounded
            _VALIDATORS.clear()
        validator = _VALIDATORS[key] = jsonschema.Draft202012Validator(schema)
    return validator


class ToolRegistry:
    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}
        for tool in tools or []:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is registered twice")
        validator = _validator(tool.parameters)
        self._tools[tool.name] = tool
        self._validators[tool.name] = validator

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self._tools.values()]

    async def run(self, name: str, args: Any, ctx: ToolContext) -> ToolResult:
        """Validate and run a tool; every failure comes back as an error result, never an exception."""
        tool = self._tools.get(name)
        if tool is None:
            return ToolResult(f"Unknown tool {name!r}. Available: {', '.join(self._tools)}", True)
        if not isinstance(args, dict):
            return ToolResult(f"Arguments for {name} must be a JSON object, got {type(args).__name__}", True)
        exc = jsonschema.exceptions.best_match(self._validators[name].iter_errors(args))
        if exc is not None:  # the same error jsonschema.validate() would raise
            where = "/".join(str(p) for p in exc.absolute_path) or "arguments"
            return ToolResult(f"Invalid arguments for {name} ({where}): {exc.message}", True)
        try:
            return await tool.run(args, ctx)
        except ToolError as exc:
            return ToolResult(str(exc), True)
        except Exception as exc:  # a bug in a tool must not end the turn
            tb = traceback.format_exc(limit=3)
            return ToolResult(f"{name} failed: {type(exc).__name__}: {exc}\n{tb}", True)
