"""``%%task`` and ``%flow`` in a real ipykernel."""

from __future__ import annotations

import json
import re
import sys

import pytest
from kernelsession import KernelSession, new_cell_id

pytestmark = pytest.mark.kernel


def one_line_error(cell, ename: str) -> str:
    """The cell's error, after checking it is shown as one line without a traceback."""
    assert cell.reply["status"] == "error"
    assert cell.reply["ename"] == ename
    if ename == "UsageError":  # IPython prints these to stderr and sends no error output
        assert cell.errors == []
        assert cell.stderr == f"UsageError: {cell.reply['evalue']}\n"
    else:
        [error] = cell.errors
        assert error["traceback"] == [f"{ename}: {cell.reply['evalue']}"]
    assert "\n" not in cell.reply["evalue"]
    return cell.reply["evalue"]


def test_task_cell_is_declared_not_run(kernel: KernelSession):
    cell = kernel.ok("%%task fetch --retries 2 --timeout 30 --priority 5 --tags io,slow\n"
                     "print('fetching')\n"
                     "rows = [1, 2, 3]\n")
    assert cell.outputs == []
    assert kernel.value("'rows' in globals()") is False
    kernel.ok("from nbflow.notebook.magics import current_flow")
    assert kernel.value("current_flow().tasks") == ["fetch"]
    assert kernel.value("[(s.retries, s.timeout, s.priority, s.tags, s.kind)"
                        " for s in current_flow().build()[1]]") == [(2, 30.0, 5, ("io", "slow"),
                                                                     "cell")]
    kernel.ok("%reload_ext nbflow")  # a reload keeps the flow and its tasks
    assert kernel.value("current_flow().tasks") == ["fetch"]


def test_dependencies_are_inferred_from_the_variables_cells_read(kernel: KernelSession):
    kernel.ok("rate = 3")  # an ordinary variable no task assigns: read from the namespace
    # Declared before the cells it reads from: order of declaration does not matter.
    kernel.ok("%%task report\nsummary = f'{len(cleaned)} rows, total {sum(cleaned)}'")
    kernel.ok("%%task raw\nrows = [1, 2, None, 4]")
    kernel.ok("%%task cleaning\ncleaned = [r * rate for r in rows if r is not None]")
    # --after replaces inference: audit reads `summary` but waits only for raw.
    kernel.ok("%%task audit --after raw\nchecked = summary")
    assert kernel.ok("%flow levels").data("text/plain") == [
        "level 0: raw\nlevel 1: cleaning, audit\nlevel 2: report"]
    kernel.ok("lv = %flow levels")
    assert kernel.value("list(lv)") == [["raw"], ["cleaning", "audit"], ["report"]]


def test_cell_tasks_leave_their_results_as_variables(kernel: KernelSession):
    kernel.ok("%%task raw\nrows = [1, 2, None, 4]")
    kernel.ok("%%task cleaning\ncleaned = [r for r in rows if r is not None]\n"
              "def total():\n    return sum(cleaned)")
    cell = kernel.ok("%flow run --workers 2")
    [html] = cell.data("text/html")
    assert "nbflow run" in html and "succeeded: 2" in html
    assert kernel.value("cleaned") == [1, 2, 4]
    assert kernel.value("total()") == 7
    kernel.ok("from nbflow.notebook.magics import last_run")
    assert kernel.value("last_run().result('cleaning')['cleaned']") == [1, 2, 4]


def test_two_task_cells_assigning_one_name_is_an_error(kernel: KernelSession):
    kernel.ok("%%task north\ntotal = 1")
    kernel.ok("%%task south\ntotal = 2")
    for command in ("%flow run", "%flow levels"):
        message = one_line_error(kernel.execute(command), "DuplicateTaskError")
        assert re.match(r"task cells 'north' and 'south' both assign 'total', so nbflow cannot "
                        r"tell which one a reader of 'total' depends on\. Assign it in one cell "
                        r"only, or rename it in one of them\.$", message)


