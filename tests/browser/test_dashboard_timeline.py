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


def finished_dashboard(lab, flow: str):
    """Run ``flow`` (its cell runs it to its end), show its dashboard; the dashboard and
    its timeline's canvas."""
    lab.open([flow, "run.dashboard()"])
    lab.run(0, timeout=300)
    lab.run(1)
    dash = lab.page.locator(".nbflow-dashboard")
    expect(dash.locator(".nbflow-status")).to_have_text("succeeded", timeout=60_000)
    return dash, dash.locator(".nbflow-timeline-canvas")


def test_lanes_are_the_workers_and_by_task_labels_survive_narrow(lab):
    page = lab.page
    dash, timeline = finished_dashboard(lab, FLOW)
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


POOL_FLOW = '''
import time
import nbflow

flow = nbflow.Flow("pools", workers=4)
flow.pool("db", slots=2)
for k in range(5):
    flow.task(lambda: time.sleep(0.1), name=f"load{k}", resources={"db": 1})
flow.task(lambda: time.sleep(0.1), name="big", resources={"db": 2})
flow.task(lambda: time.sleep(0.1), name="free")
run = flow.run()
'''


def test_the_timeline_shows_which_pool_slots_each_task_held(lab):
    page = lab.page
    dash, timeline = finished_dashboard(lab, POOL_FLOW)
    dash.locator('.nbflow-timeline-mode[data-mode="pools"]').click()
    # Two lanes, the pool's two slots; five attempts in one each, "big" in both, "free"
    # in none.
    expect(timeline).to_have_attribute("data-rows", "2")
    expect(timeline).to_have_attribute("data-drawn", "7")
    lab.shot("1-by-pool", dash.locator(".nbflow-timeline"))
    lab.theme(dark=True)
    lab.shot("2-by-pool-dark", dash.locator(".nbflow-timeline"))
    lab.theme(dark=False)
    # A run without pools has no such view.
    lab.open(["import nbflow\nflow = nbflow.Flow('no pools')\nflow.task(lambda: 1, name='a')\n"
              "run = flow.run()", "run.dashboard()"])
    lab.run(0)
    lab.run(1)
    expect(page.locator(".nbflow-dashboard .nbflow-status")).to_have_text("succeeded",
                                                                          timeout=60_000)
    expect(page.locator('.nbflow-timeline-mode[data-mode="pools"]')).to_be_hidden()
    assert not page.js_errors, page.js_errors


# A wide level grows an adaptive cluster, a long tail shrinks it back to one worker.
ADAPTIVE_FLOW = '''
import time
import dask
import nbflow
from nbflow.executors import DaskExecutor

flow = nbflow.Flow("adaptive")
def nap():
    time.sleep(0.4)
for k in range(16):
    flow.task(nap, name=f"wide{k}")
for k in range(10):
    flow.task(nap, name=f"tail{k}", after=[f"tail{k - 1}"] if k else [f"wide{j}" for j in range(16)])
with dask.config.set({"distributed.adaptive.interval": "100ms",
                      "distributed.adaptive.wait-count": 2,
                      "distributed.adaptive.target-duration": "1s"}):
    run = flow.run(executor=DaskExecutor(processes=False, minimum=1, maximum=4))
tail_workers = {e[7]["worker"] for e in run.store.events(run.id)
                if e[5] == "succeeded" and e[2].startswith("tail")}
'''


def test_on_an_adaptive_dask_cluster_each_worker_has_its_lane(lab):
    page = lab.page
    dash, timeline = finished_dashboard(lab, ADAPTIVE_FLOW)
    expect(timeline).to_have_attribute("data-bars", "26")
    # One lane per Dask worker that ran something (its address): more than the one
    # left at the end, whose lane alone goes on through the tail.
    lanes = timeline.get_attribute("data-lanes").split(" | ")
    assert 3 <= len(lanes) <= 4, lanes
    assert not [lane for lane in lanes if lane.startswith(("worker ", "running", "inproc:"))]
    assert timeline.get_attribute("data-rows") == str(len(lanes))
    lab.shot("4-adaptive-dask", dash.locator(".nbflow-timeline"))
    lab.theme(dark=True)
    page.wait_for_timeout(300)
    lab.shot("5-adaptive-dask-dark", dash.locator(".nbflow-timeline"))
    lab.theme(dark=False)
    assert not page.js_errors, page.js_errors
