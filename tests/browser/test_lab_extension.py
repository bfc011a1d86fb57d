"""The JupyterLab extension in a real JupyterLab: cell badges and the runs sidebar.

Tasks wait for gate files that the test creates in the notebook's folder, so
each state the test looks at is one the run is really in while ``%flow run``
blocks the kernel.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

EVIL = "<img src=x onerror=alert(1)>"


def task_cells(name: str) -> list[str]:
    """``%load_ext``, three task cells (one waits, one fails, one retries), ``%flow run``."""
    wait = ("import pathlib, time\n"
            "while not pathlib.Path({gate!r}).exists():\n    time.sleep(0.05)\n")
    return [
        f"%load_ext nbflow\nfrom nbflow.notebook.magics import current_flow\n"
        f"current_flow().name = {name!r}",
        "%%task slow\nprint('<i>slow</i> says hi')\n" + wait.format(gate=f"{name}-slow")
        + "a = 1",
        "%%task bad\nraise ValueError('<b>bad</b> first line\\nsecond line')",
        # A cell task's globals are its own per attempt: the first attempt leaves a
        # file, not a variable, to tell the second it came before.
        "%%task flaky --retries 2 --retry-delay 0.5\n"
        f"import pathlib\ntried = pathlib.Path({name + '-tried'!r})\n"
        "if not tried.exists():\n    tried.touch()\n    raise RuntimeError('not yet')\n"
        + wait.format(gate=f"{name}-flaky") + "b = 2",
        "%flow run",
    ]


def badge(page, k: int):
    """The badge button of cell ``k`` of the current notebook (JupyterLab may have
    restored other notebooks of the workspace in hidden tabs)."""
    return (page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(k)
            .locator(".nbflow-cell-badge"))


def test_badges_follow_a_blocking_run_live(lab):
    page, name = lab.page, "live"
    lab.open(task_cells(name))
    for k in range(4):
        lab.run(k)
    expect(badge(page, 0)).to_have_count(0)
    for k in (1, 2, 3):
        expect(badge(page, k)).to_have_attribute("data-state", "declared", timeout=30_000)
    lab.start(4)
    expect(badge(page, 1)).to_have_attribute("data-state", "running", timeout=30_000)
    expect(badge(page, 2)).to_have_attribute("data-state", "failed", timeout=30_000)
    expect(badge(page, 2)).to_have_text("failed: ValueError: <b>bad</b> first line")
    expect(badge(page, 3)).to_have_attribute("data-state", "running", timeout=30_000)
    expect(badge(page, 3)).to_contain_text("(attempt 2 of 3)")
    first = badge(page, 1).inner_text()
    page.wait_for_timeout(1500)   # the duration of a running task ticks
    assert badge(page, 1).inner_text() != first
    lab.shot("1-running")
    (lab.server.root / f"{name}-slow").touch()
    (lab.server.root / f"{name}-flaky").touch()
    expect(badge(page, 1)).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(badge(page, 3)).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(badge(page, 1)).to_contain_text("succeeded ")
    lab.run(4)
    lab.shot("2-done")
    assert page.locator("b", has_text="bad").count() == 0   # the error is text, not HTML


def test_a_reload_mid_run_repaints_the_badges_from_the_store(lab):
    page, name = lab.page, "reload"
    lab.open(task_cells(name))
    for k in range(4):
        lab.run(k)
    lab.start(4)
    expect(badge(page, 1)).to_have_attribute("data-state", "running", timeout=30_000)
    page.reload()
    # The kernel is busy with %flow run: only the store (through the server) knows.
    expect(badge(page, 1)).to_have_attribute("data-state", "running", timeout=60_000)
    expect(badge(page, 2)).to_have_attribute("data-state", "failed", timeout=30_000)
    lab.shot("1-reloaded")
    (lab.server.root / f"{name}-slow").touch()
    (lab.server.root / f"{name}-flaky").touch()
    expect(badge(page, 1)).to_have_attribute("data-state", "succeeded", timeout=60_000)
    expect(badge(page, 3)).to_have_attribute("data-state", "succeeded", timeout=60_000)


def test_the_sidebar_lists_the_run_and_opens_its_tasks(lab):
    page, name = lab.page, "sidebar"
    (lab.server.root / f"{name}-slow").touch()
    (lab.server.root / f"{name}-flaky").touch()
    lab.open(task_cells(name))
    for k in range(5):
        lab.run(k)
    page.evaluate("window.jupyterapp.commands.execute('nbflow:show-runs')")
    panel = page.locator("#nbflow-runs")
    expect(panel).to_be_visible()
    page.evaluate("window.jupyterapp.commands.execute('nbflow:refresh-runs')")
    row = panel.locator(".nbflow-runs-row")
    expect(row).to_have_count(1, timeout=30_000)
    expect(row.first).to_contain_text(name)
    expect(row.first).to_contain_text("failed")
    lab.shot("1-runs", panel)
    row.first.click()
    tasks = panel.locator(".nbflow-runs-task")
    expect(tasks).to_have_count(3, timeout=30_000)
    expect(panel.locator(".nbflow-runs-code")).to_contain_text("%flow dlq requeue")
    tasks.nth(0).click()
    expect(panel.locator(".nbflow-runs-logs")).to_contain_text(
        "--- slow, attempt 1 ---\n<i>slow</i> says hi", timeout=30_000)
    lab.shot("2-run", panel)


def test_a_hostile_task_name_and_its_html_logs_render_as_text(lab):
    page = lab.page
    lab.open(["%load_ext nbflow\nfrom nbflow.notebook.magics import current_flow\n"
              "flow = current_flow()\n"
              f"@flow.task(name={EVIL!r})\n"
              "def evil():\n"
              "    print('<script>alert(\"log\")</script><img src=y onerror=alert(3)>')\n"
              "    raise ValueError('<img src=z onerror=alert(2)>')",
              "%flow run"])
    lab.run(0)
    lab.run(1)
    b = badge(page, 0)
    expect(b).to_have_attribute("data-state", "failed", timeout=30_000)
    expect(b).to_have_text("failed: ValueError: <img src=z onerror=alert(2)>")
    b.click()
    dialog = page.locator(".nbflow-taskview")
    expect(dialog.locator(".nbflow-taskview-name")).to_have_text(EVIL)
    expect(dialog.locator(".nbflow-log")).to_contain_text("<script>alert(\"log\")</script>",
                                                          timeout=30_000)
    lab.shot("1-dialog")
    assert page.locator("img[src=x], img[src=y], img[src=z], .nbflow-taskview script").count() == 0


def test_a_windowed_notebook_of_60_cells_gets_every_badge(lab):
    page = lab.page
    setting = "/lab/api/settings/@jupyterlab/notebook-extension:tracker"
    cells = (["%load_ext nbflow"] + [f"%%task t{i}\nv{i} = {i}" for i in range(58)]
             + ["%flow run"])
    _put_setting(lab, setting, {"windowingMode": "full"})
    try:
        lab.open(cells)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(
            """() => {
                const cells = window.jupyterapp.shell.currentWidget.content.widgets;
                return cells[cells.length - 1].model.executionCount !== null;
            }""", timeout=180_000)
        for k in (1, 2, 30, 57, 58):
            page.evaluate(
                "(k) => { const nb = window.jupyterapp.shell.currentWidget.content;"
                " nb.scrollToItem(k, 'center'); }", k)
            cell = page.locator(f'.jp-NotebookPanel:not(.lm-mod-hidden) '
                                f'.jp-Cell[data-windowed-list-index="{k}"]')
            expect(cell.locator(".nbflow-cell-badge")).to_have_attribute(
                "data-state", "succeeded", timeout=30_000)
        lab.shot("1-bottom")
        page.evaluate("window.jupyterapp.shell.currentWidget.content.scrollToItem(1, 'start')")
        cell = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) '
                            '.jp-Cell[data-windowed-list-index="1"]')
        expect(cell.locator(".nbflow-cell-badge")).to_have_attribute(
            "data-state", "succeeded", timeout=30_000)
        lab.shot("2-top")
    finally:
        _put_setting(lab, setting, {})


def test_dark_theme(lab):
    page, name = lab.page, "dark"
    (lab.server.root / f"{name}-slow").touch()
    (lab.server.root / f"{name}-flaky").touch()
    lab.open(task_cells(name))
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme',"
                  " {theme: 'JupyterLab Dark'})")
    for k in range(5):
        lab.run(k)
    expect(badge(page, 3)).to_have_attribute("data-state", "succeeded", timeout=30_000)
    lab.shot("1-dark")
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme',"
                  " {theme: 'JupyterLab Light'})")


def test_the_badges_work_in_notebook_7(nb7):
    page, name = nb7.page, "nb7"
    (nb7.server.root / f"{name}-slow").touch()
    (nb7.server.root / f"{name}-flaky").touch()
    nb7.open(task_cells(name))
    for k in range(5):
        nb7.run(k)
    expect(badge(page, 1)).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(badge(page, 2)).to_have_attribute("data-state", "failed")
    nb7.shot("1-done")


def _put_setting(lab, path: str, value: dict) -> None:
    import urllib.request
    request = urllib.request.Request(
        f"{lab.server.url}{path}", method="PUT",
        data=json.dumps({"raw": json.dumps(value)}).encode(),
        headers={"Authorization": f"token {lab.server.token}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30):
        pass
