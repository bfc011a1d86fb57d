"""The selected task's detail, live: its output streams while it runs, each attempt of a
retried task is listed with its own error and output, ANSI colours render, and a resumed
run says which run its restored tasks come from."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

FLOW = r'''
import threading
import nbflow

flow = nbflow.Flow("detail", workers=2)
gate = threading.Event()
tries = []

@flow.task(retries=2, retry_delay=0.05)
def flaky():
    tries.append(1)
    print(f"\x1b[31mtry {len(tries)}\x1b[0m plain")
    if len(tries) < 3:
        raise RuntimeError(f"try {len(tries)} fails")

@flow.task
def talky():
    print("line 1")
    gate.wait(120)
    print("line 2")
'''


def test_streaming_output_attempts_ansi_and_restored_tasks(lab):
    page = lab.page
    lab.open([FLOW, "dash = flow.dashboard()\ndash", "run = flow.run(background=True)",
              "gate.set()\nprint(run.wait(60).state)", "again = flow.run(resume=run.id)",
              "print(run.id)"])
    lab.run(0)
    lab.run(1)
    dashboard = page.locator(".nbflow-dashboard")
    expect(dashboard.locator(".nbflow-dag-canvas g.node")).to_have_count(2, timeout=60_000)
    lab.run(2)
    rows = dashboard.locator(".nbflow-table tbody tr")
    expect(dashboard.locator('.nbflow-dag-canvas g.node[data-node="t1"]')).to_have_attribute(
        "data-state", "running", timeout=30_000)
    rows.nth(1).click()
    # What talky printed shows while it still runs (it waits for the gate).
    expect(dashboard.locator(".nbflow-attempt .nbflow-log")).to_have_text("line 1\n",
                                                                           timeout=5_000)
    expect(dashboard.locator(".nbflow-attempt summary")).to_contain_text("so far")
    lab.shot("1-streaming", dashboard)

    # flaky: three attempts, each with its state, error and output; colours rendered.
    expect(dashboard.locator('.nbflow-dag-canvas g.node[data-node="t0"]')).to_have_attribute(
        "data-state", "succeeded", timeout=30_000)
    rows.nth(0).click()
    attempts = dashboard.locator(".nbflow-attempt")
    expect(attempts).to_have_count(3)
    expect(attempts.nth(0).locator("summary")).to_contain_text("retrying attempt 1")
    expect(attempts.nth(0).locator(".nbflow-detail-error")).to_have_text("RuntimeError: try 1 fails")
    expect(attempts.nth(1).locator(".nbflow-detail-error")).to_have_text("RuntimeError: try 2 fails")
    expect(attempts.nth(2).locator("summary")).to_contain_text("succeeded attempt 3")
    attempts.nth(0).locator("summary").click()
    red = attempts.nth(0).locator(".nbflow-log span.ansi-red-fg")
    expect(red).to_have_text("try 1")
    # In the theme's red, not the text colour around it.
    assert red.evaluate("(el) => getComputedStyle(el).color") != attempts.nth(0).locator(
        ".nbflow-log").evaluate("(el) => getComputedStyle(el).color")
    expect(attempts.nth(0).locator(".nbflow-log")).to_have_text("try 1 plain\n")
    assert "\x1b" not in attempts.nth(0).locator(".nbflow-log").inner_text()
    lab.shot("2-attempts", dashboard)

    lab.run(3)
    lab.run(4)
    lab.run(5)
    first_run = lab.outputs_text(5).strip()
    expect(dashboard.locator(".nbflow-status")).to_have_text("succeeded", timeout=30_000)
    expect(dashboard.locator(".nbflow-title")).to_contain_text(f"(resumes run {first_run})")
    rows.nth(0).click()
    expect(dashboard.locator(".nbflow-restored")).to_contain_text(
        f"restored from run {first_run}")
    expect(rows.nth(0).locator("td").nth(4)).to_have_text("restored")
    lab.shot("3-restored", dashboard)
    assert not page.js_errors, page.js_errors


CANCEL_FLOW = '''
import time
import nbflow

flow = nbflow.Flow("grace", workers=2)

def polite():
    while True:
        nbflow.check_cancelled()
        time.sleep(0.02)

def stubborn():
    while True:  # never asks whether the run was cancelled
        time.sleep(0.02)

flow.task(polite, name="polite")
flow.task(stubborn, name="stubborn")
flow.task(lambda: 1, name="later", after=["polite", "stubborn"])
run = flow.run(background=True)
'''


def test_cancelling_says_what_still_runs_and_what_was_abandoned(lab):
    page = lab.page
    lab.open([CANCEL_FLOW, "run.dashboard()"])
    lab.run(0)
    lab.run(1)
    dashboard = page.locator(".nbflow-dashboard")
    expect(dashboard.locator('.nbflow-dag-canvas g.node[data-state="running"]')).to_have_count(
        2, timeout=60_000)
    dashboard.locator(".nbflow-cancel").click()
    note = dashboard.locator(".nbflow-cancel-note")
    expect(note).to_contain_text("cancelling (cancelled from the dashboard): still running "
                                 "stubborn. A running task stops at its next "
                                 "nbflow.check_cancelled(); one that never calls it is "
                                 "abandoned in ", timeout=10_000)
    lab.shot("1-grace", dashboard)
    expect(dashboard.locator(".nbflow-status")).to_have_text("cancelled", timeout=30_000)
    expect(note).to_have_text("1 task was abandoned: still running when the 10 s grace period "
                              "ended (they never called nbflow.check_cancelled()); their "
                              "results are discarded, and their threads may still be running.")
    dashboard.locator('.nbflow-table tbody tr[data-task="1"]').click()
    expect(dashboard.locator(".nbflow-detail .nbflow-restored")).to_contain_text(
        "abandoned: still running when the cancel's grace period ended")
    lab.shot("2-abandoned", dashboard)
    assert not page.js_errors, page.js_errors
