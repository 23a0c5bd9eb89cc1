"""MCP server entries: read from ``c.IDEAgent.mcp_servers`` and the per-user JSON file, merged, checked.

Both use the shape the common editors use (Claude Desktop, Cursor, VS Code ``mcpServers``), so a user
can paste an entry from their editor's config::

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "."],
                  "env": {"TOKEN": "..."}},
        "web": {"url": "http://127.0.0.1:9000/mcp", "headers": {"Authorization": "Bearer ..."}}}}

Extra per-server keys: ``timeout`` (seconds per call and per start) and ``enabled`` (false = off until
the user turns it on in the sidebar). Env and header values are secrets: they only ever reach the
server process or the HTTP request, never a log line, an event or a REST response.

An entry that is wrong becomes a :class:`ServerConfig` with ``problem`` set, so the listing can say
what is wrong while the other servers keep working.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jupyter_core.paths import jupyter_config_dir, jupyter_data_dir

CONFIG_FILE_NAME = "ide_agent_mcp.json"
DEFAULT_TIMEOUT = 60.0
HTTP_TYPES = {"http", "streamable-http", "streamablehttp", "streamable_http"}
KNOWN_KEYS = {"command", "args", "env", "cwd", "url", "headers", "timeout", "enabled", "type", "transport",
              "description", "disabled"}


def default_config_file() -> Path:
    return Path(jupyter_config_dir()) / CONFIG_FILE_NAME


def default_state_file() -> Path:
    return Path(jupyter_data_dir()) / "ide_agent" / "mcp_state.json"


@dataclass(frozen=True)
class ServerConfig:
    """One MCP server as configured. Frozen and comparable: a changed entry means a new connection."""

    name: str
    transport: str = "stdio"  # "stdio" | "http"
    command: str = ""
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    url: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    enabled: bool = True  # the configured default; the user's toggle overrides it
    source: str = "config"  # "config" (traitlets) | "file" (the per-user JSON file)
    problem: str | None = field(default=None, compare=False)

    @property
    def target(self) -> str:
        """What the listing shows: the command line for stdio, scheme://host[:port]/path for HTTP
        (never the query string or user info, which may carry credentials)."""
        if self.transport == "http":
            parts = urlsplit(self.url)
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
            return f"{parts.scheme}://{host}{port}{parts.path}"
        return " ".join([self.command, *self.args]).strip()

    def secrets(self) -> list[str]:
        """Values that must never be shown: env and header values, and URL credentials."""
        values = [v for _, v in self.env] + [v for _, v in self.headers]
        if self.transport == "http":
            parts = urlsplit(self.url)
            values += [p for p in (parts.password, parts.query) if p]
            for _, value in self.headers:  # "Bearer abc": the token alone may be echoed too
                values += value.split()[1:]
        return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, "[redacted]")
        return text


def parse_server(name: str, raw: Any, source: str, default_timeout: float = DEFAULT_TIMEOUT) -> ServerConfig:
    """One entry; a wrong entry comes back with ``problem`` set instead of raising."""
    try:
        return _parse(name, raw, source, default_timeout)
    except ValueError as exc:
        return ServerConfig(name=name, source=source, enabled=False, problem=str(exc))


def _parse(name: str, raw: Any, source: str, default_timeout: float) -> ServerConfig:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("the server name must be a non-empty string")
    if not isinstance(raw, Mapping):
        raise ValueError(f"the entry must be an object with 'command' or 'url', not {type(raw).__name__}")
    unknown = sorted(set(raw) - KNOWN_KEYS)
    kind = str(raw.get("type") or raw.get("transport") or "").lower()
    timeout = raw.get("timeout", default_timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 86_400:
        raise ValueError("'timeout' must be a number of seconds between 0 and 86400")
    enabled = raw.get("enabled", not raw.get("disabled", False))
    if not isinstance(enabled, bool):
        raise ValueError("'enabled' must be true or false")
    common = {"name": name, "timeout": float(timeout), "enabled": enabled, "source": source}
    if unknown:
        logging.getLogger(__name__).info("MCP server %r: ignoring unknown keys %s", name, ", ".join(unknown))
    if "url" in raw or kind in HTTP_TYPES or kind == "sse":
        if kind == "sse":
            raise ValueError("the legacy SSE transport is not supported; use the server's streamable HTTP URL")
        url = raw.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise ValueError("'url' must be an http:// or https:// URL")
        if "command" in raw:
            raise ValueError("give either 'command' (stdio) or 'url' (streamable HTTP), not both")
        return ServerConfig(transport="http", url=url, headers=_string_map(raw.get("headers"), "headers"), **common)
    command = raw.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ValueError("needs 'command' (a stdio server) or 'url' (a streamable HTTP server)")
    args = raw.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str | int | float) for a in args):
        raise ValueError("'args' must be a list of strings")
    cwd = raw.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise ValueError("'cwd' must be a string")
    return ServerConfig(transport="stdio", command=command, args=tuple(str(a) for a in args),
                        env=_string_map(raw.get("env"), "env"), cwd=cwd and os.path.expanduser(cwd), **common)


def _string_map(value: Any, what: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"'{what}' must be an object of names to strings")
    bad = [k for k, v in value.items() if not isinstance(v, str | int | float) or isinstance(v, bool)]
    if bad:
        raise ValueError(f"'{what}' values must be strings (see {', '.join(sorted(bad))})")
    return tuple(sorted((k, str(v)) for k, v in value.items()))


def read_config_file(path: Path) -> tuple[dict[str, Any], str | None]:
    """The file's ``mcpServers`` (or ``servers``, VS Code's key) and a problem, if any. No file = none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        return {}, f"cannot read {path}: {exc.strerror or exc}"
    try:
        data = json.loads(text)
    except ValueError as exc:
        return {}, f"{path} is not valid JSON: {exc}"
    if not isinstance(data, dict):
        return {}, f"{path} must hold a JSON object with 'mcpServers'"
    servers = data.get("mcpServers", data.get("servers", {}))
    if not isinstance(servers, dict):
        return {}, f"'mcpServers' in {path} must be an object of server name to entry"
    return servers, None


