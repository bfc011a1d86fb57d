"""Per-task output in a real kernel: what a task prints goes to its log, never to a cell."""

from __future__ import annotations

import json

import pytest
from kernelsession import KernelSession

pytestmark = pytest.mark.kernel


def test_each_task_output_goes_to_its_own_log(kernel: KernelSession):
    kernel.ok("import sys, threading\n"
              "from nbflow.notebook.magics import current_flow, last_run\n"
              "both = threading.Barrier(2, timeout=30)\n"
              "calls = []")
    # left and right print while both are running (the barrier proves they overlap).
    kernel.ok("%%task left\nprint('left says 1')\nboth.wait()\n"
              "print('left says 2', file=sys.stderr)\nleft_done = True")
    kernel.ok("%%task right\nprint('right says 1')\nboth.wait()\n"
              "print('right says 2')\nright_done = True")
    kernel.ok("%%task flaky --retries 1\ncalls.append(1)\nprint(f'try {len(calls)}')\n"
              "if len(calls) < 2:\n    raise RuntimeError('first try fails')")
    kernel.ok("@current_flow().task\ndef joined(left_done, right_done):\n"
              "    print('joined says hi')\n    return left_done and right_done")
    cell = kernel.ok("print('cell says before')\n%flow run --workers 3\nprint('cell says after')")
    assert cell.stdout == "cell says before\ncell says after\n"
    assert cell.stderr == ""
    kernel.ok("run = last_run()")
    assert kernel.value("run.state") == "succeeded"
    assert kernel.value("run.logs('left')") == "left says 1\nleft says 2\n"
    assert kernel.value("run.logs('left', 'stdout')") == "left says 1\n"
    assert kernel.value("run.logs('left', 'stderr')") == "left says 2\n"
    assert kernel.value("run.logs('right')") == "right says 1\nright says 2\n"
    assert kernel.value("run.logs('joined')") == "joined says hi\n"
    assert kernel.value("run.logs('flaky')") == (
        "--- attempt 1 ---\ntry 1\n--- attempt 2 ---\ntry 2\n")
    # Not one line a task printed reached any cell of the session.
    assert "says" not in kernel.streams().replace("cell says", "")
    assert "try " not in kernel.streams()


def test_a_background_run_keeps_its_output_away_from_the_cell_running_now(
        kernel: KernelSession):
    kernel.ok("import threading\n"
              "from IPython.display import display, HTML\n"
              "from nbflow.notebook.magics import current_flow\n"
              "go, shown = threading.Event(), threading.Event()\n"
              "flow = current_flow()\n"
              "@flow.task\n"
              "def late():\n"
              "    go.wait(30)\n"
              "    print('late print')\n"
              "    display(HTML('<b>late display</b>'))\n"
              "    shown.set()\n"
              "    return 1")
    started = kernel.ok("run = flow.run(background=True)")
    other = kernel.ok("go.set()\nassert shown.wait(30)\nrun.wait(30)\nprint('other cell')")
    assert other.outputs == [("stream", {"name": "stdout", "text": "other cell\n"})]
    # The task's display belongs to the task: it reaches no cell, neither the one that
    # started the run nor the one running now, and is kept with the attempt ...
    assert started.outputs == []
    assert not [m for m in kernel.iopub if m["header"]["msg_type"] == "display_data"
                and "late display" in json.dumps(m["content"])]
    assert kernel.value("[d['data']['text/html'] for d in run.displays('late')]") == [
        "<b>late display</b>"]
    # ... and its print went to the task's log only.
    assert "late print" not in kernel.streams()
    assert kernel.value("(run.state, run.logs('late'))") == ("succeeded", "late print\n")


def test_rich_output_of_cell_tasks_and_functions_is_kept_per_attempt(kernel: KernelSession):
    kernel.ok("from IPython.display import display, HTML, Markdown, Image, clear_output\n"
              "from nbflow.notebook.magics import current_flow, last_run\n"
              "import base64\n"
              "PNG = base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4'\n"
              "                       '2mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==')")
    kernel.ok("%%task shows\ndisplay(HTML('<table><tr><td>1</td></tr></table>'))\n"
              "display(Markdown('# *title*'))\nshown = 1")
    kernel.ok("tries = []\n@current_flow().task(retries=1, retry_delay=0)\n"
              "def figure(shown):\n"
              "    tries.append(1)\n"
              "    display(Image(PNG))\n"
              "    h = display(HTML('step 1'), display_id=True)\n"
              "    h.update(HTML('step 2'))\n"
              "    if len(tries) == 1:\n"
              "        raise RuntimeError('first try fails')\n"
              "    display('a plain value')")
    cell = kernel.ok("%flow run")
    assert not [o for o in cell.outputs if o[0] == "display_data"
                and ("<table>" in json.dumps(o[1]) or "step" in json.dumps(o[1]))]
    kernel.ok("run = last_run()")
    assert kernel.value("run.state") == "succeeded"
    shows = kernel.value("run.displays('shows')")
    assert [d["data"].get("text/html") for d in shows] == [
        "<table><tr><td>1</td></tr></table>", None]
    assert shows[1]["data"]["text/markdown"] == "# *title*"
    figure = kernel.value("run.displays('figure')")
    assert [(d["attempt"], sorted(d["data"])) for d in figure] == [
        (1, ["image/png", "text/plain"]), (1, ["text/html", "text/plain"]),
        (2, ["image/png", "text/plain"]), (2, ["text/html", "text/plain"]),
        (2, ["text/plain"])]
    assert figure[1]["data"]["text/html"] == "step 2"   # updated in place
    assert figure[4]["data"]["text/plain"] == "'a plain value'"
    # The cell's own display still reaches the cell.
    own = kernel.ok("display(HTML('<i>mine</i>'))")
    assert [o for o in own.outputs if o[0] == "display_data"]
