"""The dashboard in a real JupyterLab: live states, table, timeline, logs, cancel, folding.

Tasks wait on ``threading.Event``s that later cells set, so each step the test
looks at is a state the run is really in, not a moment a sleep hoped to catch.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

EVIL = "<img src=x onerror=alert(1)>"

LIVE_FLOW = f'''
import threading
import nbflow

flow = nbflow.Flow("browser demo", workers=2)
gate = {{"extract": threading.Event(), "train": threading.Event()}}

@flow.task
def extract():
    print("hello from extract")
    gate["extract"].wait(120)
    return 1

@flow.task
def train(extract):
    gate["train"].wait(120)
    return extract + 1

@flow.task(name={EVIL!r})
def evil(extract):
    print("<script>alert('log')</script>")
    raise ValueError("<b>not bold</b> <img src=x onerror=alert(2)>")

@flow.task
def report(train):
    return train
'''


def node(page, i):
    return page.locator(f'.nbflow-dag-canvas g.node[data-node="t{i}"]')


def test_live_run_states_table_timeline_logs(lab):
    page = lab.page
    lab.open([LIVE_FLOW, "dash = flow.dashboard()\ndash",
              "run = flow.run(background=True)",
              'gate["extract"].set()',
              'gate["train"].set()\nprint(run.wait(120).state)'])
    lab.run(0)
    lab.run(1)
    dashboard = page.locator(".nbflow-dashboard")
    expect(page.locator(".nbflow-dag-canvas g.node")).to_have_count(4, timeout=60_000)
    for i in range(4):
        expect(node(page, i)).to_have_attribute("data-state", "pending")
    lab.shot("1-pending", dashboard)

    lab.run(2)
    expect(node(page, 0)).to_have_attribute("data-state", "running", timeout=30_000)
    expect(node(page, 1)).to_have_attribute("data-state", "pending")
    expect(page.locator(".nbflow-status")).to_have_text("running")
    lab.shot("2-running", dashboard)

    lab.run(3)
    expect(node(page, 0)).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(node(page, 1)).to_have_attribute("data-state", "running", timeout=30_000)
    expect(node(page, 2)).to_have_attribute("data-state", "failed", timeout=30_000)
    expect(node(page, 3)).to_have_attribute("data-state", "pending")
    lab.shot("3-training", dashboard)

    lab.run(4)
    assert "failed" in lab.outputs_text(4)
    expect(node(page, 1)).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(node(page, 3)).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(page.locator(".nbflow-status")).to_have_text("failed", timeout=30_000)

    rows = page.locator(".nbflow-table tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(2).locator("td").nth(1)).to_have_text(EVIL)
    expect(rows.nth(2).locator("td").nth(2)).to_have_text("failed")
    timeline = page.locator(".nbflow-timeline-canvas")
    expect(timeline).to_have_attribute("data-bars", "4")

    node(page, 0).click()
    expect(page.locator(".nbflow-detail-name")).to_have_text("extract")
    expect(page.locator(".nbflow-log")).to_have_text("hello from extract\n")

    graph = page.locator(".nbflow-dag")
    graph.scroll_into_view_if_needed()
    node(page, 2).hover()
    card = page.locator(".nbflow-dag .nbflow-card")
    expect(card).to_be_visible()
    expect(card).to_contain_text(EVIL)
    expect(card).to_contain_text("error: ValueError: <b>not bold</b>")
    box = graph.bounding_box()  # and below it, where the card overhangs
    page.screenshot(path=str(lab.shot_path("4-hover")), clip={**box, "height": box["height"] + 120})
    node(page, 2).click()
    expect(page.locator(".nbflow-detail-name")).to_have_text(EVIL)
    expect(page.locator(".nbflow-detail-error")).to_have_text(
        "ValueError: <b>not bold</b> <img src=x onerror=alert(2)>")
    expect(page.locator(".nbflow-log")).to_have_text("<script>alert('log')</script>\n")
    # The evil name is text in the graph, the table and the detail panel, never markup.
    expect(node(page, 2).locator("text")).to_have_text(EVIL)
    assert dashboard.locator("img, script, b").count() == 0
    lab.shot("5-done", dashboard)

    page.locator(".nbflow-table th[data-key=state]").click()
    expect(rows.nth(0).locator("td").nth(2)).to_have_text("succeeded")
    page.locator(".nbflow-filter").select_option("failed")
    expect(rows).to_have_count(1)
    lab.shot("6-table-filtered", dashboard)
    assert not page.js_errors, page.js_errors


CANCEL_FLOW = '''
import time
import nbflow

flow = nbflow.Flow("cancel demo", workers=2)

def slow():
    while True:  # until the run is cancelled
        nbflow.check_cancelled()
        time.sleep(0.02)

for k in range(4):
    flow.task(slow, name=f"slow{k}")
flow.task(lambda: 1, name="after", after=["slow0", "slow1", "slow2", "slow3"])
'''


def test_cancel_button_cancels_a_background_run(lab):
    page = lab.page
    lab.open([CANCEL_FLOW, "dash = flow.dashboard()\ndash",
              "run = flow.run(background=True)",
              "print(run.wait(60).state, run.counts())"])
    lab.run(0)
    lab.run(1)
    lab.run(2)
    dashboard = page.locator(".nbflow-dashboard")
    expect(page.locator('.nbflow-dag-canvas g.node[data-state="running"]')).to_have_count(
        2, timeout=30_000)
    cancel = page.locator(".nbflow-cancel")
    expect(cancel).to_be_enabled()
    lab.shot("1-running", dashboard)
    cancel.click()
    expect(page.locator(".nbflow-status")).to_have_text("cancelled", timeout=30_000)
    expect(page.locator('.nbflow-dag-canvas g.node[data-state="cancelled"]')).to_have_count(5)
    expect(cancel).to_be_disabled()
    lab.run(3)
    assert "cancelled" in lab.outputs_text(3)
    lab.shot("2-cancelled", dashboard)
    assert not page.js_errors, page.js_errors


BIG_FLOW = '''
import nbflow

flow = nbflow.Flow("big", workers=4)
for k in range(600):
    deps = [f"a{k - 1}"] if k % 100 else []
    flow.task(lambda: None, name=f"a{k}", after=deps)
run = flow.run()
'''


def test_a_large_flow_folds_into_levels_that_expand(lab):
    page = lab.page
    lab.open([BIG_FLOW, "run.dashboard()"])
    lab.run(0)
    lab.run(1)
    dashboard = page.locator(".nbflow-dashboard")
    units = page.locator(".nbflow-dag-canvas g.nbflow-unit")
    # 100 levels of 6 tasks: folded into 50 runs of two levels.
    expect(units).to_have_count(50, timeout=60_000)
    expect(page.locator(".nbflow-status")).to_have_text("succeeded")
    lab.shot("1-folded", dashboard)
    page.locator('.nbflow-dag-canvas g.node[data-node="uL0-1"]').click()
    expect(units).to_have_count(49, timeout=30_000)
    expect(page.locator(".nbflow-dag-canvas g.node[data-state=succeeded]")).to_have_count(12)
    expect(page.locator(".nbflow-collapse")).to_be_visible()
    lab.shot("2-level-0-expanded", dashboard)
    assert not page.js_errors, page.js_errors


def test_the_dashboard_works_in_notebook_7(nb7):
    page = nb7.page
    run_all = ('run = flow.run(background=True)\ngate["extract"].set()\ngate["train"].set()\n'
               "print(run.wait(120).state)")
    nb7.open([LIVE_FLOW, "dash = flow.dashboard()\ndash", run_all])
    nb7.run(0)
    nb7.run(1)
    expect(page.locator(".nbflow-dag-canvas g.node")).to_have_count(4, timeout=60_000)
    nb7.run(2)
    assert "failed" in nb7.outputs_text(2)
    for i, state in enumerate(["succeeded", "succeeded", "failed", "succeeded"]):
        expect(node(page, i)).to_have_attribute("data-state", state, timeout=30_000)
    node(page, 0).click()
    expect(page.locator(".nbflow-log")).to_have_text("hello from extract\n")
    expect(page.locator(".nbflow-table tbody tr")).to_have_count(4)
    nb7.shot("done", page.locator(".nbflow-dashboard"))
    assert page.locator(".nbflow-dashboard").locator("img, script, b").count() == 0
    assert not page.js_errors, page.js_errors


SIDE_TASK = """
gate["side"] = threading.Event()

