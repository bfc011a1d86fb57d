"""The dashboard's parts are widgets of their own, live in any ipywidgets layout, and
``run.on_event`` drives a widget of the user's own."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

CELLS = ['''
import threading
import ipywidgets as W
import nbflow
from nbflow.notebook.widgets import RunGraph, RunHeader, RunTable, RunTimeline

flow = nbflow.Flow("parts", workers=2)
gate = threading.Event()
flow.task(lambda: gate.wait(120), name="waits")
flow.task(lambda: 1, name="after", after=["waits"])
run = flow.run(background=True)
''', '''
done = W.IntText(description="done")

def count(events):  # on the listener's thread, throttled
    done.value += sum(e["to"] == "succeeded" for e in events)

run.on_event(count)
tabs = W.Tab([RunTimeline(run), RunHeader(run)])
tabs.set_title(0, "timeline")
tabs.set_title(1, "header")
W.VBox([W.HBox([RunGraph(run), RunTable(run)]), tabs, done])
''', "gate.set()\nrun.wait(60).state"]


def test_parts_in_an_hbox_and_a_tab_follow_the_run(lab):
    page = lab.page
    lab.open(CELLS)
    lab.run(0)
    lab.run(1)
    graphs = page.locator(".nbflow-dashboard .nbflow-dag")
    expect(graphs).to_have_count(1, timeout=60_000)
    node = page.locator('.nbflow-dag-canvas g.node[data-node="t0"]')
    expect(node).to_have_attribute("data-state", "running", timeout=30_000)
    table = page.locator(".nbflow-dashboard .nbflow-table")
    expect(table).to_have_count(1)
    expect(page.locator(".nbflow-dashboard .nbflow-header")).to_have_count(1)
    expect(page.locator(".nbflow-dashboard .nbflow-timeline")).to_have_count(1)
    # Each part is only its part: no second header, no second table; side by side in
    # the HBox, the graph and the table share the row.
    assert page.locator(".nbflow-dashboard").count() == 4
    for part in (graphs, table):
        assert part.bounding_box()["width"] > 300
    lab.shot("1-running", page.locator(".jp-Cell").nth(1))
    lab.run(2)
    expect(node).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(table.locator("tbody tr").nth(1).locator(".nbflow-badge")).to_have_text("succeeded")
    expect(page.locator(".widget-text input")).to_have_value("2", timeout=10_000)
    page.locator(".lm-TabBar-tab", has_text="header").click()
    expect(page.locator(".nbflow-header .nbflow-status")).to_have_text("succeeded")
    lab.shot("2-done", page.locator(".jp-Cell").nth(1))
    assert not page.js_errors, page.js_errors
