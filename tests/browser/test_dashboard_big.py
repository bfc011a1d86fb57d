"""A 5,000-task flow can be navigated: jump to failed or running tasks, selection and
search marked in the folded graph, zoom, an expanded level as a grid, and an unfolded
graph that does not freeze the page."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

FLOW = '''
import nbflow

flow = nbflow.Flow("five thousand", workers=4)
for k in range(5000):
    flow.task(lambda: None, name=f"t{k}", after=[f"t{k - 100}"] if k >= 100 else [])
flow.task(lambda: 1 / 0, name="broken", after=["t4321"])
run = flow.run()
'''


def test_a_five_thousand_task_flow_can_be_navigated(lab):
    page = lab.page
    lab.open([FLOW, "run.dashboard()", "run.dashboard(collapse_above=None)"])
    lab.run(0, timeout=300)
    lab.run(1)
    dash = page.locator(".nbflow-dashboard").first
    units = dash.locator(".nbflow-dag-canvas g.nbflow-unit")
    expect(units).to_have_count(50, timeout=60_000)
    expect(dash.locator(".nbflow-status")).to_have_text("failed", timeout=30_000)
    lab.shot("1-folded", dash)

    # "failed ›" brings the folded node that holds the failed task into view.
    dash.locator('.nbflow-jump[data-state="failed"]').click()
    holder = dash.locator('.nbflow-dag-canvas g.node[data-node="uL44"]')
    expect(holder).to_have_class(re.compile(r"\bnbflow-reveal\b"))
    assert holder.evaluate("""(g) => { const b = g.getBoundingClientRect(),
        c = g.closest('.nbflow-dag-canvas').getBoundingClientRect();
        return b.left >= c.left && b.right <= c.right; }""")
    # Selecting the task in the table marks the node that holds it.
    dash.locator(".nbflow-filter").select_option("failed")
    dash.locator(".nbflow-table tbody tr").first.click()
    expect(holder).to_have_class(re.compile(r"\bnbflow-selected\b"))
    # A search marks the nodes holding matches.
    dash.locator(".nbflow-search").fill("t1234")
    expect(dash.locator(".nbflow-dag-canvas g.nbflow-match")).to_have_count(1)
    expect(dash.locator('.nbflow-dag-canvas g.node[data-node="uL12"]')).to_have_class(
        re.compile(r"\bnbflow-match\b"))
    lab.shot("2-found", dash)

    canvas = dash.locator(".nbflow-dag-canvas")
    dash.locator(".nbflow-dag .nbflow-zoom", has_text="+").click()
    assert canvas.get_attribute("data-scale") not in (None, "fit")
    dash.locator(".nbflow-dag .nbflow-fit").click()
    expect(canvas).to_have_attribute("data-scale", "fit")

    # An expanded level of 100 tasks is a grid, not one column.
    dash.locator('.nbflow-dag-canvas g.node[data-node="uL5"]').click()
    tasks = dash.locator(".nbflow-dag-canvas g.node:not(.nbflow-unit)")
    expect(tasks).to_have_count(100, timeout=30_000)
    columns = tasks.evaluate_all("(gs) => new Set(gs.map((g) => Math.round("
                                 "g.getBoundingClientRect().left))).size")
    assert columns >= 8, columns
    lab.shot("3-level-expanded", dash)

    # Unfolded, 5,001 tasks wait for the user to ask, rather than freeze the page.
    started = time.monotonic()
    lab.run(2)
    unfolded = page.locator(".nbflow-dashboard").nth(1)
    expect(unfolded.locator(".nbflow-draw-all")).to_be_visible(timeout=30_000)
    assert page.evaluate("1 + 1") == 2 and time.monotonic() - started < 30
    lab.shot("4-unfolded-asks", unfolded)
    assert not page.js_errors, page.js_errors
