"""The writer's commit window: batches gather for it, but not on top of a slow write;
and the bounds of one transaction, however much has gathered.

The window runs on a :class:`SteppedClock`: it ends when the test says, and a
write takes the time the test gives it, so nothing here sleeps or races the
writer's thread."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine

from nbflow.core.text import TEXT_LIMIT
from nbflow.store.batches import TXN_CHARS, TXN_ROWS, group_end
from nbflow.store.writer import WallClock, Writer

WINDOW = 0.5
WAIT = 10.0   # seconds a test waits for the writer's thread to get somewhere


class SteppedClock(WallClock):
    """The writer's time, moved by the test: a write advances it (``Recorded``), and
    each commit window is recorded and lasts until :meth:`end_window` (a flush or a
    close ends it too, as the real one)."""

    def __init__(self):
        self.t = 0.0
        self.windows: list[float] = []   # the seconds each window was to last
        self._entered = threading.Semaphore(0)
        self._cut: threading.Event | None = None   # what ends the current window

    def now(self) -> float:
        return self.t

    def wait(self, event: threading.Event, seconds: float) -> None:
        self.windows.append(seconds)
        self._cut = event
        self._entered.release()
        event.wait(WAIT)

    def in_window(self) -> None:
        """Wait until the writer's thread is inside a commit window."""
        assert self._entered.acquire(timeout=WAIT), "the writer never began a commit window"

    def end_window(self) -> None:
        """End the window the writer is in, as a flush would (the writer clears it)."""
        assert self._cut is not None
        self._cut.set()


class Recorded:
    """Stands in for the writer's transactions: keeps each one's rows and times,
    the k-th taking ``seconds[k]`` (default 0) of the clock's time."""

    def __init__(self, clock: SteppedClock, seconds: list[float]):
        self.clock, self.seconds = clock, seconds
        self.calls: list[tuple[float, float, int]] = []   # start, end, rows
        self.done = threading.Event()

    def execute(self, statements) -> list:
        start = self.clock.t
        k = len(self.calls)
        self.clock.t += self.seconds[k] if k < len(self.seconds) else 0.0
        # The writer's own record of the transaction (the commits table) is not counted.
        self.calls.append((start, self.clock.t,
                           sum(len(rows) for sql, rows in statements if "commits" not in sql)))
        self.done.set()
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def clock():
    return SteppedClock()


@pytest.fixture
def writer(clock):
    w = Writer(create_engine("sqlite://"), "test", clock=clock)
    w._window = WINDOW
    yield w
    w.close()


def log(k: int) -> tuple:
    return (f"t{k}", 1, f"line {k}\n", "")


def test_batches_that_arrive_within_the_window_share_one_transaction(writer, clock):
    writer._transactions = rec = Recorded(clock, [])
    writer.put("logs", "run", [log(0)])
    clock.in_window()
    for k in (1, 2):
        writer.put("logs", "run", [log(k)])
    clock.end_window()
    assert rec.done.wait(WAIT)
    writer.flush()
    assert [rows for _s, _e, rows in rec.calls] == [3]
    assert clock.windows == [WINDOW]


def test_after_a_write_slower_than_the_window_the_next_starts_at_once(writer, clock):
    writer._transactions = rec = Recorded(clock, [WINDOW + 0.3])
    writer.put("logs", "run", [log(0)])
    clock.in_window()
    clock.end_window()
    assert rec.done.wait(WAIT)   # the first write, which took longer than a window
    writer.put("logs", "run", [log(1)])
    writer.flush()
    (_s1, end1, rows1), (start2, _e2, rows2) = rec.calls
    assert (rows1, rows2) == (1, 1)
    # No second window (before, it waited a whole one after every write), so the
    # second write starts when the first ended.
    assert clock.windows == [WINDOW]
    assert start2 == end1


class Kept(Recorded):
    """Recorded, keeping each transaction's statements too."""

    def __init__(self, clock: SteppedClock):
        super().__init__(clock, [])
        self.transactions: list[list] = []

    def execute(self, statements) -> list:
        self.transactions.append([(sql, list(rows)) for sql, rows in statements
                                  if "commits" not in sql])
        return super().execute(statements)


def test_a_big_group_is_written_as_bounded_transactions_in_order(writer, clock):
    writer._transactions = rec = Kept(clock)
    big = "x" * (TEXT_LIMIT - 200)
    # Everything below arrives in one group: the window lasts until the flush.
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


def test_one_engine_turn_of_many_big_logs_is_split_too(writer, clock):
    writer._transactions = rec = Kept(clock)
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
