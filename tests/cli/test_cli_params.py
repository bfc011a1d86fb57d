"""``nbflow run NB -p NAME VALUE -f FILE``: parameters injected after the ``parameters`` cell.

The kernel tests run the real command on real notebooks; the rest checks the
reading of values and the injected cell without a kernel.
"""

from __future__ import annotations

import json
import math
import re

import nbformat
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbflow import parameters
from nbflow.store import Store

FLOW_CELL = """\
import json, nbflow
flow = nbflow.Flow("daily")

@flow.task
def report():
    return {"date": date, "limit": limit}

run = flow.run()
assert run.state == "succeeded", run.status()
seen = {name: globals()[name] for name in SEEN if name in globals()}
with open("seen.json", "w") as f:
    json.dump({name: [type(v).__name__, v] for name, v in seen.items()}, f)
"""
DEFAULTS = 'date = "2000-01-01"\nlimit = 10\nverbose = False'
SEEN = ["date", "limit", "verbose", "ratio", "nothing", "word", "code", "odd", "old_injected",
        "tags", "when", "nested", "text"]


def notebook_with(path, *cells):
    """A notebook of ``cells``: (source, tags) pairs or plain sources."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(c[0], metadata={"tags": c[1]}) if isinstance(c, tuple)
        else nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def seen(folder) -> dict:
    return json.loads((folder / "seen.json").read_text())


def recorded(folder) -> dict:
    [run] = Store(str(folder / ".nbflow" / "nbflow.db")).runs()
    return json.loads(run["params"])["notebook_params"]


@pytest.mark.kernel
def test_p_values_are_read_as_papermill_reads_them_and_recorded_with_the_run(
        tmp_path, nbflow_cli):
    nb = notebook_with(tmp_path / "daily.ipynb", f"SEEN = {SEEN!r}", (DEFAULTS, ["parameters"]),
                       FLOW_CELL)
    hostile = "'); import os; os._exit(3) #"
    done = nbflow_cli("run", str(nb), "-p", "date", "2026-01-01", "-p", "limit", "100",
                      "-p", "verbose", "True", "-p", "ratio", "0.5", "-p", "nothing", "None",
                      "-p", "word", "hello world", "-p", "code", hostile,
                      "-p", "odd", "caf\udce9", "--param", "limit", "101", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert seen(tmp_path) == {
        "date": ["str", "2026-01-01"], "limit": ["int", 101], "verbose": ["bool", True],
        "ratio": ["float", 0.5], "nothing": ["NoneType", None], "word": ["str", "hello world"],
        "code": ["str", hostile], "odd": ["str", "caf\udce9"]}
    assert done.stderr.count("warning") == 1
    assert ("nbflow: parameters date='2026-01-01', limit=101, verbose=True, ratio=0.5, "
            "nothing=None, word='hello world', ") in done.stdout
    assert ("nbflow run: warning: parameters ratio, nothing, word, code, odd are not defined in "
            "the notebook's 'parameters' cell, which defines: date, limit, verbose; set anyway"
            ) in done.stderr
    assert recorded(tmp_path) == {"date": "2026-01-01", "limit": 101, "verbose": True,
                                  "ratio": 0.5, "nothing": None, "word": "hello world",
                                  "code": hostile, "odd": "caf\udce9"}
    status = nbflow_cli("status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    line = next(x for x in status.stdout.splitlines() if x.startswith("notebook parameters:"))
    assert line.startswith('notebook parameters: date="2026-01-01", limit=101, verbose=true, '
                           'ratio=0.5, nothing=null, word="hello world", ')


@pytest.mark.kernel
def test_a_params_file_sets_values_and_p_overrides_it(tmp_path, nbflow_cli):
    defaults = DEFAULTS + "\ntags = []\nwhen = None\nnested = {}\ntext = ''"
    nb = notebook_with(tmp_path / "daily.ipynb", f"SEEN = {SEEN!r}", (defaults, ["parameters"]),
                       ("limit = 5\nold_injected = True", ["injected-parameters"]), FLOW_CELL)
    (tmp_path / "params.yaml").write_text(
        "date: 2026-02-03\nlimit: 7\ntags: [a, b]\nwhen: 2026-02-03 04:05:06\n"
        "nested: {x: [1, 2.5, null], 'y z': true}\ntext: \"nul\\0 and \\u00e9\"\n")
    done = nbflow_cli("run", str(nb), "-f", "params.yaml", "-p", "limit", "8", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in done.stderr
    values = seen(tmp_path)
    # The injected cell a saved notebook had is replaced, not run as well.
    assert "old_injected" not in values
    assert values == {"date": ["str", "2026-02-03"], "limit": ["int", 8],
                      "verbose": ["bool", False], "tags": ["list", ["a", "b"]],
                      "when": ["str", "2026-02-03T04:05:06"],
                      "nested": ["dict", {"x": [1, 2.5, None], "y z": True}],
                      "text": ["str", "nul\x00 and \u00e9"]}
    assert recorded(tmp_path)["nested"] == {"x": [1, 2.5, None], "y z": True}


@pytest.mark.kernel
def test_a_notebook_without_a_parameters_cell_gets_them_first_with_a_warning(
        tmp_path, nbflow_cli):
    nb = notebook_with(tmp_path / "daily.ipynb", f"SEEN = {SEEN!r}\nassert limit == 3",
                       "date = 'unused'", FLOW_CELL)
    done = nbflow_cli("run", str(nb), "-p", "limit", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("nbflow run: warning: the notebook has no code cell tagged 'parameters', so the "
            "parameters (limit) were put in a new first cell.") in done.stderr
    assert recorded(tmp_path) == {"limit": 3}


@pytest.mark.kernel
def test_a_run_without_parameters_records_none_even_if_the_variable_leaks_in(
        tmp_path, nbflow_cli):
    nb = notebook_with(tmp_path / "daily.ipynb", "SEEN = []\ndate = limit = 1", FLOW_CELL)
    done = nbflow_cli("run", str(nb), cwd=tmp_path, env={"NBFLOW_PARAMS": '{"stale": 1}'})
    assert done.returncode == 0, done.stdout + done.stderr
    [run] = Store(str(tmp_path / ".nbflow" / "nbflow.db")).runs()
    assert "notebook_params" not in json.loads(run["params"])


@pytest.mark.parametrize("args, message", [
    (["-p", "1x", "3"], r"parameter name '1x' is not a Python variable name"),
    (["-p", "class", "3"], r"parameter name 'class' is not a Python variable name"),
    (["-p", "a"], r"argument -p/--param: expected 2 arguments"),
    (["-f", "missing.yaml"], r"there is no parameters file at 'missing.yaml'"),
    (["-f", "list.yaml"], r"the parameters file 'list.yaml' must map names to values .*list"),
    (["-f", "bad.yaml"], r"the parameters file 'bad.yaml' is not valid YAML: "),
    (["-f", "bad.json"], r"the parameters file 'bad.json' is not valid JSON: "),
    (["-f", "names.yaml"], r"parameter name 'not a name' is not a Python variable name"),
    (["-f", "bomb.yaml"], r"the parameters file 'bomb.yaml' holds more than 100,000 values "
                          r"\(YAML aliases\?\); pass a path as a parameter"),
    (["-f", "loop.yaml"], r"the parameters file 'loop.yaml' holds a value that contains "
                          r"itself"),
    (["-p", "big", "x" * 130_000], r"the parameters take 126 KiB as JSON, more than the 120 "
                                   r"KiB an environment variable \(NBFLOW_PARAMS\) can carry"),
])
def test_parameters_given_wrongly_exit_2_before_a_kernel_starts(tmp_path, nbflow_cli, args,
                                                                 message):
    nb = notebook_with(tmp_path / "nb.ipynb", ("x = 1", ["parameters"]))
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    (tmp_path / "bad.json").write_text("{'a': 1}")
    (tmp_path / "names.yaml").write_text("not a name: 1\n")
    levels = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    (tmp_path / "bomb.yaml").write_text("\n".join(levels) + "\n")   # 10**9 values
    (tmp_path / "loop.yaml").write_text("a: &a [1, *a]\n")
    done = nbflow_cli("run", str(nb), *args, cwd=tmp_path)
    assert done.returncode == 2
    assert re.search(message, done.stderr), done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".nbflow").exists()


@pytest.mark.parametrize("text, value", [
    ("True", True), ("False", False), ("None", None), ("10", 10), ("-3", -3), ("1_000", 1000),
    ("12.5", 12.5), ("1e3", 1000.0), ("true", "true"), ("2026-01-01", "2026-01-01"),
    ("", ""), ("hello world", "hello world"), ("0x10", "0x10"),
])
def test_p_values_read_as_papermill_reads_them(text, value):
    got = parameters.parse_value(text)
    assert got == value and type(got) is type(value)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


@given(JSONISH)
def test_the_injected_literal_is_the_value_itself(value):
    back = eval(parameters.literal(value), {"__builtins__": {}, "float": float})
    assert _same(back, value)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b and type(a) is type(b)


def test_the_names_a_parameters_cell_defines():
    source = ("%matplotlib inline\nx = 1\ny: int = 2\na, (b, c) = 1, (2, 3)\nif x:\n"
              "    hidden = 1\nx += 1\nprint(x == 2)\n")
    assert parameters.defined_names(source) == ["x", "y", "a", "b", "c"]
    # Not Python at all: the assignments at the start of lines still count.
    assert parameters.defined_names("x = 1\ny = (\nz: str = 'a'\n") == ["x", "y", "z"]


def test_the_cell_goes_right_after_the_parameters_cell_and_replaces_an_old_one():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("a = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("a = 0", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("print(a)")])
    assert parameters.inject(nb, {"a": 2}) == []
    assert [c.source for c in nb.cells] == [
        "# title", "a = 1", "# Parameters injected by nbflow run\na = 2", "print(a)"]
    assert nb.cells[2].metadata["tags"] == ["injected-parameters"]
    nbformat.validate(nb)


def test_flow_run_records_nbflow_params_and_refuses_one_that_is_no_object(
        store_path, monkeypatch):
    import nbflow
    flow = nbflow.Flow("etl", store=store_path)
    flow.task(lambda: 1, name="one")
    monkeypatch.setenv("NBFLOW_PARAMS", '["not", "an object"]')
    with pytest.raises(ValueError, match=r"NBFLOW_PARAMS must be a JSON object .*"
                       r"got '\["):
        flow.run()
    assert flow.store.runs() == []
    monkeypatch.setenv("NBFLOW_PARAMS", '{"date": "2026-01-01", "limit": 3}')
    run = flow.run()
    params = json.loads(flow.store.run(run.id)["params"])
    assert params["notebook_params"] == {"date": "2026-01-01", "limit": 3}
