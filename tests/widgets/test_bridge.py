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
                    "errors": [], "logs": [], "bars": [[0, 1, "w1", 2.0, 5.0, "succeeded"]]}
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
    assert first["bars"] == [[0, 1, "w0", 1.1, 1.9, "retrying"], [0, 2, None, 3.5, None, "running"]]
    table.apply(event(4, "a", 2, "running", "succeeded", 4.0, worker="w1"))
    second = table.take_diff()
    assert second["errors"] == [[0, None, None]]
    assert second["bars"] == [[0, 2, "w1", 3.5, 4.0, "succeeded"]]
    assert table.snapshot()["errors"] == []


def test_logs_are_per_attempt_and_keep_the_tail():
    table = TaskTable(["a", "b"])
    table.add_output("a", 1, "one\n", "")
    assert table.take_diff()["logs"] == [[0, "one\n"]]
    table.add_output("a", 2, "two\n", "err\n")
    table.add_output("a", 1, "one\n", "")  # a record seen twice (history and live) counts once
    assert table.take_diff()["logs"] == [[0, "--- attempt 1 ---\none\n--- attempt 2 ---\ntwo\nerr\n"]]
    table.add_output("b", 1, "x" * (LOG_LIMIT + 10), "end\n")
    text = table.log_text(1)
    assert text.startswith("[... 14 earlier characters not shown]\n") and text.endswith("end\n")
    assert len(text.split("\n", 1)[1]) == LOG_LIMIT
