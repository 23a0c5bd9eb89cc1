"""The frontend's unit tests (event reducer: ordering, replay by seq, unknown types), run by pytest
so the README's one test command covers them too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_frontend_unit_tests_pass() -> None:
    jlpm = shutil.which("jlpm")
    assert jlpm, "jlpm comes with jupyterlab; is the venv active?"
    if not (ROOT / "node_modules").is_dir():
        subprocess.run([jlpm, "install"], cwd=ROOT, check=True, capture_output=True, timeout=600)
    result = subprocess.run([jlpm, "test"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass" in result.stdout
