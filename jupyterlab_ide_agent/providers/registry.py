"""Named provider endpoints and model specs.

A model is named ``"<provider>:<model>"``, e.g. ``"openai:gpt-5"`` or ``"local:qwen3"``, where
``<provider>`` is a key of the provider table. The table has the four vendors by default and the user
can add OpenAI-compatible endpoints (Ollama, vLLM, llama.cpp server, a company gateway) with
``c.IDEAgent.providers = {"local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1"}}``;
``"api": "chat_completions"`` picks the Chat Completions adapter for servers without the Responses API.
One adapter (and so one SDK client with its connection pool) is shared by every session.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from typing import Any

from .base import Provider, ProviderError, ProviderSettings

#: adapter class per kind, imported lazily so a broken optional SDK never breaks start-up
ADAPTERS = {
    "openai": "jupyterlab_ide_agent.providers.openai_responses:OpenAIResponsesProvider",
    "anthropic": "jupyterlab_ide_agent.providers.anthropic_messages:AnthropicProvider",
    "gemini": "jupyterlab_ide_agent.providers.gemini:GeminiProvider",
    "xai": "jupyterlab_ide_agent.providers.xai:XAIProvider",
    # "<kind>:<api>" for a kind's other APIs
    "openai:chat_completions": "jupyterlab_ide_agent.providers.openai_chat:OpenAIChatProvider",
}
#: the APIs a kind can speak (the first is its default); kinds not listed speak one
APIS = {"openai": ("responses", "chat_completions")}
KINDS = sorted(k for k in ADAPTERS if ":" not in k)

DEFAULT_PROVIDERS: dict[str, dict[str, Any]] = {
    "openai": {"kind": "openai", "api_key_env": "OPENAI_API_KEY", "base_url_env": "OPENAI_BASE_URL"},
    "anthropic": {
        "kind": "anthropic",
        "api_key_env": "ANTHROPIC_API_KEY",
        "base_url_env": "ANTHROPIC_BASE_URL",
    },
    "gemini": {
        "kind": "gemini",
        "api_key_env": "GEMINI_API_KEY",
        "base_url_env": "GOOGLE_GEMINI_BASE_URL",
    },
    "xai": {"kind": "xai", "api_key_env": "XAI_API_KEY", "base_url_env": "XAI_API_HOST"},
}

_PREFIX_GUESS = (("gpt", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"),
                 ("claude", "anthropic"), ("gemini", "gemini"), ("grok", "xai"))


@dataclass(frozen=True)
class ModelRef:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def parse_model(spec: str) -> ModelRef:
    """``"anthropic:claude-opus-4-1"`` -> ModelRef; a bare known model name gets its vendor."""
    spec = spec.strip()
    if ":" in spec:
        provider, model = spec.split(":", 1)
        if provider and model:
            return ModelRef(provider, model)
    for prefix, provider in _PREFIX_GUESS:
        if spec.startswith(prefix):
            return ModelRef(provider, spec)
    raise ValueError(f"model {spec!r} must be written '<provider>:<model>', e.g. 'openai:gpt-5'")


def build_settings(overrides: dict[str, dict[str, Any]] | None) -> dict[str, ProviderSettings]:
    """Merge user overrides onto the defaults, per provider name and per field."""
    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in DEFAULT_PROVIDERS.items()}
    for name, values in (overrides or {}).items():
        merged.setdefault(name, {}).update(values)
    known = {f.name for f in fields(ProviderSettings)}
    out: dict[str, ProviderSettings] = {}
    for name, values in merged.items():
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"provider {name!r}: unknown settings {sorted(unknown)}")
        kind = values.get("kind") or ("openai" if name not in DEFAULT_PROVIDERS else name)
        if kind not in KINDS:
            raise ValueError(f"provider {name!r}: kind must be one of {KINDS}")
        out[name] = ProviderSettings(**{**values, "name": name, "kind": kind})
        adapter_path(out[name])  # a bad "api" fails at start-up, not at the first prompt
    return out


def adapter_path(settings: ProviderSettings) -> str:
    """``"module:Class"`` of the adapter for a kind and its ``api``; ValueError naming the choices."""
    if settings.kind not in KINDS:
        raise ValueError(f"provider {settings.name!r}: kind must be one of {KINDS}")
    apis = APIS.get(settings.kind, ())
    if settings.api is None or (apis and settings.api == apis[0]):
        return ADAPTERS[settings.kind]
    if settings.api not in apis:
        choices = f"one of {list(apis)}" if apis else "left out (it has one API)"
        raise ValueError(f"provider {settings.name!r}: api {settings.api!r} for kind {settings.kind!r} "
                         f"must be {choices}")
    return ADAPTERS[f"{settings.kind}:{settings.api}"]


class ProviderPool:
    """Provider adapters by name, created on first use and shared."""

    def __init__(self, settings: dict[str, ProviderSettings]) -> None:
        self.settings = settings
        self._adapters: dict[str, Provider] = {}
        self._secrets: tuple[tuple[str | None, ...] | None, list[str]] = (None, [])

    def get(self, name: str) -> Provider:
        if name not in self.settings:
            raise ProviderError(
                f"no provider named {name!r}; configured: {', '.join(self.settings)}",
                provider=name,
                kind="config",
            )
        if name not in self._adapters:
            try:
                module, cls = adapter_path(self.settings[name]).split(":")
            except ValueError as exc:
                raise ProviderError(str(exc), provider=name, kind="config") from None
            adapter_cls = getattr(importlib.import_module(module), cls)
            self._adapters[name] = adapter_cls(self.settings[name])
        return self._adapters[name]

    def status(self) -> list[dict[str, Any]]:
        """What the status endpoint shows: never a key, only whether one is set."""
        rows = []
        for name, s in self.settings.items():
            missing = s.missing()
            rows.append(
                {
                    "name": name,
                    "kind": s.kind,
                    "configured": missing is None,
                    "missing": missing,
                    "base_url": s.resolved_base_url(),
                }
            )
        return rows

    def secrets(self) -> list[str]:
        """Every key value in use, so tool output that echoes one (``print(os.environ)``) is redacted.

        Called for every published event: the sorted list is kept until a key changes (keys are
        read from the environment, which a user may update while the server runs)."""
        raw = tuple(s.resolved_key() for s in self.settings.values())
        if raw != self._secrets[0]:
            keys = {k for k in raw if k and len(k) >= 8}
            self._secrets = (raw, sorted(keys, key=len, reverse=True))
        return self._secrets[1]

    def redact(self, text: str) -> str:
        """``text`` with every key value in use replaced."""
        for secret in self.secrets():
            if secret in text:
                text = text.replace(secret, "[redacted API key]")
        return text

    def problems(self, main_model: str) -> list[str]:
        """Why ``main_model`` cannot be used right now (empty when it can)."""
        try:
            ref = parse_model(main_model)
        except ValueError as exc:
            return [str(exc)]
        if ref.provider not in self.settings:
            return [f"main model {main_model!r} names no configured provider "
                    f"(configured: {', '.join(self.settings)})"]
        missing = self.settings[ref.provider].missing()
        return [missing] if missing else []

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            await adapter.aclose()
        self._adapters.clear()
