"""The writer's commit window: batches gather for it, but not on top of a slow write."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine

from nbflow.store.writer import Writer

WINDOW = 0.5


class Recorded:
    """Stands in for the writer's transactions: keeps each one's rows and times,
    taking ``seconds[k]`` (default 0) to write the k-th."""

    def __init__(self, seconds: list[float]):
        self.seconds = seconds
        self.calls: list[tuple[float, float, int]] = []   # start, end, rows
        self.done = threading.Event()

    def execute(self, statements) -> list:
        start = time.monotonic()
        k = len(self.calls)
        time.sleep(self.seconds[k] if k < len(self.seconds) else 0.0)
        # The writer's own record of the transaction (the commits table) is not counted.
        self.calls.append((start, time.monotonic(),
                           sum(len(rows) for sql, rows in statements if "commits" not in sql)))
        self.done.set()
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def writer():
    w = Writer(create_engine("sqlite://"), "test")
    w._window = WINDOW
    yield w
    w.close()


def log(k: int) -> tuple:
    return (f"t{k}", 1, f"line {k}\n", "")


def test_batches_that_arrive_within_the_window_share_one_transaction(writer):
    writer._transactions = rec = Recorded([])
    for k in range(3):
        writer.put("logs", "run", [log(k)])
        time.sleep(0.02)
    assert rec.done.wait(5)
    writer.flush()
    assert [rows for _s, _e, rows in rec.calls] == [3]


def test_after_a_write_slower_than_the_window_the_next_starts_at_once(writer):
    writer._transactions = rec = Recorded([WINDOW + 0.3])
    writer.put("logs", "run", [log(0)])
    time.sleep(WINDOW + 0.1)   # the first write has started and is still going on
    writer.put("logs", "run", [log(1)])
    deadline = time.monotonic() + 10
    while len(rec.calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    (_s1, end1, rows1), (start2, _e2, rows2) = rec.calls
    assert (rows1, rows2) == (1, 1)
    # before, it slept a whole window after every write
    assert start2 - end1 < WINDOW / 2
