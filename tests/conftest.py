"""Shared fixtures: the four wire-level fake providers and agents/servers pointed at them."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

# The fixtures of a real Jupyter server (jp_serverapp, jp_fetch, jp_ws_fetch, ...), without
# pytest-jupyter's own coroutine runner: pytest-asyncio runs every test and async fixture, and the
# server is started on that same loop (see jp_asyncio_loop below), so one loop serves both.
from pytest_jupyter.jupyter_server import *  # noqa: E402,F403
from traitlets.config import Config

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.fakes.xai import FakeXAI

del pytest_pycollect_makeitem, pytest_pyfunc_call  # noqa: F821


@pytest_asyncio.fixture
def jp_asyncio_loop() -> asyncio.AbstractEventLoop:
    """pytest-asyncio's loop for this test (a sync pytest-asyncio fixture sees it as current)."""
    return asyncio.get_event_loop()


#: the model each provider kind is driven with in tests (all priced in the price table)
TEST_MODELS = {
    "openai": "gpt-5",
    "anthropic": "claude-opus-4-1",
    "gemini": "gemini-2.5-pro",
    "xai": "grok-4-fast-reasoning",
}

KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "XAI_API_KEY",
            "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GOOGLE_GEMINI_BASE_URL", "XAI_API_HOST")


def pytest_configure(config: pytest.Config) -> None:
    """Offline runs drop real keys and endpoints so nothing can reach a real API by accident;
    ``pytest -m live`` keeps them (each live test skips when its key is missing)."""
    markexpr = config.getoption("markexpr", "") or ""
    if not re.search(r"(?<!not )\blive\b", markexpr):
        for var in KEY_VARS:
            os.environ.pop(var, None)
    # a developer's own per-user files (MCP servers, rule files, sessions) must not reach the tests:
    # standalone agents read them from the Jupyter config and data dirs
    import atexit
    import shutil
    import tempfile

    home = tempfile.mkdtemp(prefix="ide-agent-tests-")
    atexit.register(shutil.rmtree, home, True)
    os.environ["JUPYTER_CONFIG_DIR"] = os.path.join(home, "config")
    os.environ["JUPYTER_DATA_DIR"] = os.path.join(home, "data")


@pytest.fixture(scope="session")
def fakes() -> Iterator[dict[str, Any]]:
    """All four fakes, started once for the whole run; reset by ``fake_reset`` per test."""
    servers = {
        "openai": FakeOpenAI().start(),
        "anthropic": FakeAnthropic().start(),
        "gemini": FakeGemini().start(),
        "xai": FakeXAI().start(),
    }
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(autouse=True)
def fake_reset(request: pytest.FixtureRequest) -> None:
    if "fakes" in request.fixturenames:
        for server in request.getfixturevalue("fakes").values():
            server.reset()


def providers_config(fakes: dict[str, Any], **overrides: Any) -> dict[str, dict[str, Any]]:
    """``c.IDEAgent.providers`` pointing every provider at its fake."""
    config = {}
    for name, fake in fakes.items():
        values = dataclasses.asdict(fake.settings(**overrides))
        values.pop("name")
        config[name] = values
    return config


@pytest.fixture
def jp_server_config(fakes: dict[str, Any]) -> Config:
    return Config(
        {
            "ServerApp": {"jpserver_extensions": {"jupyterlab_ide_agent": True}},
            "IDEAgent": {"providers": providers_config(fakes), "main_model": "openai:gpt-5"},
        }
    )


@pytest_asyncio.fixture
async def make_agent(fakes: dict[str, Any], tmp_path: Any) -> AsyncIterator[Any]:
    """Build IDEAgents on the fakes: ``make_agent("anthropic", max_steps=5)``; cleaned up after."""
    from jupyterlab_ide_agent.agent.loop import IDEAgent

    agents: list[IDEAgent] = []

    def make(kind: str = "openai", **agent_config: Any) -> IDEAgent:
        config = Config({"IDEAgent": {"providers": providers_config(fakes),
                                      "main_model": f"{kind}:{TEST_MODELS[kind]}", **agent_config}})
        agent = IDEAgent(session_id=f"test-{kind}", workspace_dir=tmp_path, config=config)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        await agent.cleanup()
