"""The figures of docs/dashboard.md: time to the first drawn graph, and to a true picture
after a reload, mid-run and after the run, at 30, 500, 5,000 and 20,000 tasks.

Slow (a 20,000-task run in the kernel): ``-m slow``, one size at a time (``-k 5000``):
after several reloads in one session JupyterLab's restored workspace can get in the way of
the next notebook. It writes its row to test-artifacts/browser/figures.md and fails only if
a reload takes more than a second to show the truth.
"""

from __future__ import annotations

import time

import pytest
from conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FLOW = '''
import threading, nbflow
flow = nbflow.Flow("figures", workers=4)
gate = threading.Event()
WIDTH = max(1, {n} // 50)
flow.task(lambda: gate.wait(300), name="gate")
for k in range({n} - 1):
    flow.task(lambda: None, name=f"t{{k}}", after=[f"t{{k - WIDTH}}"] if k >= WIDTH else ["gate"])
'''

TRUE = """(n) => {
    const chip = document.querySelector('.nbflow-chip[data-state="succeeded"]');
    return chip && Number(chip.textContent.split(' ').pop().replace(/,/g, '')) === n;
}"""
ROWS: list[str] = []


@pytest.mark.parametrize("n", [30, 500, 5000, 20000])
def test_figures(lab, n):
    page = lab.page
    lab.open([FLOW.format(n=n), "run = flow.run(background=True)",
              "dash = run.dashboard()\ndash", "gate.set()\nrun.wait(600).state"])
    lab.run(0, timeout=300)
    lab.run(1)
    started = time.monotonic()
    lab.start(2)
    page.wait_for_selector(".nbflow-dag-canvas g.node", timeout=120_000)
    first = time.monotonic() - started
    # Mid-run (the gate holds every task but one back): reload, time to the true counts.
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("!window.jupyterapp.shell.currentWidget.context.model.dirty")
    page.reload()
    page.wait_for_selector(".nbflow-chip", timeout=120_000)
    shown = time.monotonic()
    page.wait_for_function("""() => document.querySelector('.nbflow-chip[data-state="running"]')
                           !== null""", timeout=30_000)
    mid = time.monotonic() - shown
    lab.run(3, timeout=600)
    page.wait_for_function(TRUE, arg=n, timeout=120_000)
    page.reload()
    page.wait_for_selector(".nbflow-chip", timeout=120_000)
    shown = time.monotonic()
    page.wait_for_function(TRUE, arg=n, timeout=120_000)
    after = time.monotonic() - shown
    # A reloaded page restores its workspace: close the notebook, or the next test's page
    # would open this one beside its own.
    page.evaluate("window.jupyterapp.commands.execute('application:close-all')")
    ROWS.append(f"| {n:,} | {first:.2f} s | {mid:.2f} s | {after:.2f} s |")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "figures.md").write_text(
        "| tasks | first drawn graph | true after a reload, mid-run | true after a reload, "
        "after the run |\n| ---: | ---: | ---: | ---: |\n" + "\n".join(ROWS) + "\n")
    assert mid < 1.0 and after < 1.0
