"""The dashboard reads well: progress from the left, a legend that keeps what happened,
worker lanes without gaps, the graph in declaration order on the theme's background,
keyboard access, a layout that follows the output area's width, light and dark."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

FLOW = '''
import nbflow

flow = nbflow.Flow("readable", workers=3)
tries = []

@flow.task(retries=1, retry_delay=0.05)
def flaky():
    tries.append(1)
    if len(tries) == 1:
        raise RuntimeError("first try fails")

for k in range(5):
    flow.task(lambda: None, name=f"independent{k}")
flow.task(lambda: 1 / 0, name="broken", after=["independent0"])
run = flow.run()
'''


def test_progress_legend_lanes_order_keyboard_and_themes(lab):
    page = lab.page
    lab.open([FLOW, "run.dashboard()", "run.dashboard(collapse_above=2)"])
    lab.run(0)
    lab.run(1)
    first = page.locator(".nbflow-dashboard").first
    expect(first.locator(".nbflow-dag-canvas g.node")).to_have_count(7, timeout=60_000)
    expect(first.locator(".nbflow-status")).to_have_text("failed")

    # Done grows from the left: the first part of the bar is a finished state.
    parts = first.locator(".nbflow-progress > div")
    expect(parts.first).to_have_attribute("data-state", "succeeded")
    # The legend keeps "retrying" although no task is retrying any more.
    expect(first.locator(".nbflow-dag .nbflow-legend")).to_contain_text("retrying")
    # Lanes: as many as were busy at once, three at most, named worker 0..n-1.
    timeline = first.locator(".nbflow-timeline-canvas")
    expect(timeline).to_have_attribute("data-bars", "8")
    assert 1 <= int(timeline.get_attribute("data-rows")) <= 3
    # No white page under the graph: the theme's background shows.
    page_fill = first.locator(".nbflow-dag-canvas g.graph > polygon").get_attribute("fill")
    assert page_fill == "transparent"
    # Independent tasks read top-down in declaration order (measured at one moment: the
    # notebook may scroll between two calls).
    ys = first.evaluate("""(el) => [0, 2, 3, 4, 5].map((i) => el.querySelector(
        `.nbflow-dag-canvas g.node[data-node="t${i}"]`).getBoundingClientRect().y)""")
    lab.shot("1-light-wide", first)
    assert ys == sorted(ys), ys  # the tasks with no edge

    # Keyboard: a node takes focus and Enter selects it; sortable headers are buttons.
    node = first.locator('.nbflow-dag-canvas g.node[data-node="t6"]')
    node.focus()
    page.keyboard.press("Enter")
    expect(first.locator(".nbflow-detail-name")).to_have_text("broken")
    expect(first.locator(".nbflow-table th[data-key=state] button")).to_have_count(1)
    row = first.locator('.nbflow-table tbody tr[data-task="1"]')
    row.focus()
    page.keyboard.press("Enter")
    expect(first.locator(".nbflow-detail-name")).to_have_text("independent0")
    # The timeline's per-task view: one row per task that ran.
    first.locator('.nbflow-timeline-mode[data-mode="tasks"]').click()
    expect(timeline).to_have_attribute("data-rows", "7")
    lab.shot("2-by-task", first.locator(".nbflow-timeline"))

    # The hover card of a folded node goes when the node is expanded.
    lab.run(2)
    folded = page.locator(".nbflow-dashboard").nth(1)
    unit = folded.locator(".nbflow-dag-canvas g.nbflow-unit").first
    expect(unit).to_be_visible(timeout=60_000)
    unit.hover()
    card = folded.locator(".nbflow-dag .nbflow-card")
    expect(card).to_be_visible()
    unit.click()
    expect(card).to_be_hidden()

    # Dark theme: the dashboard follows JupyterLab's colours.
    lab.theme(dark=True)
    first.scroll_into_view_if_needed()
    fg = first.evaluate("(el) => getComputedStyle(el).color")
    assert sum(int(c) for c in fg[fg.index("(") + 1:-1].split(",")[:3]) > 450, fg
    lab.shot("3-dark-wide", first)

    # Narrow: at 820 px the side panel goes below the graph, which keeps the width.
    page.set_viewport_size({"width": 820, "height": 1000})
    page.wait_for_function(
        """(el) => el.querySelector('.nbflow-dag').getBoundingClientRect().width
                   > 0.9 * el.getBoundingClientRect().width""",
        arg=first.element_handle(), timeout=10_000)
    lab.shot("4-dark-narrow", first)
    lab.theme(dark=False)
    lab.shot("5-light-narrow", first)
    assert not page.js_errors, page.js_errors
