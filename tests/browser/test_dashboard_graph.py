"""The graph of a flow with maps, groups, phases and pools (issues 10, 11, 12): a map is one
node ``name[N]`` that unfolds on a click, groups and phases are labelled clusters with their
rolled-up state that fold on a click, and a task's hover card and detail say which pool
slots it holds and how full the pool is now; at 5,000 tasks a 5,000-task map is one node."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from nbflow.render import STATE_COLORS

pytestmark = pytest.mark.browser

FLOW = '''
import threading, nbflow
flow = nbflow.Flow("graph parts", workers=3)
flow.pool("db", slots=2)
gate = threading.Event()
with flow.phase("extract"):
    with flow.group("api"):
        flow.task(lambda: 1, name="fetch")
    flow.map(lambda x: x * 2, over=range(12), name="clean", after=["fetch"])
with flow.phase("load"):
    flow.task(lambda: gate.wait(120), name="load", resources={"db": 1})
    flow.task(lambda: gate.wait(120), name="index", resources={"db": 1})
    for k in range(10):
        flow.task(lambda: None, name=f"check{k}", after=["load"])
flow.task(lambda: None, name="report", after=["check9"])
run = flow.run(background=True)
'''

THEME = ("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab %s'})")


def _theme(page, name: str) -> None:
    page.evaluate(THEME % name)
    light = "true" if name == "Light" else "false"
    page.wait_for_function(f"document.body.dataset.jpThemeLight === '{light}'"
                           " && !document.querySelector('#jupyterlab-splash')", timeout=30_000)


def _shots(lab, dash) -> None:
    """Screenshots light and dark, wide and narrow (820 px), for a person to look at."""
    page = lab.page
    for k, (theme, width) in enumerate([("Light", 1400), ("Dark", 1400), ("Dark", 820),
                                        ("Light", 820)]):
        _theme(page, theme)
        page.set_viewport_size({"width": width, "height": 1000})
        dash.scroll_into_view_if_needed()
        page.wait_for_timeout(300)  # the container query lays the panel out again
        lab.shot(f"{k + 1}-{theme.lower()}-{'wide' if width > 1000 else 'narrow'}", dash)
    page.set_viewport_size({"width": 1400, "height": 1000})


def _dashboard(lab, cells: list[str]):
    """Open a notebook of ``cells``, run the first two (the flow, its dashboard): the
    dashboard and its graph's canvas."""
    lab.open(cells)
    lab.run(0, timeout=300)
    lab.run(1)
    dash = lab.page.locator(".nbflow-dashboard").first
    return dash, dash.locator(".nbflow-dag-canvas")


def _node(dash, name: str):
    return dash.locator(".nbflow-dag-canvas g.node", has_text=re.compile(rf"^\s*{re.escape(name)}\s*$"))


