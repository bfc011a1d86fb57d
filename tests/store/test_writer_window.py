"""The writer's commit window: batches gather for it, but not on top of a slow write;
and the bounds of one transaction, however much has gathered."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine

from nbflow.core.text import TEXT_LIMIT
from nbflow.store.batches import TXN_CHARS, TXN_ROWS, group_end
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


class Kept(Recorded):
    """Recorded, keeping each transaction's statements too."""

    def __init__(self):
        super().__init__([])
        self.transactions: list[list] = []

    def execute(self, statements) -> list:
        self.transactions.append([(sql, list(rows)) for sql, rows in statements
                                  if "commits" not in sql])
        return super().execute(statements)


def test_a_big_group_is_written_as_bounded_transactions_in_order(writer):
    writer._transactions = rec = Kept()
    big = "x" * (TEXT_LIMIT - 200)
    writer._window = 2.0   # everything below arrives in one group
    for k in range(24):    # 24 MiB of logs: before, one transaction
        writer.put("logs", "run", [(f"t{k}", 1, big, "")])
    writer.put("logs", "run", [(f"many{k}", 1, "", "") for k in range(TXN_ROWS + 5)])
    writer.flush()
    sizes = [sum(len(r[3]) + len(r[4]) for _sql, rows in t for r in rows)
             for t in rec.transactions]
    counts = [sum(len(rows) for _sql, rows in t) for t in rec.transactions]
    assert len(rec.transactions) >= 4
    assert max(sizes) <= TXN_CHARS and max(counts) <= TXN_ROWS + 5
    written = [r[1] for t in rec.transactions for _sql, rows in t for r in rows]
    assert written == [f"t{k}" for k in range(24)] + [f"many{k}" for k in range(TXN_ROWS + 5)]


def test_one_engine_turn_of_many_big_logs_is_split_too(writer):
    writer._transactions = rec = Kept()
    big = "y" * (TEXT_LIMIT - 200)
    writer.put("logs", "run", [(f"t{k}", 1, "", big) for k in range(20)])
    writer.flush()
    assert len(rec.transactions) >= 3
    assert [r[1] for t in rec.transactions for _sql, rows in t for r in rows] == [
        f"t{k}" for k in range(20)]


def test_saved_values_travel_in_their_events_item_and_count_against_the_bounds():
    event = ("r", 3, "a", 1, "running", "succeeded", 0.0, None)
    items = [("logs", "r", [("a", 1, "x" * 6, "")]),
             ("valued_events", "r", ([event], {3: b"v" * 5})),
             ("logs", "r", [("b", 1, "y" * 4, "")])]
    assert group_end(items, 0, max_chars=8) == 1   # the pickle's 5 bytes count
    assert group_end(items, 1, max_chars=8) == 2
    assert group_end(items, 1, max_rows=1) == 2    # one event row: one item
    assert group_end(items, 2, max_chars=0) == 3   # at least one item
