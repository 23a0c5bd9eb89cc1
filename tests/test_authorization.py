"""The server's authorizer decides: a custom authorizer that denies our resource is honoured."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import HTTPClientError
from traitlets.config import Config


class DenyIDEAgent(Authorizer):
    """Allows everything but the IDE agent (as a hub admin could for some users)."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != "ide-agent"


@pytest.fixture
def jp_server_config(fakes: Any) -> Config:
    return Config({
        "ServerApp": {"jpserver_extensions": {"jupyterlab_ide_agent": True}, "authorizer_class": DenyIDEAgent},
    })


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", ("status",), None),
    ("GET", ("sessions",), None),
    ("POST", ("sessions",), "{}"),
])
async def test_denied_by_the_authorizer(jp_fetch: Any, method: str, path: tuple[str, ...], body: str | None) -> None:
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("ide-agent", *path, method=method, body=body)
    assert err.value.code == 403
    # the rest of the server still answers
    assert json.loads((await jp_fetch("api", "status")).body)


async def test_websocket_denied_by_the_authorizer(jp_serverapp: Any, jp_ws_fetch: Any) -> None:
    session = jp_serverapp.web_app.settings["ide_agent_sessions"].create()
    with pytest.raises(HTTPClientError) as err:
        await jp_ws_fetch("ide-agent", "sessions", session.id, "stream")
    assert err.value.code == 403
