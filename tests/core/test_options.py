"""One options table checks every task and run option, with one message per mistake.

The table (``nbflow/core/options.py``) drives TaskSpec's defaults, ``Flow()``,
``Flow.task``, ``Flow.cell_task``, ``Flow.run``, the engine, the ``%%task``
parser and the CLI; these tests hold each of them to it.  No store is opened:
every refusal happens before anything is recorded.
"""

from __future__ import annotations

import argparse
import inspect
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbflow import Flow
from nbflow.core import options
from nbflow.core.graph import Graph
from nbflow.core.options import DEFAULTS, OPTIONS, flag_type
from nbflow.core.spec import TaskSpec
from nbflow.errors import InvalidOption, UnknownDependencyError
from nbflow.executors import EXECUTORS, make_executor

A_YEAR = r"a number of seconds above 0 and at most 31536000 \(a year\), or None"


def test_taskspec_takes_its_defaults_from_the_table():
    # A mapping's default (resources: {}) is one read-only mapping that all specs share.
    for name in options.TASK_OPTIONS:
        assert TaskSpec._field_defaults[name] == DEFAULTS[name], name


def test_flow_task_has_a_keyword_for_every_task_option_and_no_other():
    params = inspect.signature(Flow.task).parameters
    keywords = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY}
    table = {n for n, o in OPTIONS.items() if o.scope in ("declare", "flow", "task")}
    assert keywords == table


def test_flow_task_documents_every_task_option():
    doc = Flow.task.__doc__
    for name in options.TASK_OPTIONS:
        assert re.search(rf"^        (\w+, )*{name}(, \w+)*$", doc, re.M), name


def test_flow_run_has_a_keyword_for_every_run_option():
    params = inspect.signature(Flow.run).parameters
    assert set(options.RUN_OPTIONS) <= set(params)


def test_the_executor_names_are_the_executors():
    assert tuple(EXECUTORS) == options.EXECUTOR_NAMES


def test_every_row_has_help_and_says_what_it_accepts():
    for o in OPTIONS.values():
        assert o.help and o.accepts, o.name
        assert o.scope in ("declare", "cell", "flow", "task", "run"), o.name


def _refused(call, message: str):
    with pytest.raises(InvalidOption, match=message) as info:
        call()
    return info.value


# Each case the issue lists, through the API a user would use.
@pytest.mark.parametrize("call, message", [
    (lambda: Flow("f", workers=0), r"^Flow 'f': workers must be a whole number of at least 1, "
     r"or None, got 0; use None for the default \(NBFLOW_WORKERS, else the executor's\)\.$"),
    (lambda: Flow("f", workers=1.5), r"^Flow 'f': workers must be .*, got 1\.5; "),
    (lambda: Flow("f", workers=True), r"^Flow 'f': workers must be .*, got True; "),
    (lambda: Flow("f", workers="4"), r"^Flow 'f': workers must be .*, got '4'; "),
    (lambda: Flow("f", executor=42), r"^Flow 'f': executor must be one of 'threads', "
     r"'processes', 'sync', 'dask', or an executor object \(with start, submit, cancel and shutdown\), "
     r"got 42\.$"),
    (lambda: Flow(None), r"^Flow\(\): name must be a non-empty string, got None; e\.g\. "
     r"name='load'\.$"),
    (lambda: Flow("f", policy="lifo"), r"^Flow 'f': policy must be one of 'aging', 'critical_path', 'edf', 'fifo', 'priority', "
     r"'sjf', or a policy object such as nbflow\.policies\.Aging\(rate=1\.0\), "
     r"got 'lifo'\.$"),
    (lambda: Flow("f", colour="red"), r"^Flow 'f' got unknown option\(s\) colour; the options "
     r"are: retries, retry_delay, backoff, max_delay, jitter, retry_on, timeout\.$"),
    (lambda: Flow("f", timeout=math.inf), rf"^Flow 'f': timeout must be {A_YEAR}, got inf; use "
     r"None for no timeout\.$"),
])
def test_a_flow_refuses_a_bad_option(call, message):
    _refused(call, message)


def declare(**options):
    flow = Flow("f")
    flow.task(lambda: 1, **{"name": "t", **options})
    return flow


