"""Engine events -> a dashboard, as throttled diffs.

A :class:`Bridge` is an engine sink (``core/engine.py``) that keeps the current
row of every task of one run and hands the front end what changed, at most
once per ``interval`` (0.1 s) whatever the event rate: a thousand events on a
hundred tasks in one interval become one diff of a hundred rows.

Threads
-------
engine thread
    calls the sink hooks ``events``, ``logs``, ``snapshot`` and ``finish``.  They
    update the table under ``_lock`` (a few dict writes per event) and return;
    they never build or send a message.  Only ``finish``, once at the end, waits
    for the flusher to send the final table, so the run is not over (for a
    blocking cell, or ``run.wait()``) before its dashboard is.
flusher thread (``nbflow-dashboard``)
    first loads what happened before the bridge was subscribed from the store,
    then every ``interval`` takes the rows changed since the last diff and calls
    ``publish_diff``; after ``finish`` it calls ``publish_snapshot`` with the
    whole final table.  It runs with the kernel parent of the cell that made the bridge
    (``context.py``), so its messages reach that cell's widget.
any thread
    ``resync()`` publishes a full snapshot (a front end that reloaded asks for it).

``_send_lock`` makes "build a message, publish it" one step, so messages leave
in the order their contents were taken: a snapshot is never older than a diff
sent before it.

What is published (plain JSON)
------------------------------
snapshot ``{"run", "seq", "now", "t0", "t1", "running", "outcome", "tasks",
"errors", "logs", "displays", "bars", "restored", "abandoned", "cancel"}`` and diff
(the same without ``outcome``), where

* ``tasks``: ``[[i, state, attempt, started, finished], ...]`` (all tasks in a
  snapshot, the changed ones in a diff; ``i`` is the declaration index);
* ``errors``: ``[[i, summary, traceback], ...]``, the latest attempt's (``summary``
  None clears it);
* ``logs``: ``[[i, attempt, text], ...]``: what that attempt printed (the last
  ``LOG_LIMIT`` characters), so far while it runs (read every ``LIVE_EVERY``
  seconds from a thread worker's buffer; process and Dask workers report at the end);
* ``displays``: ``[[i, attempt, [{"data": {mime: text}, "metadata"?}, ...]], ...]``: the
  rich output that attempt displayed (``notebook/displays.py``), so far while it runs
  (read like its output), the whole list each time it changes;
* ``bars``: ``[[i, attempt, worker, start, end, state, error], ...]``: one per
  attempt, for the timeline and the attempt list (``worker`` is known once the
  attempt ended, ``end`` is None while it runs, ``error`` its error's summary);
* ``restored``, ``abandoned`` and ``cancel``: the tasks restored from an earlier run
  or the cache, the tasks still running when a cancel's grace period ended (recorded
  cancelled, their outcome discarded), and ``[when, why]`` once the run is cancelled;
  a diff carries them only when one changed (else empty lists and None).

``seq`` counts diffs: a diff holds every change since the diff or snapshot numbered
``base`` (normally ``seq - 1``; for ``CATCH_UP`` seconds after a page asked for the
whole state, the seq of the table it got then, so a reloaded page that missed the diffs
sent meanwhile needs no resync).  A front end applies a diff if its ``base`` is at most
the last seq it saw, and asks for a resync if not; a snapshot resets it.  ``t0`` and ``t1`` are the times of
the run's first and latest events, ``now`` the time the message was made (all
Unix seconds); ``outcome`` is the run's final state once ``running`` is false.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..core.events import AT, ATTEMPT, DETAIL, FROM, SEQ, TASK, TO
from ..core.worker import displays_so_far, output_so_far

FINAL_WAIT = 10.0  # seconds a run's end waits for the dashboard's final message, at most
LOG_LIMIT = 20_000
TRACEBACK_LIMIT = 20_000
INTERVAL = 0.1
CATCH_UP = 2.0  # seconds after a page's full-state request in which diffs hold all since it
LIVE_EVERY = 0.5  # seconds between two reads of a running attempt's output, at least
NO_MARKS = {"restored": [], "abandoned": [], "cancel": None}  # a diff where none changed


class Target(Protocol):
    """Where a bridge publishes (the dashboard widget); called on the flusher thread."""

    def publish_diff(self, diff: dict) -> None: ...
    def publish_snapshot(self, snapshot: dict) -> None: ...


class TaskTable:
    """The latest known row of every task of a run, and which rows changed.

    Not thread-safe by itself: the bridge guards it.
    """

    def __init__(self, names: list[str]):
        n = len(names)
        self.names = names
        self.index = {name: i for i, name in enumerate(names)}
        self.state = ["pending"] * n
        self.attempt = [0] * n
        self.started: list[float | None] = [None] * n
        self.finished: list[float | None] = [None] * n
        self.errors: dict[int, tuple[str | None, str | None]] = {}
        self.outputs: dict[tuple[int, int], str] = {}   # what each ended attempt printed
        self.live: dict[tuple[int, int], str] = {}      # ... and each running one, so far
        self.displays: dict[tuple[int, int], list] = {}  # what each attempt displayed
        self.bars: dict[tuple[int, int], list] = {}
        self.restored: set[int] = set()                 # restored from a run or the cache
        self.abandoned: set[int] = set()                # still running when a cancel gave up
        self.cancel: list | None = None                 # [when, why] once the run is cancelled
        self.running: dict[int, int] = {}               # task -> its running attempt
        self.last_seq = -1
        self.first_at: float | None = None
        self.last_at: float | None = None
        self._dirty: set[int] = set()
        self._dirty_errors: set[int] = set()
        self._dirty_logs: set[tuple[int, int]] = set()
        self._dirty_displays: set[tuple[int, int]] = set()
        self._dirty_bars: set[tuple[int, int]] = set()
        self._dirty_marks = False
        self._kept: tuple[set, ...] | None = None   # keep_changes
        self._kept_marks = False

    # -- recording ---------------------------------------------------------------
    def apply(self, event: tuple) -> None:
        """Record one engine event (``core/events.py``); events at or before ``last_seq``
        are ignored, so a history and a live feed may overlap."""
        if event[SEQ] <= self.last_seq:
            return
        self.last_seq = event[SEQ]
        i = self.index[event[TASK]]
        a, to, at = event[ATTEMPT], event[TO], event[AT]
        detail = event[DETAIL] or {}
        if self.first_at is None:
            self.first_at = at
        self.last_at = at
        self.state[i], self.attempt[i] = to, a
        self._dirty.add(i)
        if to == "running":
            self.started[i], self.finished[i] = at, None
            self.running[i] = a
            self._bar(i, a, [i, a, None, at, None, "running", None])
        elif event[FROM] == "running":
            self.running.pop(i, None)
            start = detail.get("started", self.started[i])
            end = detail.get("finished", at)
            self.started[i], self.finished[i] = start, end
            self._bar(i, a, [i, a, detail.get("worker"), start, end, to, detail.get("error")])
        if detail.get("cached"):
            self.restored.add(i)
            self._dirty_marks = True
        if to == "cancelled":
            if self.cancel is None:
                self.cancel = [at, detail.get("reason")]
            if detail.get("abandoned"):
                self.abandoned.add(i)
            self._dirty_marks = True
        if "error" in detail:
            self.errors[i] = (detail["error"], _tail(detail.get("traceback"), TRACEBACK_LIMIT))
            self._dirty_errors.add(i)
        elif to == "succeeded" and i in self.errors:
            self.errors[i] = (None, None)
            self._dirty_errors.add(i)

    def _bar(self, i: int, a: int, bar: list) -> None:
        self.bars[i, a] = bar
        self._dirty_bars.add((i, a))

    def add_output(self, task: str, attempt: int, stdout: str, stderr: str,
                   displays: Sequence[dict] = ()) -> None:
        """Record what one attempt printed and displayed (a repeated record replaces
        the first)."""
        key = self.index[task], attempt
        self.outputs[key] = _tail((stdout or "") + (stderr or ""), LOG_LIMIT)
        self.live.pop(key, None)
        self._dirty_logs.add(key)
        if displays or key in self.displays:
            self.displays[key] = list(displays)
            self._dirty_displays.add(key)

    def add_stored(self, records: list[dict]) -> None:
        """Record the attempts' logs as ``Store.logs`` reads them."""
        for rec in records:
            self.add_output(rec["task"], rec["attempt"], rec["stdout"], rec["stderr"],
                            rec.get("displays") or ())

    def add_live_displays(self, i: int, attempt: int, shown: list[dict]) -> None:
        """What a running attempt displayed so far (its record, once it ends, wins)."""
        key = (i, attempt)
        if key in self.outputs or self.displays.get(key) == shown:
            return
        self.displays[key] = shown
        self._dirty_displays.add(key)

    def add_live_output(self, i: int, attempt: int, text: str) -> None:
        """What a running attempt printed so far (its record, once it ends, wins)."""
        key, text = (i, attempt), _tail(text, LOG_LIMIT)
        if key in self.outputs or self.live.get(key) == text:
            return
        self.live[key] = text
        self._dirty_logs.add(key)

    def _log(self, key: tuple[int, int]) -> list:
        return [*key, self.outputs[key] if key in self.outputs else self.live.get(key, "")]

    # -- reading -------------------------------------------------------------------
    def _row(self, i: int) -> list:
        return [i, self.state[i], self.attempt[i], self.started[i], self.finished[i]]

    def keep_changes(self) -> None:
        """From now on each diff holds every change since this call, not only those since
        the previous diff, until :meth:`forget_changes` (a page that reloaded may miss a
        diff or two: its next one then still has all it needs).  Already keeping: kept on
        from the earlier call."""
        if self._kept is None:
            self._kept = (set(), set(), set(), set(), set())
            self._kept_marks = False

    def forget_changes(self) -> None:
        """Diffs hold the changes since the previous diff again."""
        self._kept = None

    def take_diff(self) -> dict | None:
        """What changed since the last call (since :meth:`keep_changes`, while keeping),
        or None if nothing did."""
        dirty = (self._dirty, self._dirty_errors, self._dirty_logs, self._dirty_displays,
                 self._dirty_bars)
        if not any(dirty):
            return None
        marks = self._dirty_marks
        if self._kept is not None:
            for kept, new in zip(self._kept, dirty):
                kept |= new
            marks = self._kept_marks = self._kept_marks or marks
            dirty = self._kept
        rows, errors, logs, displays, bars = dirty
        diff = {"tasks": [self._row(i) for i in sorted(rows)],
                "errors": [[i, *self.errors[i]] for i in sorted(errors)],
                "logs": [self._log(k) for k in sorted(logs)],
                "displays": [[*k, self.displays[k]] for k in sorted(displays)],
                "bars": [self.bars[k] for k in sorted(bars)],
                **(self._marks() if marks else NO_MARKS)}
        self._dirty.clear()
        self._dirty_displays.clear()
        self._dirty_errors.clear()
        self._dirty_logs.clear()
        self._dirty_bars.clear()
        self._dirty_marks = False
        return diff

    def _marks(self) -> dict:
        return {"restored": sorted(self.restored), "abandoned": sorted(self.abandoned),
                "cancel": self.cancel}

    def snapshot(self) -> dict:
        """Every row, error, log and bar (does not touch what ``take_diff`` will send)."""
        return {"tasks": [self._row(i) for i in range(len(self.state))],
                "errors": [[i, *e] for i, e in sorted(self.errors.items()) if e[0] is not None],
                "logs": [self._log(k) for k in sorted(self.outputs.keys() | self.live.keys())],
                "displays": [[*k, v] for k, v in sorted(self.displays.items()) if v],
                "bars": [self.bars[k] for k in sorted(self.bars)],
                **self._marks(), "t0": self.first_at, "t1": self.last_at}


