"""A real JupyterLab and Debian's chromium, driven by Playwright (TOOLCHAIN.md).

* ``jupyterlab`` (session): a JupyterLab server of this virtualenv on a free
  127.0.0.1 port, with a temporary config dir (announcements plugin off, so no
  news toast covers the screenshots), runtime dir and notebook root; stopped at
  the end of the session.
* ``browser`` (session) and ``page`` (per test): headless chromium; a page fails
  its test if a JavaScript dialog opens (nothing a task name contains may run).
* ``notebook7`` (session): the same with Notebook 7 (the ``notebook`` package).
* ``lab`` / ``nb7``: a :class:`Lab` helper bound to the page and one of the servers:
  write a notebook, open it, run cells, save screenshots under ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
STARTUP = 90  # seconds for JupyterLab to answer, on a busy 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """One JupyterLab (or, with ``app="notebook"``, Notebook 7) server serving ``root``."""

    def __init__(self, base: pathlib.Path, app: str = "jupyterlab", python: str = sys.executable,
                 root: pathlib.Path | None = None):
        self.app = app
        self.root = root or base / "notebooks"
        self.root.mkdir(exist_ok=True)
        config = base / "config"
        (config / "labconfig").mkdir(parents=True)
        (config / "labconfig" / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config),
               "JUPYTER_RUNTIME_DIR": str(base / "runtime"), "IPYTHONDIR": str(base / "ipython")}
        env.pop("NBFLOW_STORE", None)
        self.log = open(base / "jupyterlab.log", "wb")  # noqa: SIM115 - open while the server runs
        app_options = (["--LabApp.expose_app_in_browser=True",
                        "--LabApp.extension_manager=readonly"] if app == "jupyterlab"
                       else ["--JupyterNotebookApp.expose_app_in_browser=True"])
        self.proc = subprocess.Popen(
            [python, "-m", app, "--no-browser", "--allow-root",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={self.root}", *app_options],
            cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self._wait_ready(base / "jupyterlab.log")

    def _wait_ready(self, log: pathlib.Path) -> None:
        deadline = time.monotonic() + STARTUP
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.proc.returncode}):\n"
                                   f"{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}",
                                            timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"JupyterLab did not answer within {STARTUP}s:\n"
                                   f"{log.read_text()[-3000:]}")
            time.sleep(0.2)  # polling an external process that is starting up

    def api(self, method: str, path: str):
        """Call the server's REST API; the decoded JSON answer, or None."""
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def jupyterlab(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    server = JupyterLab(tmp_path_factory.mktemp("jupyterlab"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def notebook7(tmp_path_factory):
    """Notebook 7 (the ``notebook`` package), set up like ``jupyterlab``."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("notebook", minversion="7")
    server = JupyterLab(tmp_path_factory.mktemp("notebook7"), app="notebook")
    yield server
    server.stop()


# Per module, not per session: Playwright's sync API keeps an asyncio loop running in
# the main thread while it is started, which every later test that runs a loop of its
# own there (asyncio.run, jupyter_server's test client) would find already running.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        if dialog.type == "beforeunload":  # JupyterLab asking before a reload: go ahead
            dialog.accept()
        else:  # alert/confirm/prompt: something ran that should not have
            dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

    pg.on("dialog", on_dialog)
    errors: list[str] = []
    # Uncaught errors thrown by the widgets' code, which anywidget loads from blob: URLs
    # (Notebook 7 has one of its own at start-up, which is not this project's to test).
    pg.on("pageerror", lambda e: errors.append(f"{e}\n{e.stack}")
          if "blob:" in (e.stack or "") else None)
    pg.dialogs, pg.js_errors = dialogs, errors
    yield pg
    context.close()
    assert not dialogs, f"a JavaScript dialog opened: {dialogs}"


class Lab:
    """Drives one notebook in JupyterLab."""

    def __init__(self, server: JupyterLab, page, name: str):
        self.server, self.page, self.name = server, page, name

    def open(self, cells: list[str]) -> None:
        """Write a notebook with these code cells, open it and wait for its kernel."""
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nbformat.write(nb, self.server.root / f"{self.name}.ipynb")
        where = "lab/tree" if self.server.app == "jupyterlab" else "notebooks"
        # reset: a fresh workspace, or JupyterLab reopens the notebooks of earlier
        # tests (each with a new kernel) behind this one.
        reset = "&reset" if self.server.app == "jupyterlab" else ""
        self.page.goto(f"{self.server.url}/{where}/{self.name}.ipynb?token={self.server.token}"
                       f"{reset}")
        self.page.wait_for_function(
            """(n) => {
                const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const kernel = w && w.sessionContext && w.sessionContext.session
                    && w.sessionContext.session.kernel;
                return kernel && kernel.connectionStatus === 'connected'
                    && kernel.status === 'idle' && w.context.isReady
                    && w.content.widgets.length === n;
            }""", arg=len(cells), timeout=120_000)

    def start(self, index: int) -> None:
        """Run cell ``index``; return once the kernel has it, before it is done."""
        self.page.evaluate(
            """(k) => {
                const panel = window.jupyterapp.shell.currentWidget;
                panel.content.activeCellIndex = k;
                window.jupyterapp.commands.execute('notebook:run-cell');
            }""", index)
        self.page.wait_for_function(
            """(k) => {
                const cell = window.jupyterapp.shell.currentWidget.content.widgets[k];
                // The prompt is re-rendered as the cell runs: it may be missing for a moment.
                const prompt = cell.node.querySelector('.jp-InputPrompt');
                return cell.model.executionCount !== null
                    || (prompt !== null && prompt.textContent.includes('*'));
            }""", arg=index, timeout=30_000)

    def run(self, index: int, timeout: float = 120) -> None:
        """Run cell ``index`` and wait until the kernel has finished it."""
        try:
            self.start(index)
        except Exception:
            self.shot(f"cell-{index}-did-not-start")
            raise
        self.page.wait_for_function(
            """(k) => {
                const cell = window.jupyterapp.shell.currentWidget.content.widgets[k];
                const prompt = cell.node.querySelector('.jp-InputPrompt');
                return cell.model.executionCount !== null
                    && prompt !== null && !prompt.textContent.includes('*');
            }""", arg=index, timeout=timeout * 1000)

    def theme(self, dark: bool) -> None:
        """Switch JupyterLab to its dark (or light) theme and wait until it is applied."""
        name, light = ("JupyterLab Dark", "false") if dark else ("JupyterLab Light", "true")
        self.page.evaluate(f"window.jupyterapp.commands.execute('apputils:change-theme', "
                           f"{{theme: '{name}'}})")
        self.page.wait_for_function(f"document.body.dataset.jpThemeLight === '{light}'"
                                    " && !document.querySelector('#jupyterlab-splash')",
                                    timeout=30_000)

    def outputs_text(self, index: int) -> str:
        return self.page.evaluate(
            "(k) => window.jupyterapp.shell.currentWidget.content.widgets[k]"
            ".node.querySelector('.jp-OutputArea').innerText", index)

    def close(self) -> None:
        """Shut down every kernel the server runs (each test opens its own notebook)."""
        for session in self.server.api("GET", "/api/sessions"):
            self.server.api("DELETE", f"/api/sessions/{session['id']}")

    def shot_path(self, label: str) -> pathlib.Path:
        """Where screenshot ``label`` goes: test-artifacts/browser/NAME-LABEL.png."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        return ARTIFACTS / f"{self.name}-{label}.png"

    def shot(self, label: str, locator=None) -> pathlib.Path:
        """Save a screenshot of the page, or of ``locator``, as :meth:`shot_path` says."""
        path = self.shot_path(label)
        (locator or self.page).screenshot(path=str(path))
        return path


def _driver(server, page, request):
    driver = Lab(server, page, request.node.name.replace("[", "-").replace("]", ""))
    yield driver
    driver.close()


@pytest.fixture
def lab(jupyterlab, page, request):
    """Drives a notebook in JupyterLab."""
    yield from _driver(jupyterlab, page, request)


@pytest.fixture
def nb7(notebook7, page, request):
    """Drives a notebook in Notebook 7."""
    yield from _driver(notebook7, page, request)

