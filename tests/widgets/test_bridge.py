"""The bridge's task table: engine events in, latest rows and one-shot diffs out."""

from __future__ import annotations

from nbflow.core.events import Detail
from nbflow.notebook.bridge import LOG_LIMIT, TaskTable


def event(seq, task, attempt, frm, to, at, **detail):
    return ("run", seq, task, attempt, frm, to, at, Detail(detail) if detail else None)


def test_rows_follow_the_events_and_a_diff_names_each_changed_task_once():
    table = TaskTable(["a", "b"])
    for e in [event(0, "a", 0, "pending", "ready", 1.0),
              event(1, "a", 1, "ready", "running", 2.0),
              event(2, "a", 1, "running", "succeeded", 5.0, worker="w1"),
              event(3, "b", 0, "pending", "upstream_failed", 5.0)]:
        table.apply(e)
    diff = table.take_diff()
    assert diff == {"tasks": [[0, "succeeded", 1, 2.0, 5.0], [1, "upstream_failed", 0, None, None]],
                    "errors": [], "logs": [], "displays": [],
                    "bars": [[0, 1, "w1", 2.0, 5.0, "succeeded", None]],
                    "restored": [], "abandoned": [], "cancel": None}
    assert table.take_diff() is None
    assert (table.first_at, table.last_at) == (1.0, 5.0)


def test_replayed_events_are_ignored():
    table = TaskTable(["a"])
    table.apply(event(0, "a", 1, "ready", "running", 2.0))
    table.take_diff()
    table.apply(event(0, "a", 1, "ready", "running", 2.0))
    assert table.take_diff() is None


def test_a_retry_is_a_second_bar_and_success_clears_the_error():
    table = TaskTable(["a"])
    for e in [event(0, "a", 1, "ready", "running", 1.0),
              event(1, "a", 1, "running", "retrying", 2.0, started=1.1, finished=1.9,
                    worker="w0", error="OSError: flaky", traceback="Traceback ...\nOSError"),
              event(2, "a", 1, "retrying", "ready", 3.0),
              event(3, "a", 2, "ready", "running", 3.5)]:
        table.apply(e)
    first = table.take_diff()
    assert first["errors"] == [[0, "OSError: flaky", "Traceback ...\nOSError"]]
    assert first["bars"] == [[0, 1, "w0", 1.1, 1.9, "retrying", "OSError: flaky"],
                             [0, 2, None, 3.5, None, "running", None]]
    table.apply(event(4, "a", 2, "running", "succeeded", 4.0, worker="w1"))
    second = table.take_diff()
    assert second["errors"] == [[0, None, None]]
    assert second["bars"] == [[0, 2, "w1", 3.5, 4.0, "succeeded", None]]
    assert table.snapshot()["errors"] == []


def test_logs_are_per_attempt_and_keep_the_tail():
    table = TaskTable(["a", "b"])
    table.add_output("a", 1, "one\n", "")
    assert table.take_diff()["logs"] == [[0, 1, "one\n"]]
    table.add_output("a", 2, "two\n", "err\n")
    table.add_output("a", 1, "one\n", "")  # a record seen twice (history and live) counts once
    assert table.take_diff()["logs"] == [[0, 1, "one\n"], [0, 2, "two\nerr\n"]]
    table.add_output("b", 1, "x" * (LOG_LIMIT + 10), "end\n")
    [[_, _, text]] = table.take_diff()["logs"]
    assert text.startswith("[... 14 earlier characters not shown]\n") and text.endswith("end\n")
    assert len(text.split("\n", 1)[1]) == LOG_LIMIT


def test_a_running_attempt_streams_what_it_printed_until_its_record_replaces_it():
    table = TaskTable(["a"])
    table.apply(event(0, "a", 1, "ready", "running", 1.0))
    table.take_diff()
    table.add_live_output(0, 1, "line 1\n")
    assert table.take_diff()["logs"] == [[0, 1, "line 1\n"]]
    table.add_live_output(0, 1, "line 1\n")  # nothing new: nothing sent
    assert table.take_diff() is None
    table.add_live_output(0, 1, "y" * (LOG_LIMIT + 5))
    [[_, _, text]] = table.take_diff()["logs"]
    assert text.startswith("[... 5 earlier characters not shown]")
    table.add_output("a", 1, "line 1\nline 2\n", "")
    table.add_live_output(0, 1, "late read\n")  # a read that lost the race to the record
    assert table.take_diff()["logs"] == [[0, 1, "line 1\nline 2\n"]]
    assert table.snapshot()["logs"] == [[0, 1, "line 1\nline 2\n"]]


def test_restored_tasks_are_listed():
    table = TaskTable(["a", "b"])
    table.apply(event(0, "a", 0, "pending", "succeeded", 1.0, cached=True, key="k"))
    assert table.take_diff()["restored"] == [0]
    table.apply(event(1, "b", 1, "ready", "running", 2.0))
    assert table.take_diff()["restored"] == []  # unchanged: not sent again
    assert table.snapshot()["restored"] == [0]
