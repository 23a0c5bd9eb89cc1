"""Fixtures of the browser tests: a real ``jupyter lab`` (subprocess) wired to the wire-level fake
OpenAI server, and Debian's Chromium driven by Playwright (no browser download).

The server and the lab extension are taken from the environment when installed (``pip install .``);
otherwise from this checkout (the package from the source tree, the lab extension from
``jupyterlab_ide_agent/labextension``, which ``jlpm build`` produces).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("IDE_AGENT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LABEXT_NAME = "jupyterlab-ide-agent"
SETTINGS_PLUGIN = "jupyterlab-ide-agent:plugin"
# The environment must not leak real keys or endpoints into the server under test.
NO_PROVIDER_ENV: dict[str, str | None] = {
    name: None
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "GEMINI_API_KEY",
                 "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "XAI_API_KEY", "XAI_API_HOST")
}

if str(REPO) not in sys.path:  # tests.fakes.* (and the package, when not installed)
    sys.path.insert(0, str(REPO))

from tests.servers import free_port, wait_until_answering  # noqa: E402 - needs the repo on sys.path


def _browser_unavailable() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium not found at {CHROMIUM}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python playwright package is not installed"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip browser tests only when Chromium is missing and IDE_AGENT_REQUIRE_BROWSER is unset.

    Anything else that is missing (playwright, a built lab extension) fails in the fixtures.
    """
    if Path(CHROMIUM).exists() or os.environ.get("IDE_AGENT_REQUIRE_BROWSER"):
        return
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(
                pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM} (set IDE_AGENT_REQUIRE_BROWSER=1 to fail)")
            )


def _installed_labextension() -> Path | None:
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("labextensions"):
        candidate = Path(base) / LABEXT_NAME / "package.json"
        if candidate.exists():
            return candidate.parent
    return None


@dataclass
class Lab:
    url: str  # http://127.0.0.1:PORT/
    token: str
    root: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def lab_url(self) -> str:
        return f"{self.url}lab?token={self.token}"

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read().decode()
            return json.loads(text) if text else None

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@pytest.fixture(scope="session")
def browser_ready() -> None:
    reason = _browser_unavailable()
    if reason:
        pytest.fail(reason)


@pytest.fixture(scope="session")
def start_lab(tmp_path_factory: pytest.TempPathFactory, browser_ready: None) -> Iterator[Callable[..., Lab]]:
    """Factory: ``start_lab(config_lines, env, settings=None)`` starts a fresh ``jupyter lab`` and returns a
    :class:`Lab`. ``settings`` are the user's JupyterLab settings, ``{"<plugin id>": {...}}``
    (e.g. ``{"jupyterlab-ide-agent:plugin": {"approvalMode": "code"}}``); ``base_url`` serves it under a prefix
    (``"/user/alice/"``, as JupyterHub does), and ``Lab.url`` includes it."""
    started: list[Lab] = []

    def start(config_lines: list[str], env_overrides: dict[str, str | None] | None = None,
              settings: dict[str, dict[str, Any]] | None = None, base_url: str = "/") -> Lab:
        home = tmp_path_factory.mktemp("lab")
        root = home / "root"
        root.mkdir()
        cfg_dir, data_dir, runtime_dir = home / "config", home / "data", home / "runtime"
        for d in (cfg_dir, data_dir, runtime_dir):
            d.mkdir()
        config = [
            "c.ServerApp.jpserver_extensions = {'jupyterlab_ide_agent': True}",
            f"c.LabApp.user_settings_dir = {str(home / 'settings')!r}",
            f"c.LabApp.workspaces_dir = {str(home / 'workspaces')!r}",
            *config_lines,
        ]
        if _installed_labextension() is None:
            built = REPO / "jupyterlab_ide_agent" / "labextension"
            if not (built / "package.json").exists():
                pytest.fail("the lab extension is neither installed nor built: run `jlpm build` (or pip install .)")
            extra = home / "labextensions"
            extra.mkdir()
            (extra / LABEXT_NAME).symlink_to(built, target_is_directory=True)
            config.append(f"c.LabApp.extra_labextensions_path = [{str(extra)!r}]")
        (cfg_dir / "jupyter_server_config.py").write_text("\n".join(config) + "\n")
        # no "fetch Jupyter news?" toast over the screenshots
        notification = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notification.parent.mkdir(parents=True)
        notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        for plugin_id, values in (settings or {}).items():
            package, _, plugin = plugin_id.partition(":")
            path = home / "settings" / package / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))

        env = dict(os.environ)
        env.update(JUPYTER_CONFIG_DIR=str(cfg_dir), JUPYTER_DATA_DIR=str(data_dir),
                   JUPYTER_RUNTIME_DIR=str(runtime_dir), JUPYTER_PLATFORM_DIRS="1",
                   PYTHONUNBUFFERED="1")
        if not _package_importable_without_repo():
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        for key, value in (env_overrides or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value

        port, token = free_port(), uuid.uuid4().hex
        log = home / "lab.log"
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}", f"--ServerApp.base_url={base_url}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=home)
        lab = Lab(url=f"http://127.0.0.1:{port}{base_url}", token=token, root=root, log=log, proc=proc)
        started.append(lab)
        wait_until_answering(proc, lambda: lab.api("api/status"), "jupyter lab", lab.log_tail)
        try:
            lab.api("ide-agent/status")
        except urllib.error.HTTPError as exc:
            pytest.fail(f"GET ide-agent/status answered {exc.code}: is the server extension loaded?\n{lab.log_tail()}")
        return lab

    yield start

    for lab in started:
        lab.proc.terminate()
        try:
            lab.proc.wait(15)
        except subprocess.TimeoutExpired:
            lab.proc.kill()
            lab.proc.wait(5)


