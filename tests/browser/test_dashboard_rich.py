"""What a task displays (display(df), a figure, Markdown) is its own: shown in its attempt's
entry in the dashboard, live while it runs, after a reload and in a new kernel, never in the
cell that runs, and never able to run anything on the page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SETUP = r'''
%load_ext nbflow
import base64, threading
from IPython.display import display, HTML, Image, Markdown
from nbflow.notebook.magics import current_flow

flow = current_flow()
flow.name = "rich"
gate = threading.Event()
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEklEQVR4nGP4z8CAB+GTG8HSALfKY52fTcuYAAAAAElFTkSuQmCC")

@flow.task
def table():
    display(HTML("<table class='dataframe'><thead><tr><th>city</th><th>n</th></tr></thead>"
                 "<tbody><tr><td>Lyon</td><td>3</td></tr></tbody></table>"
                 "<img src=x onerror=\"alert('img ran')\"><script>alert('script ran')</script>"
                 "<style>body { display: none }</style><a href='javascript:alert(1)'>link</a>"))
    display(Image(PNG, width=40))
    gate.wait(120)
    display(Markdown("**done** <b>not bold</b>"))
'''

CELL_TASK = "%%task from_a_cell\ndisplay(HTML('<b>said by a cell task</b>'))\ncell_done = True"


def test_rich_output_is_the_tasks_safe_live_and_kept(lab):
    page = lab.page
    lab.open([SETUP, CELL_TASK, "dash = flow.dashboard()\ndash",
              "run = flow.run(background=True)", "gate.set()\nprint(run.wait(60).state)"])
    for k in range(4):
        lab.run(k)
    dash = page.locator(".nbflow-dashboard")
    rows = dash.locator(".nbflow-table tbody tr")
    expect(rows.nth(0).locator(".nbflow-badge")).to_have_text("running", timeout=60_000)
    rows.nth(0).click()
    # Live: the table and the image show while the task still waits at the gate.
    html = dash.locator('.nbflow-attempt .nbflow-rich[data-mime="text/html"]')
    expect(html.locator("td").first).to_have_text("Lyon", timeout=5_000)
    expect(html.locator("th")).to_have_text(["city", "n"])
    # Sanitised: the table stays, the image tag, script, style and link do not (their
    # text does); no dialog opened (the page fixture fails the test if one does).
    assert html.locator("img, script, style, a").count() == 0
    expect(html).to_contain_text("link")
    image = dash.locator('.nbflow-attempt .nbflow-rich[data-mime="image/png"] img')
    expect(image).to_have_attribute("width", "40")
    page.wait_for_function("(img) => img.complete && img.naturalWidth === 4",
                           arg=image.element_handle())
    assert page.evaluate("getComputedStyle(document.body).display") != "none"
    lab.shot("1-live", dash)
    # None of it reached a cell: not the one that started the run, not the dashboard's.
    assert "Lyon" not in lab.outputs_text(3) and "cell task" not in lab.outputs_text(3)

    lab.run(4)
    expect(dash.locator(".nbflow-status")).to_have_text("succeeded", timeout=30_000)
    md = dash.locator('.nbflow-rich[data-mime="text/markdown"]')
    expect(md).to_have_text("**done** <b>not bold</b>")   # as text
    rows.nth(1).click()
    expect(dash.locator('.nbflow-rich[data-mime="text/html"] b')).to_have_text(
        "said by a cell task")
    assert "said by a cell task" not in lab.outputs_text(1)
    lab.shot("2-cell-task", dash)

    # After a reload the page gets it all in its first message.
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("!window.jupyterapp.shell.currentWidget.context.model.dirty")
    page.reload()
    dash = page.locator(".nbflow-dashboard")
    expect(dash.locator(".nbflow-status")).to_have_text("succeeded", timeout=60_000)
    dash.locator(".nbflow-table tbody tr").nth(0).click()
    expect(dash.locator('.nbflow-rich[data-mime="text/html"] td').first).to_have_text("Lyon")
    expect(dash.locator(".nbflow-rich")).to_have_count(3)

    # A new kernel shows the run from the store, with what each task displayed.
    page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                  ".restart()")
    page.wait_for_function(
        """() => { const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
                   return k && k.status === 'idle'; }""", timeout=60_000)
    lab.run(0)
    lab.run(2)
    dash = page.locator(".nbflow-dashboard")
    expect(dash.locator(".nbflow-status")).to_have_text("succeeded", timeout=60_000)
    dash.locator(".nbflow-table tbody tr").nth(0).click()
    expect(dash.locator(".nbflow-rich")).to_have_count(3)
    expect(dash.locator('.nbflow-rich[data-mime="image/png"] img')).to_be_visible()
    lab.shot("3-new-kernel", dash)
    lab.theme(dark=True)
    lab.shot("4-new-kernel-dark", dash)
    lab.theme(dark=False)
    assert not page.js_errors, page.js_errors