def test_rerunning_a_cell_redeclares_its_task_but_another_cell_cannot_take_the_name(
        kernel: KernelSession):
    first, second = new_cell_id(), new_cell_id()
    kernel.ok("%%task load\nrows = 1", cell_id=first)
    kernel.ok("%%task load\nrows = 2", cell_id=first)  # the cell edited and run again
    kernel.ok("%flow run")
    assert kernel.value("rows") == 2
    message = one_line_error(kernel.execute("%%task load\nother = 3", cell_id=second),
                             "DuplicateTaskError")
    assert message == (
        f"a task named 'load' is already declared (cell {first}); this one comes from cell "
        f"{second}. Give one of them another name (name=... or %%task OTHER), or remove the "
        "old one with flow.remove('load').")


def test_without_a_cell_id_the_task_name_identifies_the_cell(kernel: KernelSession):
    # nbclient (nbval, papermill, `nbflow run`) sends no cellId.
    kernel.ok("%%task load\nrows = 1")
    kernel.ok("%%task load\nrows = 2")
    kernel.ok("from nbflow.notebook.magics import current_flow")
    assert kernel.value("current_flow().tasks") == ["load"]


def test_flow_use_mixes_cell_and_function_tasks(kernel: KernelSession):
    kernel.ok("import nbflow\npipeline = nbflow.Flow('mixed')\n%flow use pipeline")
    kernel.ok("%%task load\nnumbers = list(range(5))")
    kernel.ok("@pipeline.task\ndef total(numbers):\n    return sum(numbers)\n"
              "@pipeline.task\ndef doubled(total):\n    return 2 * total")
    assert kernel.ok("%flow levels").data("text/plain") == [
        "level 0: load\nlevel 1: total\nlevel 2: doubled"]
    kernel.ok("%flow run")
    kernel.ok("from nbflow.notebook.magics import current_flow, last_run")
    assert kernel.value("current_flow() is pipeline") is True
    assert kernel.value("(last_run().flow.name, last_run().result('doubled'))") == ("mixed", 20)


@pytest.mark.parametrize("mode, wait, released", [("eager", 30, True), ("levels", 0.5, False)])
def test_levels_mode_starts_a_level_only_when_the_previous_one_is_done(
        kernel: KernelSession, mode, wait, released):
    # Levels: [a, b], [c].  c depends on a only and releases b, which waits for
    # that.  Eager runs c while b waits; levels holds c back until b gave up.
    kernel.ok(f"import threading\nrelease = threading.Event()\nWAIT = {wait}")
    kernel.ok("%%task a\na_done = True")
    kernel.ok("%%task b\nb_released = release.wait(WAIT)")
    kernel.ok("%%task c\nc_saw = a_done\nrelease.set()")
    kernel.ok(f"%flow run --workers 3 --mode {mode}")
    kernel.ok("from nbflow.notebook.magics import last_run\n"
              "ev = last_run().events()\n"
              "def seq(task, state):\n"
              "    return int(ev[(ev.task == task) & (ev.to_state == state)].seq.iloc[0])")
    assert kernel.value("(last_run().state, b_released)") == ("succeeded", released)
    assert kernel.value("seq('c', 'running') > seq('b', 'succeeded')") is not released
    params = kernel.value("last_run().store.run(last_run().id)['params']")
    assert json.loads(params)["mode"] == mode


def test_status_graph_and_reset(kernel: KernelSession, tmp_path):
    kernel.ok("%%task extract\nraw = 'a,b'")
    kernel.ok("%%task split\nparts = raw.split(',')")
    [svg] = kernel.ok("%flow graph").data("image/svg+xml")
    assert "extract" in svg and "split" in svg
    kernel.ok("%flow run")
    [html] = kernel.ok("%flow status").data("text/html")
    assert "<table" in html and html.count("succeeded") == 2
    # Readable: local times to the second, durations with a unit, blanks for no error.
    assert "+00:00" not in html and "None" not in html and "NaT" not in html
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</td>", html)
    assert re.search(r"<td>\d+ ms</td>", html)
    kernel.ok("st = %flow status")
    assert kernel.value("(type(st).__name__, list(st.task), st.duration.dtype.kind)") == (
        "StatusFrame", ["extract", "split"], "f")
    assert kernel.ok("%flow reset").stdout == (
        "forgot 2 tasks of flow 'notebook'; its runs stay in the store\n")
    assert kernel.ok("%flow levels").data("text/plain") == [
        "flow 'notebook' has no tasks yet: declare some with %%task or @flow.task"]
    kernel.ok("from nbflow.notebook.magics import current_flow")
    assert kernel.value("len(current_flow().store.runs())") == 1
    # The default store is .nbflow/nbflow.db in the kernel's working directory.
    assert (tmp_path / ".nbflow" / "nbflow.db").is_file()