def _package_importable_without_repo() -> bool:
    """Whether the subprocess finds jupyterlab_ide_agent without the checkout on its path."""
    import importlib.util

    saved = list(sys.path)
    try:
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO]
        spec = importlib.util.find_spec("jupyterlab_ide_agent")
        return spec is not None and spec.origin is not None and REPO not in Path(spec.origin).resolve().parents
    except (ImportError, ValueError):
        return False
    finally:
        sys.path[:] = saved


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[Any]:
    from tests.fakes.openai import FakeOpenAI

    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fakes(fake_openai: Any) -> Iterator[dict[str, Any]]:
    """All four fake providers (OpenAI is ``fake_openai``), for the ensemble's members."""
    from tests.fakes.anthropic import FakeAnthropic
    from tests.fakes.gemini import FakeGemini
    from tests.fakes.xai import FakeXAI

    others = {"anthropic": FakeAnthropic().start(), "gemini": FakeGemini().start(), "xai": FakeXAI().start()}
    yield {"openai": fake_openai, **others}
    for server in others.values():
        server.stop()


def providers_config_lines(fakes: dict[str, Any], main_model: str = "openai:gpt-5") -> list[str]:
    """``c.IDEAgent.providers`` pointing every provider at its fake, and the main model."""
    import dataclasses

    providers = {}
    for name, fake in fakes.items():
        values = dataclasses.asdict(fake.settings())
        values.pop("name")
        providers[name] = values
    return [f"c.IDEAgent.providers = {providers!r}", f"c.IDEAgent.main_model = {main_model!r}"]


@pytest.fixture
def agent_lab(start_lab: Callable[..., Lab], fakes: dict[str, Any]) -> Callable[..., Lab]:
    """Factory: a JupyterLab whose agent and ensemble run on the four fakes (reset first);
    ``agent_lab(settings={...}, config=[...], base_url="/user/alice/")`` adds the sidebar's settings, server
    config lines and a URL prefix."""

    def start(settings: dict[str, Any] | None = None, config: list[str] | None = None, base_url: str = "/") -> Lab:
        for fake in fakes.values():
            fake.reset()
        return start_lab([*providers_config_lines(fakes), *(config or [])], NO_PROVIDER_ENV,
                         {SETTINGS_PLUGIN: settings} if settings else None, base_url=base_url)

    return start


@pytest.fixture(scope="session")
def browser(browser_ready: None) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # launch() gives the browser a fresh temporary profile (user data dir) of its own
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.page_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()


