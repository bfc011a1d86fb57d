"""Folding an event log into task rows (the store keeps ``tasks`` with this fold)."""

from __future__ import annotations

from nbflow.core.events import Detail
from nbflow.core.replay import COLUMNS, fold, new_row, replay


def ev(seq, task, attempt, frm, to, at, detail=None):
    return ("run1", seq, task, attempt, frm, to, at, detail)


RETRIED = [
    ev(0, "a", 0, "pending", "ready", 1.0),
    ev(1, "a", 1, "ready", "running", 2.0),
    ev(2, "a", 1, "running", "retrying", 3.0, Detail(error="OSError: flaky")),
    ev(3, "a", 1, "retrying", "ready", 4.0),
    ev(4, "a", 2, "ready", "running", 5.0),
    ev(5, "a", 2, "running", "succeeded", 6.0, Detail(worker="w1")),
]


def row(**values):
    r = dict(zip(COLUMNS, new_row()))
    r.update(values)
    return [r[c] for c in COLUMNS]


def test_a_task_starts_pending_and_never_attempted():
    assert replay(["a", "b"], []) == {"a": row(), "b": row()}


def test_each_attempt_resets_its_times_and_error():
    rows = replay(["a"], RETRIED[:3])
    assert rows["a"] == row(state="retrying", attempt=1, started=2.0, error="OSError: flaky")
    rows = replay(["a"], RETRIED[:5])
    assert rows["a"] == row(state="running", attempt=2, started=5.0)
    rows = replay(["a"], RETRIED)
    assert rows["a"] == row(state="succeeded", attempt=2, started=5.0, finished=6.0)


def test_a_terminal_state_without_running_sets_only_finished():
    rows = replay(["a", "b"], [ev(0, "b", 0, "pending", "upstream_failed", 7.0)])
    assert rows == {"a": row(), "b": row(state="upstream_failed", finished=7.0)}


def test_the_last_attempts_error_stays_on_a_failed_task():
    log = [*RETRIED[:5], ev(5, "a", 2, "running", "failed", 6.0, Detail(error="OSError: again"))]
    assert replay(["a"], log)["a"] == row(state="failed", attempt=2, started=5.0, finished=6.0,
                                         error="OSError: again")


def test_fold_returns_only_the_rows_it_changed_and_adds_unknown_ones():
    rows = {"a": new_row(), "b": new_row()}
    changed = fold(rows, [ev(0, "c", 0, "pending", "ready", 1.0)])
    assert changed == {"c": row(state="ready")} and set(rows) == {"a", "b", "c"}
    assert changed["c"] is rows["c"]


def test_folding_in_batches_equals_folding_at_once():
    rows: dict = {}
    for k in range(0, len(RETRIED), 2):
        fold(rows, RETRIED[k:k + 2])
    assert rows == replay(["a"], RETRIED)