def test_the_default_flow_is_named_after_the_notebook(start_kernel):
    k = start_kernel(JPY_SESSION_NAME="/home/me/work/Sales Report.ipynb")
    k.ok("%load_ext nbflow\nfrom nbflow.notebook.magics import current_flow")
    assert k.value("current_flow().name") == "Sales Report"


def test_current_flow_without_the_extension_says_how_to_load_it(start_kernel):
    k = start_kernel()
    cell = k.execute("from nbflow.notebook.magics import current_flow\ncurrent_flow()")
    assert cell.reply["ename"] == "NbflowError"
    assert cell.reply["evalue"] == (
        "the nbflow magics are not loaded here; run %load_ext nbflow first")


def test_the_kernel_runs_this_virtualenvs_python(shared_kernel):
    assert shared_kernel.value("__import__('sys').prefix") == sys.prefix


USAGE_TASK = r"Usage: %%task NAME \[--after A,B\] \[--retries N\] \[--retry-delay S\] " \
             r"\[--timeout S\] \[--priority P\] \[--tags a,b\]$"


@pytest.mark.parametrize("code, message", [
    ("%%task\nx = 1", r"the following arguments are required: NAME\. " + USAGE_TASK),
    ("%%task t --retries many\nx = 1", r"argument --retries: 'many' is not an integer\. "
     + USAGE_TASK),
    ("%%task t --retries -1\nx = 1", r"argument --retries: must be at least 0, got -1\. "),
    ("%%task t --timeout 0\nx = 1", r"argument --timeout: must be greater than 0, got 0\. "),
    ("%%task t --colour red\nx = 1", r"unrecognized arguments: --colour red\. " + USAGE_TASK),
    ("%%task 'unclosed\nx = 1", r"No closing quotation\. " + USAGE_TASK),
    ("%%task broken\nx = (1,\ny = 2", r"task 'broken' is not valid Python: '\(' was never "
     r"closed \(line 2 of the cell: 'x = \(1,'\)$"),
    ("%flow", r"%flow needs a subcommand\. Usage: %flow SUBCOMMAND \[options\], where "
     r"SUBCOMMAND is one of: run \(run every task and show the run\); status .*; levels .*; "
     r"graph .*; reset .*; use \(make the magics use the Flow in a variable\)"),
    ("%flow fly", r"%flow has no subcommand 'fly'\. Usage: %flow SUBCOMMAND"),
    ("%flow run --workers 0", r"argument --workers: must be at least 1, got 0\. "
     r"Usage: %flow run \[--workers N\] \[--mode \{eager,levels\}\] \[--resume \[RUN_ID\]\] "
     r"\[--fail-fast\]$"),
    ("%flow run --mode sideways", r"argument --mode: invalid choice: 'sideways'"),
    ("%flow levels extra", r"unrecognized arguments: extra\. Usage: %flow levels$"),
    ("%flow status", r"no run yet in this kernel; start one with %flow run$"),
    ("%flow use", r"the following arguments are required: VAR\. Usage: %flow use VAR$"),
    ("%flow use missing", r"there is no variable 'missing'; create the flow first, e\.g\. "
     r"missing = nbflow\.Flow\('missing'\), then %flow use missing$"),
    ("not_a_flow = 3\n%flow use not_a_flow", r"'not_a_flow' holds an object of type int, not "
     r"an nbflow\.Flow; %flow use needs a variable that holds a Flow$"),
])
def test_bad_arguments_are_one_line_usage_errors(shared_kernel, code, message):
    assert re.match(message, one_line_error(shared_kernel.execute(code), "UsageError"))


def test_flow_run_resume_runs_again_only_what_did_not_succeed(kernel: KernelSession):
    kernel.ok("calls = []\nready = False")
    kernel.ok("%%task first\ncalls.append('first')\na = 1")
    kernel.ok("%%task second\ncalls.append('second')\n"
              "if not ready:\n    raise ValueError('not yet')\nb = a + 1")
    kernel.ok("%flow run")
    kernel.ok("ready = True")
    cell = kernel.ok("%flow run --resume")
    [html] = cell.data("text/html")
    assert "succeeded: 2" in html
    assert kernel.value("calls") == ["first", "second", "second"]
    assert kernel.value("b") == 2
