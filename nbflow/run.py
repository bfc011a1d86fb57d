"""One run of a flow: ``Run``, the handle ``Flow.run`` returns.

It drives the engine (in the calling thread, or in an ``nbflow-engine`` thread
for a background run) and answers questions about the run: its state and
counts from the engine, its task table, events and logs from the store.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .core.engine import Engine
from .core.graph import Graph
from .core.safe import add_note
from .core.states import State
from .core.worker import capturing
from .errors import NoSuchTask, TaskFailedError
from .render import join_attempts

if TYPE_CHECKING:
    from .api import Flow


class Run:
    """One run of a flow: its state, results, event log and logs."""

    def __init__(self, flow: Flow, run_id: str, engine: Engine):
        self.flow = flow
        self.id = run_id
        self._engine = engine
        self._thread: threading.Thread | None = None
        self._finished = threading.Event()
        self._store_error: BaseException | None = None
        self._engine_error: BaseException | None = None
        # Called with the run once it is over, just before wait() returns (what shows
        # its summary in a cell replaces it with the final one).
        self._when_done: list[Callable[[Run], None]] = []

    def _execute(self, initializer=None) -> None:
        # The one function that drives the engine, in the cell thread or in the
        # background thread alike.
        try:
            if initializer is not None:
                initializer()
            # Tasks' display() too, in a kernel (IPython is then imported already).
            from .notebook.displays import capturing_displays
            with capturing(), capturing_displays():
                self._engine.run()
        except Exception as exc:  # an engine bug must not look like a run still going
            self._engine_error = exc
            raise
        finally:
            # Queued first: the durations go in with the run's last events.
            self._record_durations()
            try:
                self.store.finish_run(self.id, self.state, time.time())
            except Exception as exc:  # noqa: BLE001 - reported by wait()/the blocking run, not lost
                self._store_error = exc
            for callback in list(self._when_done):
                try:
                    callback(self)
                except Exception as exc:  # noqa: BLE001 - a view must not fail the run
                    warnings.warn(f"nbflow: a view of run {self.id} failed at its end "
                                  f"({exc!r}); the run itself is not affected",
                                  RuntimeWarning, stacklevel=1)
            self._finished.set()

    def _record_durations(self) -> None:
        # The history the duration-ranking policies read (store/history.py); losing
        # it only makes them guess, so a refusal is a warning, never the run's error.
        e = self._engine
        try:
            self.flow.history.record(self.id, e.graph, self.flow._bases, e.took)
        except Exception as exc:  # noqa: BLE001 - history only guides policies
            warnings.warn(f"nbflow: run {self.id}: task durations not recorded ({exc}); "
                          "sjf, edf and critical_path will use older ones or guesses",
                          RuntimeWarning, stacklevel=1)

    def _raise_store_error(self) -> None:
        if self._engine_error is not None:
            raise self._engine_error
        if self._store_error is not None:
            raise self._store_error

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run is done (or ``timeout`` seconds pass); returns the run.

        Raises
        ------
        TimeoutError
            the run is still going after ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        # Short waits keep KeyboardInterrupt deliverable.
        while not self._finished.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {self.id} is still going after {timeout}s")
        self._raise_store_error()
        return self

    def cancel(self, reason: str = "cancelled by the user") -> None:
        """Stop the run: nothing new starts, waiting tasks become ``cancelled``."""
        self._engine.cancel(reason)

    def on_event(self, callback, *, interval: float = 0.1):
        """Call ``callback(events)`` with this run's events from now on, on a thread of its
        own, at most once per ``interval`` seconds (a list of dicts: see ``nbflow.listen``).

        Returns the :class:`nbflow.listen.Listener` (``close()`` stops it).

        Raises
        ------
        TypeError
            ``callback`` is not callable.
        """
        from .listen import Listener
        from .notebook.context import thread_initializer
        listener = Listener(callback, interval=interval, initializer=thread_initializer())
        self.add_sink(listener)
        return listener

    def add_sink(self, sink: Any) -> None:
        """Start sending this run's events to ``sink`` (see ``Engine.add_sink``)."""
        self._engine.add_sink(sink)

    def __repr__(self) -> str:
        parts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        return f"<nbflow.Run {self.id} of {self.flow.name!r}: {self.state} ({parts})>"

    def _repr_html_(self) -> str:
        from .render import run_html
        return run_html(self)

    def _ipython_display_(self) -> None:
        # A run still going shows a summary that says it is a snapshot, and replaces
        # it with the final one when the run ends.
        from .notebook.summary import display_run
        display_run(self)

    @property
    def store(self):
        return self.flow.store

    @property
    def cancel_grace(self) -> float:
        """Seconds a cancel waits for running tasks to stop before it abandons them."""
        return self._engine.cancel_grace

    @property
    def names(self) -> list[str]:
        return self._engine.graph.names

    @property
    def graph(self) -> Graph:
        """The DAG this run executes (names, dependencies, Kahn levels)."""
        return self._engine.graph

    def dashboard(self, *, collapse_above: int | None = 300):
        """A live dashboard of this run: DAG, status table, timeline and a cancel button.

        ``collapse_above``: above this many tasks the DAG folds each level into
        one node (click to expand); None never folds.
        """
        from .notebook.widgets import dashboard
        return dashboard(self, collapse_above=collapse_above)

    @property
    def done(self) -> bool:
        """True once every task is terminal and the store has the final record."""
        return self._finished.is_set()

    @property
    def state(self) -> str:
        """``running``, ``failed`` (some task failed, or the engine itself raised),
        ``cancelled`` or ``succeeded``."""
        e = self._engine
        if self._engine_error is not None:
            return "failed"
        if e.unfinished:
            return "running"
        # A failure explains a fail_fast cancel better than the cancel does.
        if State.FAILED in e.state or State.UPSTREAM_FAILED in e.state:
            return "failed"
        if e.cancelled is not None:
            return "cancelled"
        return "succeeded"

    def counts(self) -> dict[str, int]:
        """Number of tasks per state."""
        out: dict[str, int] = {}
        for s in self._engine.state:
            out[s.value] = out.get(s.value, 0) + 1
        return out

    @property
    def failed(self) -> list[str]:
        """Tasks that failed after their last attempt (not those failed upstream)."""
        return [n for n, s in zip(self.names, self._engine.state) if s.value == "failed"]

    def _index(self, name: str) -> int:
        try:
            return self._engine.graph.index[name]
        except KeyError:
            raise NoSuchTask(self.flow._unknown(name)) from None

    def task_state(self, name: str) -> str:
        return self._engine.state[self._index(name)].value

    def result(self, name: str) -> Any:
        """The value task ``name`` returned (a dict of assigned variables for a cell task).

        Raises
        ------
        the task's own exception, if it failed; TaskFailedError if it did not run.
        """
        i = self._index(name)
        state = self._engine.state[i]
        if state.value == "succeeded":
            return self._engine.results[i]
        if i in self._engine.errors:
            raise self._engine.errors[i]
        raise TaskFailedError(f"task {name!r} has no result: it is {state.value}"
                              + (" (a dependency did not succeed)"
                                 if state.value == "upstream_failed" else ""))

    def reraise(self) -> None:
        """Raise the exception of the first failed task, if any (with the task named in a note)."""
        for name in self.failed:
            err = self._engine.errors.get(self._index(name))
            if err is not None:
                note = f"nbflow: raised by task {name!r} in run {self.id}"
                if note not in getattr(err, "__notes__", ()):
                    add_note(err, note)
                raise err

    def status(self, by: str | None = None):
        """A pandas DataFrame, one row per task: state, level, attempt, times, error,
        and how it was scheduled: group, pool slots, the expected duration the
        policy used (NaN for a policy that reads none), and ``late`` (seconds past
        its deadline, NaN if none or met).  The columns are data (UTC timestamps,
        durations in seconds, None for no error); the table displays itself with
        local times, readable durations and blanks.

        ``by="group"``: one row per group instead, with the count of tasks per
        state and the rolled-up state (``core/rollup.py`` has the rule).

        Raises
        ------
        ValueError
            ``by`` is neither None nor ``"group"``.
        """
        import pandas as pd
        if by not in (None, "group"):
            raise ValueError(f"status(by={by!r}): by must be None (one row per task) or "
                             "'group' (one row per group)")
        self.store.flush()
        rows = self.store.tasks(self.id)
        df = pd.DataFrame(rows, columns=["name", "state", "level", "attempt", "started",
                                         "finished", "error"])
        specs, info = self._engine.specs, self._engine.info
        if by == "group":
            from .core.rollup import by_group
            return pd.DataFrame(by_group([s.group for s in specs], list(df["state"])))
        late = _lateness(info.deadlines, df["finished"], time.time())
        df = df.rename(columns={"name": "task"})
        for col in ("started", "finished"):
            df[col] = pd.to_datetime(df[col], unit="s", utc=True)
        df.insert(6, "duration", (df["finished"] - df["started"]).dt.total_seconds())
        df["cached"] = df["task"].isin(self.store.restored_tasks(self.id))
        df["group"] = [s.group for s in specs]
        df["resources"] = [",".join(f"{p}={n}" for p, n in s.resources.items()) for s in specs]
        # What the policy read; NaN where it reads no durations (fifo, priority, aging).
        reads = getattr(self._engine.ready.policy, "needs_history", False)
        df["expected"] = info.expected if reads else float("nan")
        df["late"] = late
        from .readable import status_frame
        return status_frame(df)

    def events(self):
        """The run's event log as a DataFrame (the source of truth for ``status``)."""
        import pandas as pd
        self.store.flush()
        df = pd.DataFrame(self.store.events(self.id),
                          columns=["run_id", "seq", "task", "attempt", "from_state", "to_state",
                                   "at", "detail"]).drop(columns="run_id")
        df["at"] = pd.to_datetime(df["at"], unit="s", utc=True)
        return df

    def logs(self, name: str, stream: str = "both") -> str:
        """What task ``name`` printed, all attempts; ``stream`` is stdout, stderr or both."""
        self._index(name)
        if stream not in ("both", "stdout", "stderr"):
            raise ValueError("stream must be 'stdout', 'stderr' or 'both'")
        self.store.flush()
        texts = {rec["attempt"]: (rec["stdout"] if stream != "stderr" else "")
                 + (rec["stderr"] if stream != "stdout" else "")
                 for rec in self.store.logs(self.id, name)}
        return join_attempts(texts)

    def displays(self, name: str) -> list[dict]:
        """What task ``name`` displayed (``display(df)``, figures), all attempts in order:
        ``[{"attempt": 1, "data": {mime: text}}, ...]``, as the dashboard shows it."""
        self._index(name)
        self.store.flush()
        return [{"attempt": rec["attempt"], **shown}
                for rec in self.store.logs(self.id, name) for shown in rec["displays"]]


def _lateness(deadlines, finished, now: float) -> list[float]:
    """Seconds each task ended (or, unfinished, is by ``now``) past its deadline."""
    out = []
    for due, end in zip(deadlines, finished):
        end = now if end is None or end != end else end
        out.append(end - due if due is not None and end > due else float("nan"))
    return out
