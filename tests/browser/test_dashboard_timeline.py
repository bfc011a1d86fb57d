"""The timeline's lanes are the workers that ran, whatever the clocks say, and the by-task
view keeps its labels at any width."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# One task in seven fails once and is retried: its failure carries the worker's own start
# time, a little before the engine counted the previous attempt on that worker done.
FLOW = '''
import nbflow

flow = nbflow.Flow("lanes", workers=4)
failed_once = set()

def task(k):
    def body():
        if k % 7 == 0 and k not in failed_once:
            failed_once.add(k)
            raise RuntimeError("first try fails")
    return body

for k in range(600):
    flow.task(task(k), name=f"t{k}", after=[f"t{k - 100}"] if k >= 100 else [],
              retries=1, retry_delay=0)
run = flow.run()
'''


def test_lanes_are_the_workers_and_by_task_labels_survive_narrow(lab):
    page = lab.page
    lab.open([FLOW, "run.dashboard()"])
    lab.run(0, timeout=300)
    lab.run(1)
    dash = page.locator(".nbflow-dashboard")
    expect(dash.locator(".nbflow-status")).to_have_text("succeeded", timeout=60_000)
    timeline = dash.locator(".nbflow-timeline-canvas")
    expect(timeline).to_have_attribute("data-bars", str(600 + 86))
    # Four workers ran, so four lanes: never a "worker 4".
    expect(timeline).to_have_attribute("data-rows", "4")
    lab.shot("1-wide-workers", dash.locator(".nbflow-timeline"))
    dash.locator('.nbflow-timeline-mode[data-mode="tasks"]').click()
    expect(timeline).to_have_attribute("data-rows", "600")
    # However narrow, every label shown whole and the bars with room: below 340 px each
    # row's label goes on a line above its bars.
    for width in (1400, 820, 560):
        page.set_viewport_size({"width": width, "height": 1000})
        page.wait_for_function(
            """(c) => Math.abs(c.width / devicePixelRatio - c.parentElement.clientWidth) < 2
                      && c.dataset.plot !== undefined""", arg=timeline.element_handle())
        canvas_width = timeline.evaluate("(c) => c.clientWidth")
        expect(timeline).to_have_attribute("data-clipped", "0")
        assert int(timeline.get_attribute("data-plot")) >= 0.6 * canvas_width
        lab.shot(f"2-by-task-{width}", dash.locator(".nbflow-timeline"))
    expect(timeline).to_have_attribute("data-labels", "stacked")
    lab.theme(dark=True)
    page.wait_for_timeout(300)
    lab.shot("3-by-task-narrow-dark", dash.locator(".nbflow-timeline"))
    lab.theme(dark=False)
    assert not page.js_errors, page.js_errors
