"""``voila notebook.ipynb`` serves a notebook whose dashboard is live and whose Cancel
button works (Voila runs the cells like nbclient, with no cell id, and says so in the
kernel's environment: nbflow gives it the live widget, not the static picture)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest
from conftest import ARTIFACTS, _free_port
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

NOTEBOOK = ['''
import time
import nbflow

flow = nbflow.Flow("voila demo", workers=2)

def spin():
    while True:  # until the run is cancelled
        nbflow.check_cancelled()
        time.sleep(0.02)

flow.task(lambda: 1, name="quick")
for k in range(2):
    flow.task(spin, name=f"spin{k}", after=["quick"])
run = flow.run(background=True)
''', "run.dashboard()"]


@pytest.fixture
def voila(tmp_path, browser):
    pytest.importorskip("voila")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp_path / "app.ipynb")
    port = _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("NBFLOW_STORE", None)
    log = open(tmp_path / "voila.log", "wb")  # noqa: SIM115 - open while the server runs
    proc = subprocess.Popen([sys.executable, "-m", "voila", "app.ipynb", "--no-browser",
                             f"--port={port}", "--Voila.ip=127.0.0.1"],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "voila.log").read_text()[-3000:]) from None
            time.sleep(0.2)  # polling a server that is starting up
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(20)
    log.close()


def test_voila_serves_a_live_dashboard_whose_cancel_works(voila, page):
    page.goto(voila, timeout=120_000)
    dashboard = page.locator(".nbflow-dashboard")
    expect(page.locator('.nbflow-dag-canvas g.node[data-state="running"]')).to_have_count(
        2, timeout=120_000)
    expect(page.locator(".nbflow-static")).to_be_hidden()
    cancel = page.locator(".nbflow-cancel")
    expect(cancel).to_be_enabled()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dashboard.screenshot(path=str(ARTIFACTS / "voila-1-running.png"))
    cancel.click()
    expect(page.locator(".nbflow-status")).to_have_text("cancelled", timeout=30_000)
    expect(page.locator('.nbflow-dag-canvas g.node[data-state="succeeded"]')).to_have_count(1)
    dashboard.screenshot(path=str(ARTIFACTS / "voila-2-cancelled.png"))
    assert not page.js_errors, page.js_errors