@flow.task
def side():
    gate["side"].wait(120)
"""


def test_a_page_reloaded_mid_run_catches_up(lab):
    page = lab.page
    lab.open([LIVE_FLOW + SIDE_TASK, "dash = flow.dashboard()\ndash",
              "run = flow.run(background=True, workers=3)", 'gate["extract"].set()',
              'gate["side"].set()', 'gate["train"].set()\nprint(run.wait(120).state)'])
    for k in range(4):
        lab.run(k)
    expect(node(page, 1)).to_have_attribute("data-state", "running", timeout=30_000)
    lab.run(4)
    expect(node(page, 4)).to_have_attribute("data-state", "succeeded", timeout=30_000)
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("!window.jupyterapp.shell.currentWidget.context.model.dirty")
    page.reload()
    # The model comes back from the kernel with its first snapshot (all pending) and
    # only the last diff (side succeeded): the browser sees the gap in the diffs'
    # sequence and asks for the whole table, or extract would look pending.
    expect(node(page, 4)).to_have_attribute("data-state", "succeeded", timeout=60_000)
    expect(node(page, 0)).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(node(page, 1)).to_have_attribute("data-state", "running")
    expect(node(page, 2)).to_have_attribute("data-state", "failed")
    lab.shot("1-reloaded", page.locator(".nbflow-dashboard"))
    lab.run(5)
    expect(node(page, 3)).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(page.locator(".nbflow-status")).to_have_text("failed")
    assert not page.js_errors, page.js_errors


BLOCKING_FLOW = '''
import os
import time
import nbflow

flow = nbflow.Flow("blocking", workers=1)

@flow.task
def first():
    return 1

@flow.task
def waits_for_the_browser(first):
    # Ends once the test has seen this task running in the page and made the file.
    while not os.path.exists("seen-running"):
        time.sleep(0.02)
    return first + 1
'''


def test_a_blocking_run_updates_a_dashboard_shown_before_it(lab):
    page = lab.page
    lab.open([BLOCKING_FLOW, "dash = flow.dashboard()\ndash", "run = flow.run()\nrun.state"])
    lab.run(0)
    lab.run(1)
    expect(page.locator(".nbflow-dag-canvas g.node")).to_have_count(2, timeout=60_000)
    lab.start(2)
    # While the cell is still busy running the flow, the widget shows the run live.
    expect(node(page, 0)).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(node(page, 1)).to_have_attribute("data-state", "running")
    lab.shot("1-live-while-blocking", page.locator(".nbflow-dashboard"))
    (lab.server.root / "seen-running").touch()
    expect(node(page, 1)).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(page.locator(".nbflow-status")).to_have_text("succeeded")
    assert not page.js_errors, page.js_errors
