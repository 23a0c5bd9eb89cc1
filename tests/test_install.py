"""`pip install .` gives JupyterLab the prebuilt labextension and the enabled server extension."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def jupyter(*args: str) -> str:
    result = subprocess.run([str(BIN / "jupyter"), *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)  # drop colours


def test_labextension_is_installed_prebuilt_and_ok() -> None:
    listing = jupyter("labextension", "list")
    line = next((ln for ln in listing.splitlines() if "jupyterlab-ide-agent" in ln), "")
    assert "enabled" in line and "OK" in line, listing


def test_server_extension_is_enabled_and_ok() -> None:
    listing = jupyter("server", "extension", "list")
    assert "jupyterlab_ide_agent enabled" in listing, listing
    assert "jupyterlab_ide_agent 0.1.0 OK" in listing, listing