def merge(configured: Mapping[str, Any], from_file: Mapping[str, Any], file_path: Path | None,
          log: logging.Logger, default_timeout: float = DEFAULT_TIMEOUT) -> dict[str, ServerConfig]:
    """Traitlets entries and file entries, by name; the traitlets entry wins a clash (logged once)."""
    servers = {name: parse_server(name, raw, "file", default_timeout) for name, raw in from_file.items()}
    for name, raw in configured.items():
        if name in servers:
            log.info("IDE agent: MCP server %r is in c.IDEAgent.mcp_servers and in %s; using the config entry",
                     name, file_path)
        servers[name] = parse_server(name, raw, "config", default_timeout)
    return servers


class ToggleStore:
    """The user's on/off choice per server, in a small JSON file, so it survives a restart."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._toggles: dict[str, bool] | None = None

    def get(self, name: str) -> bool | None:
        return self._load().get(name)

    def set(self, name: str, enabled: bool) -> None:
        toggles = self._load()
        toggles[name] = enabled
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"enabled": toggles}, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)  # atomic: a crash mid-write never leaves half a file

    def _load(self) -> dict[str, bool]:
        if self._toggles is None:
            self._toggles = {}
            if self.path is not None:
                try:
                    data = json.loads(self.path.read_text(encoding="utf-8"))
                    found = data.get("enabled", {}) if isinstance(data, dict) else {}
                    self._toggles = {k: v for k, v in found.items() if isinstance(v, bool)}
                except (OSError, ValueError, AttributeError):
                    pass  # no file yet, or a broken one: the configured defaults apply
        return self._toggles