@pytest.mark.parametrize("options, message", [
    ({"name": 123}, r"^flow\.task\(\): name must be a non-empty string, got 123; "),
    ({"name": {}}, r"^flow\.task\(\): name must be .*, got \{\}; "),
    ({"name": ""}, r"^flow\.task\(\): name must be .*, got ''; "),
    ({"after": 5}, r"^task 't': after must be a task name or a list of task names, got 5\.$"),
    ({"after": [None]}, r"^task 't': after must be .*, got \[None\]\.$"),
    ({"after": [""]}, r"^task 't': after must be .*, got \[''\]\.$"),
    ({"cache": "no"}, r"^task 't': cache must be True or False, got 'no'\.$"),
    ({"timeout": math.inf}, rf"^task 't': timeout must be {A_YEAR}, got inf; use None for no "
     r"timeout\.$"),
    ({"timeout": 1e20}, r"^task 't': timeout must be .*, got 1e\+20; use None for no timeout"),
    ({"timeout": math.nan}, r"^task 't': timeout must be .*, got nan; "),
    # too large for a float: before, an OverflowError from the check itself
    ({"timeout": 10 ** 400}, r"^task 't': timeout must be .*, got 1000000.*; use None for no "),
    ({"backoff": 10 ** 400}, r"^task 't': backoff must be a finite number of at least 0, "),
    ({"timeout": 0}, r"^task 't': timeout must be .*, got 0; "),
    ({"retry_delay": math.inf}, r"^task 't': retry_delay must be a number of seconds from 0 "
     r"to 31536000 \(a year\), got inf\.$"),
    ({"max_delay": -1}, r"^task 't': max_delay must be .*, got -1; use None for no cap\.$"),
    ({"backoff": math.inf}, r"^task 't': backoff must be a finite number of at least 0, "
     r"got inf\.$"),
    ({"retries": True}, r"^task 't': retries must be a whole number of at least 0, got True\.$"),
    ({"retries": 1.0}, r"^task 't': retries must be .*, got 1\.0\.$"),
    ({"jitter": 1.5}, r"^task 't': jitter must be a fraction from 0 to 1, got 1\.5\.$"),
    ({"retry_on": ValueError("x")}, r"^task 't': retry_on must be an exception class or a "
     r"tuple of them, got ValueError\('x'\); e\.g\. retry_on=\(ConnectionError, TimeoutError\)"),
    ({"retry_on": ()}, r"^task 't': retry_on must be .*, got \(\); "),
    ({"priority": "high"}, r"^task 't': priority must be a whole number, got 'high'\.$"),
    ({"tags": [1]}, r"^task 't': tags must be a string or a list of strings, got \[1\]\.$"),
    ({"trigger": "sometimes"}, r"^task 't': trigger must be one of 'all_success', 'all_failed', "
     r".*'always'.*, got 'sometimes'\.$"),
    ({"trigger": ["all_done"]}, r"^task 't': trigger must be one of .*, got \['all_done'\]\.$"),
    ({"run_if": True}, r"^task 't': run_if must be a callable or None, got True\.$"),
])
def test_a_task_refuses_a_bad_option(options, message):
    err = _refused(lambda: declare(**options), message)
    assert isinstance(err, ValueError) and isinstance(err, TypeError)


def test_a_lambda_needs_a_name():
    _refused(lambda: Flow("f").task(lambda: 1), r"^a lambda or callable object needs a task "
             r"name: flow\.task\(fn, name='\.\.\.'\)$")


def test_cell_tasks_are_checked_by_the_same_table():
    flow = Flow("f")
    _refused(lambda: flow.cell_task("c", "x = 1", {}, timeout=math.inf),
             rf"^task 'c': timeout must be {A_YEAR}, got inf; use None for no timeout\.$")
    _refused(lambda: flow.cell_task("", "x = 1", {}), r"^%%task: name must be ")
    _refused(lambda: flow.cell_task("c", "x = 1", {}, after=[3]), r"^task 'c': after must be ")
    _refused(lambda: flow.cell_task("c", "x = 1", {}, colour=1),
             r"^task 'c' got unknown option\(s\) colour; the options are: retries, ")
    assert len(flow) == 0