class SidebarUI:
    """What the browser tests do with the sidebar, in one place (``ui`` fixture)."""

    SIDEBAR = "#jp-ide-agent-sidebar"
    ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

    def __init__(self, page: Any) -> None:
        self.page = page
        self.prompt = page.locator(f"{self.SIDEBAR} .jp-IDEAgent-input")

    def q(self, selector: str) -> Any:
        """A locator inside the sidebar."""
        return self.page.locator(f"{self.SIDEBAR} {selector}")

    def open_lab(self, lab: Lab, path: str = "") -> None:
        """Load JupyterLab (optionally a document, e.g. ``tree/a.ipynb``) and wait for our plugin."""
        self.page.goto(f"{lab.url}lab/{path}?token={lab.token}" if path else lab.lab_url())
        self.page.locator(f'.jp-SideBar li[data-id="{self.SIDEBAR[1:]}"]').wait_for(state="attached", timeout=60000)
        if not path:
            self.page.locator(".jp-Launcher").first.wait_for()

    def reload(self) -> None:
        """Reload the page (a browser refresh) and wait until JupyterLab is back."""
        self.page.reload()
        self.page.locator(f'.jp-SideBar li[data-id="{self.SIDEBAR[1:]}"]').wait_for(state="attached", timeout=60000)
        self.page.locator(f"{self.SIDEBAR} .jp-IDEAgent-input, .jp-Launcher").first.wait_for(timeout=60000)

    def palette(self, query: str, label: str) -> list[str]:
        """Run a command from the palette; returns the labels the search showed."""
        search = self.page.locator("#modal-command-palette .lm-CommandPalette-input")
        for attempt in range(6):
            self.page.keyboard.press("Escape")
            if attempt >= 2:  # focus a neutral place first: a notebook that is loading can take the focus back
                self.page.locator("#jp-main-statusbar").click()
            if attempt < 2:
                self.page.keyboard.press("Control+Shift+C")
            else:  # the shortcut can be swallowed while an editor or a dialog has focus: the menu is not
                self.page.locator(".lm-MenuBar-itemLabel", has_text="View").first.click()
                self.page.locator(".lm-Menu-itemLabel", has_text="Activate Command Palette").first.click()
            try:
                search.wait_for(timeout=5000)
                break
            except Exception:  # noqa: BLE001 - retried, then the final wait below reports it
                continue
        search.wait_for()
        search.fill(query)
        items = self.page.locator(
            "#modal-command-palette .lm-CommandPalette-item:not(.lm-mod-hidden) .lm-CommandPalette-itemLabel")
        items.first.wait_for()
        labels = [t.strip() for t in items.all_inner_texts()]
        items.filter(has_text=label).first.click()
        return labels

    def open_sidebar(self) -> None:
        """Open the agent from its tab in the right sidebar, as a user does most (the palette's *IDE Agent:
        Open* has its own test in test_sidebar.py; here the palette can lose its focus to a notebook
        that is still loading)."""
        if not self.prompt.is_visible():
            self.page.locator(f'.jp-SideBar li[data-id="{self.SIDEBAR[1:]}"]').click()
        self.q(".jp-IDEAgent-connection.jp-mod-open").wait_for()

    def send(self, text: str) -> None:
        self.prompt.fill(text)
        self.prompt.press("Enter")

    def wait_idle(self, timeout: float = 30000) -> None:
        """No turn or consultation running (the Stop button is gone)."""
        self.q(".jp-IDEAgent-stop").wait_for(state="detached", timeout=timeout)

    def shot(self, name: str, sidebar_only: bool = False) -> Path:
        """The page (``<name>.png``) and the sidebar alone (``<name>-sidebar.png``)."""
        self.ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = self.ARTIFACTS / f"{name}.png"
        if not sidebar_only:
            self.page.screenshot(path=str(path))
        sidebar = self.page.locator(self.SIDEBAR)
        if sidebar.is_visible():
            sidebar.screenshot(path=str(self.ARTIFACTS / f"{name}-sidebar.png"))
        return path

    def widen_sidebar(self, width: int = 460) -> None:
        """Drag the right panel's handle so the sidebar is ``width`` px wide (members side by side)."""
        box = self.page.locator(self.SIDEBAR).bounding_box()
        handle_x = box["x"] - 2
        y = box["y"] + box["height"] / 2
        self.page.mouse.move(handle_x, y)
        self.page.mouse.down()
        self.page.mouse.move(handle_x - (width - box["width"]), y, steps=5)
        self.page.mouse.up()

    def dark_theme(self) -> None:
        self.palette("JupyterLab Dark", "JupyterLab Dark")
        self.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=15000)
        self.page.wait_for_timeout(500)


@pytest.fixture
def ui(page: Any) -> SidebarUI:
    return SidebarUI(page)
