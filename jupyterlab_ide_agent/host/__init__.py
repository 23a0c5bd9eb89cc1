"""Notebook hosts: where notebooks are stored and their kernels run (see :mod:`.base`).

:class:`LocalHost` works on its own (Python API, CLI); :class:`ServerHost` works inside a Jupyter server. ServerHost
is imported lazily so the standalone path never imports jupyter_server.
"""

from __future__ import annotations

from typing import Any

from .base import DEAD_MESSAGE, ExecutionResult, HostError, NotebookHost
from .local import LocalHost

__all__ = ["DEAD_MESSAGE", "ExecutionResult", "HostError", "LocalHost", "NotebookHost", "ServerHost"]


def __getattr__(name: str) -> Any:
    if name == "ServerHost":
        from .server import ServerHost

        return ServerHost
    raise AttributeError(name)
