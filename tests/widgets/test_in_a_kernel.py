"""The dashboard in a real kernel driven by nbclient (as papermill and nbval run notebooks):
the saved output of a dashboard shown before a run ends with the run's final picture."""

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
    [shown] = nb.cells[1].outputs
    assert shown["output_type"] == "display_data"
    assert "application/vnd.jupyter.widget-view+json" in shown["data"]
    line = header(shown)
    [state] = nb.cells[2].outputs
    assert "kernel &lt;demo&gt; · run <code>" in line and "· succeeded ·" in line
    assert "succeeded: 2" in line and "pending" not in line
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown["data"]["text/html"]
    assert "<img" not in shown["data"]["text/html"]
    assert state["data"]["text/plain"] == "'succeeded'"


def test_flow_dashboard_magic_follows_flow_run(tmp_path, monkeypatch):
    nb = execute([SETUP + "%load_ext nbflow\n%flow use flow", "%flow dashboard", "%flow run",
                  "%flow dashboard --collapse-above 0"], tmp_path, monkeypatch)
    [shown] = nb.cells[1].outputs
    assert "· succeeded ·" in header(shown) and "succeeded: 2" in header(shown)
    [error] = nb.cells[3].outputs  # IPython shows a UsageError as one line on stderr
    assert error["name"] == "stderr"
    assert error["text"].startswith("UsageError: argument --collapse-above: must be at least 1, "
                                    "got 0")
