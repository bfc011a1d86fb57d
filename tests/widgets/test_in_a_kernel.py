"""The dashboard in a real kernel driven by nbclient (as papermill, nbconvert --execute and
``nbflow run`` run notebooks): the saved output is the static picture alone, small, needing
no script, and a dashboard shown before a run ends with the run's final picture."""

from __future__ import annotations

import re

import nbclient
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.kernel

SETUP = """
import nbflow
flow = nbflow.Flow("kernel <demo>", workers=2)
flow.task(lambda: 1, name="<img src=x onerror=alert(1)>")
flow.task(lambda: 2, name="second", after=["<img src=x onerror=alert(1)>"])
"""


def execute(cells: list[str], tmp_path, monkeypatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("NBFLOW_STORE", str(tmp_path / "nbflow.db"))
    nb = new_notebook(cells=[new_code_cell(src) for src in cells])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def header(output) -> str:
    """The first line of a dashboard's static picture."""
    return re.search(r"<div><b>nbflow</b>(.*?)</div>", output["data"]["text/html"]).group(1)


def test_a_dashboard_shown_before_a_blocking_run_is_saved_with_the_final_state(tmp_path,
                                                                             monkeypatch):
    nb = execute([SETUP, "dash = flow.dashboard()\ndash", "run = flow.run()\nrun.state"],
                 tmp_path, monkeypatch)
    # nbclient renders no widget: the static picture alone, no widget, no widget state.
    [shown] = nb.cells[1].outputs
    assert shown["output_type"] == "display_data"
    assert set(shown["data"]) == {"text/html"}
    line = header(shown)
    [state] = nb.cells[2].outputs
    assert "kernel &lt;demo&gt; · run <code>" in line and "· succeeded ·" in line
    assert "succeeded: 2" in line and "pending" not in line
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown["data"]["text/html"]
    assert "<img" not in shown["data"]["text/html"]
    assert state["data"]["text/plain"] == "'succeeded'"
    assert "widgets" not in nb.metadata


def test_a_headless_notebook_is_small_offline_html_with_the_picture(tmp_path, monkeypatch):
    from nbconvert import HTMLExporter

    nb = execute([SETUP, "dash = flow.dashboard()\ndash", "run = flow.run()",
                  "run.dashboard()"], tmp_path, monkeypatch)
    size = len(nbformat.writes(nb))
    assert size < 60_000, f"the executed notebook is {size:,} characters"
    assert "viz" not in nbformat.writes(nb).lower().replace("nbflow-", "")
    page, _ = HTMLExporter().from_notebook_node(nb)
    assert page.count("<svg") >= 2 and "· succeeded ·" in page
    assert "widget-view" not in page and "embed-amd" not in page and "unpkg" not in page


def test_a_live_front_end_gets_the_picture_and_the_widget_as_two_outputs(tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("NBFLOW_DASHBOARD", "live")  # as if JupyterLab ran the cells
    nb = execute([SETUP, "dash = flow.dashboard()\ndash", "run = flow.run()\nrun.state"],
                 tmp_path, monkeypatch)
    picture, widget = nb.cells[1].outputs
    assert set(picture["data"]) == {"text/html"} and "· succeeded ·" in header(picture)
    assert "application/vnd.jupyter.widget-view+json" in widget["data"]
    assert "text/html" not in widget["data"]
    uid = re.search(r'data-nbflow-static="([0-9a-f]+)"', picture["data"]["text/html"]).group(1)
    # The picture hides the widget's output when that shows no widget (no kernel).
    assert f'.jp-OutputArea-child:has([data-nbflow-static="{uid}"]) + ' \
           ".jp-OutputArea-child:not(:has(.jp-OutputArea-output *))" in picture["data"]["text/html"]


def test_an_unknown_dashboard_choice_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.setenv("NBFLOW_DASHBOARD", "shiny")
    nb = execute([SETUP, "flow.dashboard()"], tmp_path, monkeypatch)
    [error] = nb.cells[1].outputs
    assert error["ename"] == "ValueError"
    assert error["evalue"] == ("NBFLOW_DASHBOARD is 'shiny': set it to 'live' or 'static', or "
                               "unset it to let nbflow tell from the front end")


def test_flow_dashboard_magic_follows_flow_run(tmp_path, monkeypatch):
    nb = execute([SETUP + "%load_ext nbflow\n%flow use flow", "%flow dashboard", "%flow run",
                  "%flow dashboard --collapse-above 0"], tmp_path, monkeypatch)
    [shown] = nb.cells[1].outputs
    assert "· succeeded ·" in header(shown) and "succeeded: 2" in header(shown)
    [error] = nb.cells[3].outputs  # IPython shows a UsageError as one line on stderr
    assert error["name"] == "stderr"
    assert error["text"].startswith("UsageError: argument --collapse-above: must be at least 1, "
                                    "got 0")


def test_a_background_run_shown_in_its_cell_ends_with_its_final_summary(tmp_path, monkeypatch):
    nb = execute([SETUP + "import threading\ngate = threading.Event()\n"
                  "flow.task(lambda: gate.wait(60), name='waits')",
                  "run = flow.run(background=True)\nrun", "gate.set()\nrun.wait(60).state"],
                 tmp_path, monkeypatch)
    [summary] = nb.cells[1].outputs
    text = summary["data"]["text/html"]
    assert "</b>: succeeded " in text and "succeeded: 3" in text
    assert "as of" not in text and "running" not in text
    assert nb.cells[2].outputs[0]["data"]["text/plain"] == "'succeeded'"
