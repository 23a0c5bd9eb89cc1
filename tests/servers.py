"""For tests that start a real server process (JupyterLab, a Jupyter server, a kernel gateway, a
Ray head): free ports on loopback, and waiting until the process answers, or failing with its log."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
from collections.abc import Callable

import pytest


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports on 127.0.0.1 (all bound at once, so none is handed out twice)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def wait_until_answering(proc: subprocess.Popen[bytes], probe: Callable[[], object], what: str,
                         log_tail: Callable[[], str], timeout: float = 60.0) -> None:
    """Call ``probe`` (an HTTP request) until it succeeds; fail the test with the process's log if the
    process exits first or nothing answers within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log_tail()}")
        try:
            probe()
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not answer in {timeout:g} s:\n{log_tail()}")
            time.sleep(0.25)
