"""The sidebar under a JupyterHub-style prefix: JupyterLab served at ``/user/alice/``.

Every URL the sidebar uses must come from the page's settings (``ServerConnection.makeSettings()``: ``baseUrl`` and
``wsUrl``), never from the site root: the REST calls and the session's WebSocket are watched in the browser and
must all live under the prefix, and a prompt must stream its reply from the fake model.
Screenshot: hub-base-url.png.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fakes.base import ScriptedTurn

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

PREFIX = "/user/alice/"


def test_the_sidebar_works_under_a_user_prefix(agent_lab: Any, fakes: dict[str, Any], ui: Any) -> None:
    lab = agent_lab(base_url=PREFIX)
    assert urlsplit(lab.url).path == PREFIX
    requests: list[str] = []
    sockets: list[str] = []
    ui.page.on("request", lambda request: requests.append(request.url))
    ui.page.on("websocket", lambda ws: sockets.append(ws.url))

    fakes["openai"].script(ScriptedTurn(text="Hello Alice, from under the hub prefix.", chunks=4))
    ui.open_lab(lab)
    ui.open_sidebar()
    ui.send("Say hello to Alice")
    ui.q(".jp-IDEAgent-assistant").filter(has_text="from under the hub prefix.").wait_for()
    ui.wait_idle()
    ui.shot("hub-base-url")

    ours = [urlsplit(u).path for u in requests + sockets if "/ide-agent/" in urlsplit(u).path]
    assert any(p.endswith("/ide-agent/status") for p in ours), ours
    assert any(p.endswith("/stream") for p in (urlsplit(u).path for u in sockets)), sockets
    outside = [p for p in ours if not p.startswith(f"{PREFIX}ide-agent/")]
    assert outside == [], f"sidebar URLs outside {PREFIX}: {outside}"

    # the prompt reached the model, and the conversation is the server's (under the prefix) too
    sent = fakes["openai"].requests[-1]
    assert "Say hello to Alice" in str(sent["body"])
    sessions = lab.api("ide-agent/sessions")["sessions"]
    assert len(sessions) == 1
    assert not ui.page.page_errors, ui.page.page_errors
