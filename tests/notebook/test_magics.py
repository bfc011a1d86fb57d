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


USAGE_TASK = r"Usage: %%task NAME \[--after A,B\] \[--reads A,B\] \[--assigns X,Y\] " \
             r"\[--retries N\] \[--retry-delay S\] " \
             r"\[--backoff F\] \[--max-delay S\] \[--jitter J\] \[--timeout S\] " \
             r"\[--priority P\] \[--tags a,b\] \[--trigger RULE\] \[--expected S\] " \
             r"\[--deadline S\|ISO\] \[--resources POOL=N,\.\.\.\] \[--group PATH\] " \
             r"\[--phase NAME\] \[--map ITEMS \[--as VAR\]\]$"
A_YEAR = r"must be a number of seconds above 0 and at most 31536000 \(a year\)"


@pytest.mark.parametrize("code, message", [
    ("%%task\nx = 1", r"the following arguments are required: NAME\. " + USAGE_TASK),
    ("%%task t --retries many\nx = 1", r"argument --retries: must be a whole number of at "
     r"least 0, got 'many'\. " + USAGE_TASK),
    ("%%task t --retries -1\nx = 1", r"argument --retries: must be a whole number of at least "
     r"0, got '-1'\. "),
    ("%%task t --timeout 0\nx = 1", rf"argument --timeout: {A_YEAR}, got '0'\. "),
    ("%%task t --timeout inf\nx = 1", rf"argument --timeout: {A_YEAR}, got 'inf'\. "),
    ("%%task t --retry-delay 1e20\nx = 1", r"argument --retry-delay: must be a number of "
     r"seconds from 0 to 31536000 \(a year\), got '1e20'\. "),
    ("%%task t --trigger sometimes\nx = 1", r"argument --trigger: must be one of "
     r"'all_success', 'all_failed', .*, 'always', got 'sometimes'\. "),
    ("%flow run --workers 1.5", r"argument --workers: must be a whole number of at least 1, "
     r"got '1\.5'\. "),
    ("%%task t --colour red\nx = 1", r"unrecognized arguments: --colour red\. " + USAGE_TASK),
    ("%%task 'unclosed\nx = 1", r"No closing quotation\. " + USAGE_TASK),
    ("%%task broken\nx = (1,\ny = 2", r"task 'broken' is not valid Python: '\(' was never "
     r"closed \(line 2 of the cell: 'x = \(1,'\)$"),
    ("%flow", r"%flow needs a subcommand\. Usage: %flow SUBCOMMAND \[options\], where "
     r"SUBCOMMAND is one of: run \(run every task and show the run\); status .*; levels .*; "
     r"graph .*; reset .*; use \(make the magics use the Flow in a variable\)"),
    ("%flow fly", r"%flow has no subcommand 'fly'\. Usage: %flow SUBCOMMAND"),
    ("%flow run --workers 0", r"argument --workers: must be a whole number of at least 1, "
     r"got '0'\. "
     r"Usage: %flow run \[--workers N\] \[--mode \{eager,levels\}\] \[--policy "
     r"\{aging,critical_path,edf,fifo,priority,sjf\}\] \[--resume \[RUN_ID\]\] "
     r"\[--fail-fast\] \[--seed N\]$"),
    ("%flow run --seed one", r"argument --seed: must be a whole number, got 'one'\. "),
    ("%flow run --policy lifo", r"argument --policy: invalid choice: 'lifo'"),
    ("%%task x --resources db=lots\nx = 1", r"argument --resources: must be a dict of pool "
     r"name to slots, e\.g\. \{'db': 1\} \(slots are whole numbers >= 1\), got 'db=lots'"),
    ("%%task x --group a//b\nx = 1", r"argument --group: must be a name, or names "
     r"joined by '/' \(e\.g\. 'extract/api'\), of printable characters, got 'a//b'"),
    ("%%task x --expected -2\nx = 1", r"argument --expected: must be a number of seconds "
     r"from 0 to 31536000, got '-2'"),
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


def test_a_task_that_raises_a_base_exception_does_not_hang_flow_run(kernel: KernelSession):
    # Before: the worker thread died, no outcome came, and %flow run never returned.
    kernel.ok("import asyncio")
    kernel.ok("%%task interrupted\nraise KeyboardInterrupt")
    kernel.ok("%%task cancelled\nraise asyncio.CancelledError()")
    kernel.ok("%%task fine\nx = 1")
    cell = kernel.ok("%flow run --workers 1")
    [html] = cell.data("text/html")
    assert "failed: 2" in html and "succeeded: 1" in html
    kernel.ok("from nbflow.notebook.magics import last_run")
    assert kernel.value("last_run().status()['error'].fillna('').tolist()") == [
        "KeyboardInterrupt: ", "CancelledError: ", ""]


def test_task_flags_are_the_options_of_flow_task(kernel: KernelSession):
    kernel.ok("%%task fetch --retries 3 --retry-delay 1 --backoff 2 --max-delay 30 "
              "--jitter 0.1 --timeout 60 --trigger all_done\nx = 1")
    kernel.ok("from nbflow.notebook.magics import current_flow")
    assert kernel.value("[(s.retries, s.retry_delay, s.backoff, s.max_delay, s.jitter, s.timeout,"
                        " s.trigger) for s in current_flow().build()[1]]") == [
        (3, 1.0, 2.0, 30.0, 0.1, 60.0, "all_done")]


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


def test_flow_simulate_shows_a_gantt_chart_and_runs_no_cell(kernel: KernelSession):
    kernel.ok("%%task raw\nraise RuntimeError('a simulation must not run me')\nrows = [1]")
    kernel.ok("%%task cleaning\ncleaned = rows")
    cell = kernel.ok("%flow simulate --workers 2 --default 2.5")
    assert cell.stdout == "simulated makespan 5s on 2 workers (priority); mean wait 0s\n"
    [svg] = cell.data("image/svg+xml")
    assert svg.startswith("<svg") and "cleaning" in svg
    kernel.ok("sim = %flow simulate --workers 1")
    assert kernel.value("sim.makespan") == 2.0
    assert kernel.value("'rows' in globals()") is False


def test_scheduling_options_policy_and_status_by_group(kernel: KernelSession):
    kernel.ok("from nbflow.notebook.magics import current_flow, last_run\n"
              "current_flow().pool('db', slots=1)")
    kernel.ok("%%task load --resources db=1 --group etl/load --expected 2 --deadline 3600\n"
              "loaded = 1")
    kernel.ok("%%task report --group etl\nout = loaded + 1")
    kernel.ok("%flow run --policy sjf")
    assert kernel.value("last_run().state") == "succeeded"
    assert kernel.value("[(dict(s.resources), s.group, s.expected, s.deadline) "
                        "for s in current_flow().build()[1]]") == [
        ({"db": 1}, "etl/load", 2.0, 3600.0), ({}, "etl", None, None)]
    params = kernel.value("last_run().store.run(last_run().id)['params']")
    assert json.loads(params)["policy"] == "sjf"
    [html] = kernel.ok("%flow status --by group").data("text/html")
    assert "etl/load" in html and html.count("succeeded") >= 2


def test_a_mapped_cell_runs_once_per_item_and_its_variables_become_lists(kernel: KernelSession):
    kernel.ok("files = ['jan.csv', 'feb.csv', 'mar.csv']\nscale = 10")
    kernel.ok("%%task clean --map files --as path --retries 1\n"
              "rows = len(path) * scale\nprint('cleaning', path)")
    kernel.ok("%%task report\ntotal = sum(rows)")   # reads rows: waits for the whole map
    assert kernel.ok("%flow levels").data("text/plain") == [
        "level 0: clean[0], clean[1], clean[2]\nlevel 1: clean\nlevel 2: report"]
    kernel.ok("%flow run --workers 3")
    assert kernel.value("rows") == [70, 70, 70]
    assert kernel.value("total") == 210
    assert kernel.value("'path' in globals()") is False   # each item's own globals
    kernel.ok("from nbflow.notebook.magics import last_run, current_flow")
    assert kernel.value("last_run().result('clean[1]')") == {"rows": 70}
    assert kernel.value("[s.retries for s in current_flow().build()[1]][:3]") == [1, 1, 1]
    assert kernel.value("list(current_flow().each('clean'))") == ["clean[0]", "clean[1]",
                                                                   "clean[2]"]
    # Fewer items: the extra task goes; without --map the cell is one task again.
    kernel.ok("files = ['q1.csv', 'q2.csv']")
    kernel.ok("%%task clean --map files --as path\nrows = len(path) * scale")
    assert kernel.value("current_flow().tasks") == ["clean[0]", "clean[1]", "clean", "report"]
    kernel.ok("%%task clean\nrows = [1, 2]")
    assert kernel.value("current_flow().tasks") == ["clean", "report"]


def test_a_mapped_cell_item_that_fails_follows_the_trigger_rules(kernel: KernelSession):
    kernel.ok("values = [1, 0, 4]")
    kernel.ok("%%task invert --map values --trigger all_done\nshare = 1 / item")
    cell = kernel.ok("%flow run")
    assert "failed: 1" in cell.data("text/html")[0]
    assert kernel.value("share") == [1.0, None, 0.25]


def test_map_mistakes_are_one_line_usage_errors(kernel: KernelSession):
    for line, expected in [
        ("%%task t --map missing", r"task 't': --map missing: name 'missing' is not defined\. "
                                   r"The items must exist when the cell is declared"),
        ("%%task t --map 'len(3)'", r"task 't': --map len\(3\) raised TypeError"),
        ("%%task t --map \"'abc'\"", r"map 't': --map ITEMS must be a list .* got str"),
        ("%%task t --map 5", r"map 't': --map ITEMS must be a list .* got int"),
        ("%%task t --map '[1]' --as 'not a name'", r"task 't': --as needs a Python name"),
        ("%%task t --map '[1]' --as class", r"task 't': --as needs a Python name"),
        ("%%task t --as x", r"--as names the item of --map; give --map ITEMS too"),
        ("%%task t --map '[1]' --reads a", r"--reads and --assigns declare one cell task"),
        ("%%task t --map \"__import__('itertools').count()\"",
         r"map 't': --map ITEMS has more than 100,000 items \(an endless iterator"),
        ("%%task t --map {'a': 1, 'b': 2}",
         r"unrecognized arguments: 1, b: 2}\..* An ITEMS expression with spaces must be quoted"),
    ]:
        message = one_line_error(kernel.execute(f"{line}\nx = 1"), "UsageError")
        assert re.search(expected, message), (line, message)
    assert kernel.value("__import__('nbflow.notebook.magics').notebook.magics.current_flow()"
                        ".tasks") == []