def test_maps_groups_phases_and_pools_in_the_graph(lab):
    page = lab.page
    dash, canvas = _dashboard(lab, [FLOW, "run.dashboard()", "gate.set()\nrun.wait(120).state"])

    # The twelve items of the map are one node, clean[12], with a bar of their states.
    mapped = canvas.locator('g.node[data-node="uM0"]')
    expect(mapped).to_contain_text("clean[12]", timeout=60_000)
    expect(canvas.locator("g.node")).to_have_count(1 + 1 + 2 + 10 + 1)
    expect(mapped.locator(".nbflow-unit-bar rect").first).to_be_attached()

    # Groups and phases are clusters; phases are labelled in order, left to right.
    extract = canvas.locator("g.cluster", has_text="phase 1 · extract")
    load = canvas.locator("g.cluster", has_text="phase 2 · load")
    expect(canvas.locator("g.cluster", has_text=re.compile(r"^\s*api · "))).to_have_count(1)
    expect(extract).to_contain_text("phase 1 · extract · succeeded", timeout=30_000)
    expect(load).to_contain_text("phase 2 · load · running")
    assert extract.bounding_box()["x"] + extract.bounding_box()["width"] \
        <= load.bounding_box()["x"] + 1

    # Hover card and detail: the pool slots a task holds and the pool's use now.
    task = _node(dash, "load")
    expect(task).to_have_attribute("data-state", "running", timeout=30_000)
    expect(_node(dash, "index")).to_have_attribute("data-state", "running")
    task.hover()
    card = dash.locator(".nbflow-dag .nbflow-card")
    expect(card).to_contain_text("pool db: 1 of 2 slots, 2 of 2 in use now")
    task.click()
    expect(dash.locator(".nbflow-detail dl")).to_contain_text("pooldb: 1 of 2 slots, 2 of 2 in use now")
    mapped.hover()
    expect(card).to_contain_text("12 mapped tasks")
    expect(card).to_contain_text("state: succeeded")
    _shots(lab, dash)

    # A click unfolds the map into its tasks.
    mapped.click()
    expect(_node(dash, "clean[11]")).to_have_count(1, timeout=30_000)
    expect(canvas.locator('g.node[data-node="uM0"]')).to_have_count(0)
    # A click on a cluster's label folds its group into one node, with its state.
    extract.locator("text.nbflow-cluster-label").click()
    folded = canvas.locator("g.nbflow-unit-group", has_text="phase 1 · extract")
    expect(folded).to_have_count(1, timeout=30_000)
    expect(folded).to_have_attribute("data-rollup", "succeeded")
    expect(_node(dash, "clean[11]")).to_have_count(0)
    lab.shot("5-folded-group", dash)

    lab.run(2)
    expect(load).to_contain_text("phase 2 · load · succeeded", timeout=30_000)
    task.hover()
    expect(card).to_contain_text("pool db: 1 of 2 slots, 0 of 2 in use now")
    lab.shot("6-done", dash)
    assert not page.js_errors, page.js_errors


FAILED = STATE_COLORS["failed"]
BIG = '''
import nbflow
flow = nbflow.Flow("big map", workers=4)
flow.task(lambda: 1, name="fetch")
flow.map(lambda x: 1 / 0 if x == 4321 else x, over=range(5000), name="clean", after=["fetch"])
flow.task(lambda parts: len(parts), name="join", inputs={"parts": flow.each("clean")},
          trigger="all_done")
run = flow.run()
'''


def test_a_five_thousand_task_map_is_one_node(lab):
    page = lab.page
    dash, canvas = _dashboard(lab, [BIG, "run.dashboard()"])
    mapped = canvas.locator('g.node[data-node="uM0"]')
    expect(mapped).to_contain_text("clean[5,000]", timeout=60_000)
    expect(canvas.locator("g.node")).to_have_count(3)
    expect(mapped).to_have_attribute("data-rollup", "failed", timeout=30_000)
    # The one failed item of 5,000 shows in the bar (2 px), after the succeeded part.
    failed = mapped.locator(f'.nbflow-unit-bar rect[fill="{FAILED}"]')
    assert failed.evaluate("(r) => r.getBBox().width") >= 2
    mapped.hover()
    card = dash.locator(".nbflow-dag .nbflow-card")
    expect(card).to_contain_text("succeeded: 4,999")
    expect(card).to_contain_text("failed: 1")
    _shots(lab, dash)
    # "failed ›" finds the map; opened, it is parts of 300, and the failed item's part
    # is the one revealed.
    dash.locator('.nbflow-jump[data-state="failed"]').click()
    expect(mapped).to_have_class(re.compile(r"\bnbflow-reveal\b"))
    mapped.click()
    expect(canvas.locator("g.nbflow-unit-map")).to_have_count(17, timeout=30_000)
    expect(canvas.locator("g.nbflow-unit-map", has_text="clean[4200–4499]")).to_have_attribute(
        "data-rollup", "failed")
    lab.shot("5-opened", dash)
    assert not page.js_errors, page.js_errors