class Bridge:
    """Feeds one run's events to ``target`` as throttled diffs (see the module docstring).

    Parameters
    ----------
    run
        The run: ``id``, ``names``, ``store`` and ``state`` are used.
    target
        Receives ``publish_diff(diff)`` and ``publish_snapshot(snapshot)``.
    interval
        Seconds between two diffs at most rate.
    initializer
        Called first in the flusher thread (gives it the cell's kernel parent).
    """

    def __init__(self, run: Any, target: Target, *, interval: float = INTERVAL,
                 initializer: Callable[[], None] | None = None):
        self.run = run
        self.target = target
        self.interval = interval
        self.table = TaskTable(run.names)
        self.seq = 0
        self._last_sent = -float("inf")
        self._catch_up: tuple[int, float] | None = None   # (base, until): see table_now
        self._next_live = 0.0
        self._lock = threading.Lock()
        # Re-entrant: a page's full-state request holds it from taking the table to
        # publishing it (Dashboard.send_state), so no diff slips in between.
        self._send_lock = threading.RLock()
        self._live = False          # history loaded: events go straight to the table
        self._early: list[tuple] = []
        self._early_logs: list[tuple] = []
        self._subscribed = threading.Event()
        self._fresh = False         # subscribed before the run's first event
        self._loaded = threading.Event()
        self._ended = threading.Event()
        self._final = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._work, args=(initializer,), daemon=True,
                                        name="nbflow-dashboard")
        self._thread.start()

    # -- the sink hooks (engine thread) ----------------------------------------------
    def events(self, batch: list[tuple]) -> None:
        if self._closed:  # the engine cannot unsubscribe a sink: ignore, cheaply
            return
        with self._lock:
            if not self._live:
                self._early.extend(batch)
                return
            apply = self.table.apply
            for event in batch:
                apply(event)

    def logs(self, batch: list[tuple]) -> None:
        if self._closed:
            return
        with self._lock:
            if not self._live:
                self._early_logs.extend(batch)
                return
            for record in batch:
                self.table.add_output(*record)

    def snapshot(self, rows: list[tuple]) -> None:
        # The engine calls this once it has subscribed the bridge: every event
        # before it is in the store's queue, every later one comes here.  Every
        # event moves a task out of pending, so if all are pending there was
        # none, and no history to wait for (the store may be seconds behind
        # the run on a big one).
        self._fresh = all(state == "pending" and attempt == 0 for _n, state, attempt in rows)
        self._subscribed.set()

    def finish(self, cancel_reason: str | None) -> None:
        # The one hook that waits: until the final table is out (FINAL_WAIT at most),
        # so a blocking run's cell, or run.wait(), ends with the dashboard final too
        # (nbclient drops messages that come after their cell is done).
        self._subscribed.set()
        self._ended.set()
        self._final.wait(FINAL_WAIT)

    # -- other threads ---------------------------------------------------------------
    def resync(self) -> None:
        """Publish the whole table now (for a front end that lost track)."""
        with self._send_lock:
            with self._lock:
                snap = self._snapshot()
            self.target.publish_snapshot(snap)

    def current(self, timeout: float = FINAL_WAIT) -> dict:
        """The whole table as a snapshot, without publishing it.

        Waits (``timeout`` at most) for the history of a run that is under way to
        be loaded, so it is not a table of pending tasks that have long finished.
        """
        self._loaded.wait(timeout)
        with self._lock:
            return self._snapshot()

    def sending(self):
        """The lock that orders what is published; hold it to publish a snapshot taken
        with :meth:`table_now` before any later diff."""
        return self._send_lock

    def table_now(self) -> dict | None:
        """The whole table as a snapshot, with the ``seq`` of the last diff sent, or None
        while the run's history is still being read (never waits for it).

        What a reloaded page gets in its first message: the diffs that follow it
        continue from its ``seq``.
        """
        if not self._loaded.is_set():
            return None
        with self._send_lock:
            with self._lock:
                # The page may miss the diffs sent before its state reaches it (ipywidgets
                # answers every model's state in one message, sent after this returns): for a
                # while each diff holds all that changed since this snapshot, with its seq as
                # ``base``, so the page needs no resync round trip.
                until = time.monotonic() + CATCH_UP
                base = self.seq if self._catch_up is None else self._catch_up[0]
                self.table.keep_changes()
                self._catch_up = (base, until)
                return self._snapshot()

    def close(self) -> None:
        """Stop publishing (the widget closed or shows another run)."""
        self._closed = True
        self._subscribed.set()
        self._ended.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the flusher thread to end; True if it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the flusher thread ----------------------------------------------------------
    def _work(self, initializer: Callable[[], None] | None) -> None:
        try:
            if initializer is not None:
                initializer()
            self._subscribed.wait()
            with self._send_lock:  # a resync waits for the history
                self._load_history()
            self._loaded.set()
            while not self._ended.wait(self.interval):
                self.flush()
            if not self._closed:
                self._publish_final()
        finally:
            self._loaded.set()
            self._final.set()

    def _publish_final(self) -> None:
        # The last message keeps its distance from the one before it too (up to the
        # default interval: a slower bridge need not hold the final state back).
        wait = self._last_sent + min(self.interval, INTERVAL) - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        with self._send_lock:
            with self._lock:
                self.table.take_diff()  # folded into the snapshot
                snap = self._snapshot(running=False)
            self.target.publish_snapshot(snap)

    def _load_history(self) -> None:
        if self._closed:
            return
        events, outputs = [], []
        try:
            if not self._fresh:
                store = self.run.store
                store.flush()
                events = store.events(self.run.id)
                outputs = store.logs(self.run.id)
        except Exception as exc:  # noqa: BLE001 - without history it still shows what comes next
            warnings.warn(f"nbflow: the dashboard could not read run {self.run.id}'s history "
                          f"from the store ({exc!r}); it shows the events from now on",
                          RuntimeWarning, stacklevel=1)
        table = self.table
        with self._lock:
            for event in events:
                table.apply(event)
            table.add_stored(outputs)
            for event in self._early:
                table.apply(event)
            for record in self._early_logs:
                table.add_output(*record)
            self._early.clear()
            self._early_logs.clear()
            self._live = True

    def flush(self) -> bool:
        """Publish what changed since the last diff now, if anything did; True if it did.

        The flusher thread calls this every ``interval``; calling it from elsewhere
        sends sooner (tests do, to look at one diff).
        """
        with self._send_lock:
            with self._lock:
                self._read_live_output()
                diff = self.table.take_diff()
                catch_up = self._catch_up
                if catch_up is not None and time.monotonic() > catch_up[1]:
                    self.table.forget_changes()   # this diff still holds all since base
                    self._catch_up = None
            if diff is None:
                return False
            base = self.seq if catch_up is None else catch_up[0]
            self.seq += 1
            diff.update(run=self.run.id, seq=self.seq, base=base, now=time.time(), running=True,
                        t0=self.table.first_at, t1=self.table.last_at)
            self.target.publish_diff(diff)
            self._last_sent = time.monotonic()
            return True

    def _read_live_output(self) -> None:
        # Throttled: each running attempt's buffer is read every LIVE_EVERY seconds at
        # most, and only what it printed travels (capped to its last LOG_LIMIT characters).
        now = time.monotonic()
        if now < self._next_live:
            return
        self._next_live = now + LIVE_EVERY
        table, run_id = self.table, self.run.id
        for i, attempt in list(table.running.items()):
            text = output_so_far(run_id, table.names[i], attempt)
            if text:
                table.add_live_output(i, attempt, text)
            shown = displays_so_far(run_id, table.names[i], attempt)
            if shown:
                table.add_live_displays(i, attempt, shown)

    def _snapshot(self, running: bool | None = None) -> dict:
        running = not self._ended.is_set() if running is None else running
        snap = self.table.snapshot()
        snap.update(run=self.run.id, seq=self.seq, now=time.time(), running=running,
                    outcome=None if running else self.run.state)
        return snap


def _tail(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return f"[... {len(text) - limit:,} earlier characters not shown]\n" + text[-limit:]
