"""A simulation's widgets in a real JupyterLab: the step view's buttons, the dashboard of a
finished simulation (30 and 5,000 tasks), the Gantt chart as the live timeline, and the
static pictures a saved notebook shows once its kernel is gone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

TEACH = '''
import nbflow

flow = nbflow.Flow("teach")
flow.task(lambda: 1, name="extract")
flow.task(lambda: 1, name="<i>clean</i>", after=["extract"])
flow.task(lambda: 1, name="features", after=["extract"])
flow.task(lambda: 1, name="report", after=["<i>clean</i>", "features"])
DURATIONS = {"extract": 2, "<i>clean</i>": 3, "features": 1, "report": 1}
'''


def node(page, i: int):
    return page.locator(f'.nbflow-dag-canvas g.node[data-node="t{i}"]')


def dark(page) -> None:
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', "
                  "{theme: 'JupyterLab Dark'})")
    page.wait_for_function("document.body.dataset.jpThemeLight === 'false'"
                           " && !document.querySelector('#jupyterlab-splash')", timeout=30_000)


@pytest.fixture
def lab(lab):
    """The conftest's, and the light theme again afterwards (the theme is a server setting:
    it would stay dark for the tests after these)."""
    yield lab
    lab.page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', "
                      "{theme: 'JupyterLab Light'})")


def reopen_without_kernel(lab) -> None:
    page = lab.page
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("!window.jupyterapp.shell.currentWidget.context.model.dirty")
    lab.close()  # the kernel is gone, and its widgets with it
    page.reload()


def test_the_step_view_steps_runs_and_resets_from_the_browser(lab):
    page = lab.page
    lab.open([TEACH, "sim = flow.simulate(workers=1, durations=DURATIONS, step=True)\nsim",
              "print(sim.step())"])
    lab.run(0)
    lab.run(1)
    panel = page.locator(".nbflow-stepper")
    time, said = panel.locator(".nbflow-step-time"), panel.locator(".nbflow-step-said")
    ready = panel.locator('[data-set="ready"] .nbflow-step-item')
    running = panel.locator('[data-set="running"] .nbflow-step-item')
    finished = panel.locator('[data-set="finished"] .nbflow-step-item')
    step, run = panel.locator('[data-action="step"]'), panel.locator('[data-action="run"]')
    reset = panel.locator('[data-action="reset"]')
    expect(page.locator(".nbflow-dag-canvas g.node")).to_have_count(4, timeout=60_000)
    expect(page.locator(".nbflow-static")).to_be_hidden()  # the live view stands in for it
    expect(time).to_have_text("t = 0 s")
    expect(running).to_have_text(["extract · worker 0"])
    expect(node(page, 0)).to_have_attribute("data-state", "running")
    lab.shot("0-start", page.locator(".nbflow-dashboard"))

    # The kernel is idle: the click is a step, done in the message's handler.
    step.click()
    expect(time).to_have_text("t = 2 s")
    expect(node(page, 0)).to_have_attribute("data-state", "succeeded")
    expect(node(page, 1)).to_have_attribute("data-state", "running")
    expect(ready).to_have_text(["features"])   # one worker: it waits, in the policy's order
    expect(running).to_have_text(["<i>clean</i> · worker 0"])   # a name, not markup
    expect(finished).to_have_text(["extract"])
    expect(said).to_contain_text("t=2s: extract running -> succeeded")
    expect(page.locator(".nbflow-timeline-canvas")).to_have_attribute("data-bars", "2")
    lab.shot("1-stepped", page.locator(".nbflow-dashboard"))

    # A step from a cell moves the widget too.
    lab.run(2)
    expect(time).to_have_text("t = 5 s")
    expect(running).to_have_text(["features · worker 0"])

    run.click()
    expect(time).to_have_text("t = 7 s")
    expect(finished).to_have_count(4)
    for i in range(4):
        expect(node(page, i)).to_have_attribute("data-state", "succeeded")
    expect(step).to_be_disabled()
    expect(run).to_be_disabled()
    expect(page.locator(".nbflow-timeline-canvas")).to_have_attribute("data-bars", "4")
    lab.shot("2-run-light", page.locator(".nbflow-dashboard"))
    dark(page)
    lab.shot("2-run-dark", page.locator(".nbflow-dashboard"))

    reset.click()
    expect(time).to_have_text("t = 0 s")
    expect(node(page, 0)).to_have_attribute("data-state", "running")
    expect(node(page, 3)).to_have_attribute("data-state", "pending")
    expect(finished).to_have_count(0)
    expect(step).to_be_enabled()
    step.click()
    expect(time).to_have_text("t = 2 s")
    lab.shot("3-reset-and-stepped-dark", page.locator(".nbflow-dashboard"))
    assert not page.js_errors, page.js_errors

    # Saved and reopened without its kernel: the picture of where the steps stood.
    reopen_without_kernel(lab)
    picture = page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea")
    expect(picture.locator(".nbflow-static")).to_be_visible(timeout=60_000)
    expect(picture).to_contain_text("step by step · t = 2 s")
    expect(picture).to_contain_text("ready, in the policy's order (1): features")
    expect(picture).to_contain_text("running (1): <i>clean</i>")
    expect(picture).to_contain_text("stepping · pending: 1 ready: 1 running: 1 succeeded: 1")
    expect(page.locator(".jp-Cell").nth(1).locator(".nbflow-static svg g.node")
           ).to_have_count(4)
    expect(page.locator(".nbflow-dashboard")).to_have_count(0)
    lab.shot("4-reopened-dark", page.locator(".jp-Cell").nth(1))


def test_a_reset_and_the_steps_reach_every_view_of_the_simulation(lab):
    # The step view in cell 1, the same simulation's dashboard in cell 2: a click in one,
    # or a step from a cell, moves both; a reset takes both back to the start.
    page = lab.page
    page.set_viewport_size({"width": 1400, "height": 1800})
    lab.open([TEACH, "sim = flow.simulate(workers=1, durations=DURATIONS, step=True)\nsim",
              "sim.dashboard()", "sim.step()\nimport threading\n"
              "print(sum(t.name == 'nbflow-simulation' for t in threading.enumerate()))"])
    for k in range(3):
        lab.run(k)
    stepper, dash = (page.locator(".jp-Cell").nth(k) for k in (1, 2))
    panel = stepper.locator(".nbflow-stepper")
    time = panel.locator(".nbflow-step-time")

    def states(where) -> list:
        return [where.locator(f'.nbflow-dag-canvas g.node[data-node="t{i}"]')
                for i in range(4)]

    def expect_states(where, wanted: list[str]) -> None:
        for n, state in zip(states(where), wanted):
            expect(n).to_have_attribute("data-state", state)

    start = ["running", "pending", "pending", "pending"]
    for where in (stepper, dash):
        expect(where.locator(".nbflow-dag-canvas g.node")).to_have_count(4, timeout=60_000)
        expect_states(where, start)
    rows = dash.locator(".nbflow-table tbody tr")
    expect(dash.locator(".nbflow-status")).to_have_text("stepping")

    panel.locator('[data-action="step"]').click()
    expect(time).to_have_text("t = 2 s")
    stepped = ["succeeded", "running", "ready", "pending"]
    expect_states(dash, stepped)
    expect(dash.locator(".nbflow-timeline-canvas")).to_have_attribute("data-bars", "2")
    expect(rows.filter(has_text="extract")).to_contain_text("succeeded")
    lab.shot("1-stepped-wide-light", dash)

    panel.locator('[data-action="run"]').click()
    expect(time).to_have_text("t = 7 s")
    expect_states(dash, ["succeeded"] * 4)
    expect(dash.locator(".nbflow-timeline-canvas")).to_have_attribute("data-bars", "4")
    expect(dash.locator(".nbflow-status")).to_have_text("succeeded")

    # Reset: both views back to the start, every colour and bar of the old run gone.
    panel.locator('[data-action="reset"]').click()
    expect(time).to_have_text("t = 0 s")
    for where in (stepper, dash):
        expect_states(where, start)
        expect(where.locator(".nbflow-timeline-canvas")).to_have_attribute("data-bars", "1")
        # At t = 0 the running bar has no width yet: one unit of the clock shows it,
        # not a millisecond that would be all axis.
        expect(where.locator(".nbflow-timeline-canvas")).to_have_attribute("data-width", "1")
    expect(dash.locator(".nbflow-status")).to_have_text("stepping")
    expect(panel.locator('[data-set="finished"] .nbflow-step-item')).to_have_count(0)
    lab.shot("2-reset-wide-light", page.locator(".jp-Notebook"))

    # A step from a cell after the reset: the same first step again, and one thread.
    lab.run(3)
    expect(time).to_have_text("t = 2 s")
    expect_states(dash, stepped)
    expect_states(stepper, stepped)
    assert lab.outputs_text(3).strip().splitlines()[-1] == "1"
    page.set_viewport_size({"width": 700, "height": 1800})
    dark(page)
    expect_states(dash, stepped)
    lab.shot("3-stepped-narrow-dark", page.locator(".jp-Notebook"))
    assert not page.js_errors, page.js_errors


def layered(n: int, width: int) -> str:
    return f'''
import random
import nbflow

rng = random.Random(7)
flow = nbflow.Flow("sim{n}")
names = [f"t{{k}}" for k in range({n})]
for k, name in enumerate(names):
    level = k // {width}
    above = names[(level - 1) * {width}:level * {width}] if level else []
    flow.task(lambda: 1, name=name, after=rng.sample(above, min(2, len(above))))
durations = {{name: 1 + rng.random() * 6 for name in names}}
sim = flow.simulate(workers=4, durations=durations)
'''


@pytest.mark.parametrize("n, width", [(30, 5), (5000, 100)])
def test_the_dashboard_of_a_simulation_shows_it_on_the_virtual_clock(lab, n, width):
    page = lab.page
    page.set_viewport_size({"width": 1400, "height": 1800})   # the whole dashboard in a shot
    lab.open([layered(n, width), "sim.dashboard()", "print(round(sim.makespan, 3))"])
    lab.run(0)
    lab.run(1, timeout=180)
    lab.run(2)
    makespan = float(lab.outputs_text(2).strip())
    dashboard = page.locator(".nbflow-dashboard")
    expect(dashboard.locator(".nbflow-status")).to_have_text("succeeded", timeout=60_000)
    expect(dashboard.locator(".nbflow-title")).to_have_text(
        f"sim{n} · run simulation (priority, 4 workers)")
    expect(dashboard.locator('.nbflow-chip[data-state="succeeded"]')).to_have_text(
        f"succeeded {n:,}")
    timeline = dashboard.locator(".nbflow-timeline-canvas")
    expect(timeline).to_have_attribute("data-bars", str(n))
    expect(timeline).to_have_attribute("data-rows", "4")
    # Times on the virtual clock: seconds from the start, not a time of day.
    first = dashboard.locator(".nbflow-table tbody tr").first
    expect(first).to_contain_text("t=0s")
    # The elapsed time is the makespan (format.js: "12.3 s", "1 h 23 min").
    m = int(makespan // 60)
    expect(dashboard.locator(".nbflow-elapsed")).to_have_text(
        f"{makespan:.1f} s" if makespan < 60 else f"{m // 60} h {m % 60} min")
    expect(page.locator(".jp-Cell").nth(1).locator(".nbflow-static")).to_be_hidden()
    if n <= 300:
        expect(page.locator(".nbflow-dag-canvas g.node")).to_have_count(n, timeout=60_000)
    else:
        expect(page.locator(".nbflow-dag-canvas g.nbflow-unit").first).to_be_visible(
            timeout=60_000)
    lab.shot("1-light", dashboard)
    dark(page)
    # The timeline hidden while the theme changed is drawn again at its width once shown,
    # not at the 600 px guess of a hidden canvas.
    expect(timeline).to_have_attribute("style", re.compile(
        rf"width: {timeline.evaluate('(el) => el.parentElement.clientWidth')}px"))
    lab.shot("1-dark", dashboard)
    assert not page.js_errors, page.js_errors
    if n > 300:
        return
    # Saved and reopened without its kernel: the DAG's picture and the Gantt chart.
    reopen_without_kernel(lab)
    picture = page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea")
    expect(picture.locator(".nbflow-static")).to_be_visible(timeout=60_000)
    expect(picture).to_contain_text(f"sim{n} · run simulation (priority, 4 workers) · "
                                    f"succeeded · succeeded: {n}")
    expect(picture.locator(".nbflow-static svg g.node")).to_have_count(n)
    expect(picture.locator('svg[aria-label^="priority, 4 workers: makespan"] g rect')
           ).to_have_count(n)
    lab.shot("2-reopened-dark", page.locator(".jp-Cell").nth(1))


GANTT = TEACH + '''
chain = nbflow.Flow("chain")
chain.task(lambda: 1, name="one")
chain.task(lambda: 1, name="two", after=["one"])
chain.task(lambda: 1, name="three", after=["two"])
sim = chain.simulate(workers=3, durations={"one": 1, "two": 2, "three": 3})
'''


def test_the_gantt_chart_is_the_live_timeline_and_an_svg_once_saved(lab):
    page = lab.page
    lab.open([GANTT, "sim.gantt()", 'sim.gantt(by="task")'])
    for k in range(3):
        lab.run(k)
    by_worker = page.locator(".jp-Cell").nth(1).locator(".nbflow-timeline-canvas")
    by_task = page.locator(".jp-Cell").nth(2).locator(".nbflow-timeline-canvas")
    expect(by_worker).to_have_attribute("data-bars", "3", timeout=60_000)
    # One lane per worker, the idle ones too: a chain keeps one worker busy at a time.
    expect(by_worker).to_have_attribute("data-rows", "3")
    expect(by_task).to_have_attribute("data-rows", "3")
    expect(page.locator(".jp-Cell").nth(2).locator('.nbflow-timeline-mode[data-mode="tasks"]')
           ).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".nbflow-dashboard .nbflow-dag")).to_have_count(0)  # the timeline alone
    expect(page.locator(".nbflow-static")).to_have_count(2)
    for k in range(2):
        expect(page.locator(".nbflow-static").nth(k)).to_be_hidden()
    lab.shot("1-live-light", page.locator(".jp-Cell").nth(1))
    dark(page)
    lab.shot("1-live-dark", page.locator(".jp-Cell").nth(1))
    assert not page.js_errors, page.js_errors

    reopen_without_kernel(lab)
    picture = page.locator(".jp-Cell").nth(1).locator(".nbflow-static")
    expect(picture).to_be_visible(timeout=60_000)
    expect(picture.locator("svg")).to_have_attribute(
        "aria-label", "priority, 3 workers: makespan 6s")
    expect(picture.locator("svg g rect")).to_have_count(3)
    expect(page.get_by_text("Error displaying widget: model not found").first).to_be_hidden()
    lab.shot("2-reopened-dark", page.locator(".jp-Cell").nth(1))


PAPER = '''
from nbflow.gantt import Gantt

ms = flow.simulate(workers=2, durations=DURATIONS, unit="ms")
Gantt(ms.gantt_svg())   # what nbconvert --execute stores: the SVG alone, no widget
'''

# The chart as JupyterLab draws an SVG output (an <img>): the colour at its corner, and how
# many of its pixels are dark ink, read back through a canvas.
PIXELS = """(img) => {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let ink = 0;
    for (let k = 0; k < d.length; k += 4) if (d[k + 3] > 200 && d[k] + d[k + 1] + d[k + 2] < 200) ink++;
    return {corner: Array.from(d.slice(4 * (3 * c.width + 3), 4 * (3 * c.width + 3) + 4)), ink};
}"""


def test_a_lone_gantt_svg_reads_in_the_dark_theme_and_counts_in_its_unit(lab):
    page = lab.page
    lab.open([TEACH, PAPER, "ms.dashboard()"])
    for k in range(3):
        lab.run(k)
    img = page.locator(".jp-Cell").nth(1).locator(".jp-RenderedSVG img, .jp-RenderedImage img")
    expect(img).to_be_visible(timeout=60_000)
    dash = page.locator(".jp-Cell").nth(2).locator(".nbflow-dashboard")
    # The live dashboard counts in the simulation's unit too (ms, not s).
    expect(dash.locator(".nbflow-elapsed")).to_have_text("6ms", timeout=60_000)
    row = dash.locator(".nbflow-table tbody tr").filter(has_text="features")
    expect(row).to_contain_text("t=2ms")
    expect(row).to_contain_text("1ms")
    for theme in ("light", "dark"):
        if theme == "dark":
            dark(page)
        pixels = img.evaluate(PIXELS)
        # Its own white card under dark text, on either page.
        assert pixels["corner"] == [255, 255, 255, 255] and pixels["ink"] > 100, pixels
        lab.shot(f"1-svg-{theme}", page.locator(".jp-Cell").nth(1))
        lab.shot(f"2-dashboard-{theme}", dash)
    assert not page.js_errors, page.js_errors