@pytest.mark.parametrize("run_options, message", [
    ({"workers": 0}, r"^run of flow 'f': workers must be a whole number of at least 1, or None, "
     r"got 0; use None for the default"),
    ({"workers": True}, r"^run of flow 'f': workers must be .*, got True; "),
    ({"workers": "4"}, r"^run of flow 'f': workers must be .*, got '4'; "),
    ({"executor": 42}, r"^run of flow 'f': executor must be one of .*, got 42\.$"),
    ({"mode": "level"}, r"^run of flow 'f': mode must be one of 'eager', 'levels', got "
     r"'level'\.$"),
    ({"policy": "lifo"}, r"^run of flow 'f': policy must be one of 'aging', .*, got "),
    ({"fail_fast": "yes"}, r"^run of flow 'f': fail_fast must be True or False, got 'yes'\.$"),
    ({"on_failure": "undo"}, r"^run of flow 'f': on_failure must be None or 'compensate', got "
     r"'undo'\.$"),
    ({"seed": "abc"}, r"^run of flow 'f': seed must be a whole number, or None, got 'abc'; "
     r"use None for a new random seed\.$"),
])
def test_a_run_refuses_a_bad_option_before_it_opens_the_store(run_options, message, tmp_path):
    flow = Flow("f", store=str(tmp_path / "never.db"))
    flow.task(lambda: 1, name="t")
    _refused(lambda: flow.run(**run_options), message)
    assert flow._store is None and not (tmp_path / "never.db").exists()


def test_an_unknown_name_in_a_generator_of_dependencies_is_named():
    with pytest.raises(UnknownDependencyError, match=r"^task 'b' depends on 'zz', which is not "
                                                     r"a task\."):
        Graph(["a", "b"], [(), (n for n in ["a", "zz"])])
    flow = Flow("f")
    flow.task(lambda: 1, name="a", after=(n for n in ["zz"]))
    with pytest.raises(UnknownDependencyError, match=r"^task 'a' depends on 'zz'"):
        flow.build()


def test_processes_start_no_more_workers_than_the_run_has_tasks():
    assert make_executor("processes", 120, tasks=2).workers == 2
    assert make_executor("processes", 3, tasks=10).workers == 3
    assert make_executor("processes", None, tasks=1).workers == 1
    assert make_executor("threads", 120, tasks=2).workers == 120   # threads start on demand


@pytest.mark.parametrize("name, text, message", [
    ("workers", "0", "must be a whole number of at least 1, got '0'"),
    ("workers", "1.5", "must be a whole number of at least 1, got '1.5'"),
    ("workers", "٣", "must be a whole number of at least 1, got '٣'"),
    ("timeout", "inf", "must be a number of seconds above 0 and at most 31536000 (a year), "
                       "got 'inf'"),
    ("timeout", "nan", "must be a number of seconds above 0 and at most 31536000 (a year), "
                       "got 'nan'"),
    ("timeout", "soon", "must be a number of seconds above 0 and at most 31536000 (a year), "
                        "got 'soon'"),
    ("retries", "many", "must be a whole number of at least 0, got 'many'"),
    ("jitter", "2", "must be a fraction from 0 to 1, got '2'"),
])
def test_a_flag_is_read_and_checked_by_its_row(name, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        flag_type(name)(text)
    assert str(info.value) == message


def test_a_flag_gives_the_same_value_as_the_keyword():
    assert flag_type("timeout")("2.5") == 2.5
    assert flag_type("retries")("3") == 3
    assert flag_type("workers")("2") == 2
    assert flag_type("seed")("-5") == -5
    assert flag_type("after")("a, b,") == ("a", "b")
    assert flag_type("after")("") == ()
    assert flag_type("tags")("io") == ("io",)


def test_a_value_whose_repr_raises_is_still_refused_with_a_message():
    class Hostile:
        def __repr__(self):
            raise RuntimeError("no repr")

        def __iter__(self):
            raise RuntimeError("no iter")

    err = _refused(lambda: declare(tags=Hostile()), r"^task 't': tags must be a string or a "
                   r"list of strings, got <Hostile object: its __repr__ raised>\.$")
    assert isinstance(err.value, Hostile)
    _refused(lambda: declare(priority="x" * 1000), r"got 'x{196}\.\.\.\.$")


_anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
                      st.lists(st.one_of(st.text(), st.none(), st.integers()), max_size=3),
                      st.just(ValueError), st.just(()))


@given(name=st.sampled_from(sorted(OPTIONS)), value=_anything)
def test_every_row_accepts_what_it_returns_or_refuses_with_its_message(name, value):
    option = OPTIONS[name]
    try:
        out = option.validate(value, "who")
    except InvalidOption as err:
        assert str(err).startswith(f"who: {name} must be {option.accepts}, got ")
        assert err.option == name
    else:
        assert option.validate(out, "who") == out   # normalised values stay accepted
        if isinstance(out, float):
            assert math.isfinite(out)
