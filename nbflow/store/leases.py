"""Leases: which engine owns a run, keeping that ownership alive, taking it over.

A run is owned by the :class:`~nbflow.store.Store` object that created it: its
owner id (random, one per Store), host and pid are in the run's row.  While the
run is live the owner refreshes the row's ``heartbeat`` every ``ttl / 3``
seconds with a compare-and-set (``... WHERE id = :run AND owner = :me``).

The lease is *expired* when the heartbeat is older than ``ttl`` (default 30 s,
``NBFLOW_LEASE_TTL`` or ``Store(lease_ttl=...)``), or at once when the owner ran
where this process runs and its process is gone (a restarted or killed kernel).
Heartbeat ages compare clocks of different hosts: keep them in sync, or the TTL
long.

"Where this process runs" is more than the host name: containers sharing a
store volume often share a host name too, and a pid from another PID namespace
means nothing here (it is not visible, or it is another process).  So the
``host`` column holds the host name followed by the PID namespace and the boot
id, ``"build-7 (pid ns 4026532585, boot 3f2a9c1e)"``: only an owner recorded
with exactly this process's identity can be declared dead by its pid.  Any
other (another namespace, a reboot, a row of an nbflow that recorded the bare
host name) waits for its heartbeat to age.

Resuming a run (``flow.run(resume=...)``, ``flow.requeue``) claims it in the
same transaction that creates the new run (:func:`claim`):

* a live lease held by another engine is refused with :class:`LeaseHeldError`
  naming the owner;
* a run left ``running`` by an expired owner is taken over with a
  compare-and-set on its ``version``: it becomes ``crashed`` (finished at its
  last heartbeat) and owned by the taker, so a stalled owner that wakes up
  finds its lease gone and cancels its run;
* the new run's ``resumed_from`` column is unique, so a run is resumed at most
  once: of two kernels resuming it at the same moment exactly one wins and the
  other gets :class:`StoreVersionConflict`.

Why a thread of its own rather than the writer: the writer sleeps while there
is nothing to write, and a run whose tasks take minutes writes nothing for
minutes; a heartbeat must not wait for that, nor for a long group commit.
The thread runs only while this Store has a live run.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from ..errors import LeaseHeldError, NoSuchRun, StoreVersionConflict
from .schema import runs

DEFAULT_TTL = 30.0
# A TTL below a second makes the keeper beat several times a second for nothing;
# above a day a crashed run stays locked for longer than anyone waits.
MIN_TTL, MAX_TTL = 1.0, 86400.0


@dataclass(frozen=True)
class Owner:
    """Who drives a run: a random id per Store object, and where it runs."""

    id: str
    host: str
    pid: int

    @classmethod
    def here(cls) -> Owner:
        return cls(uuid.uuid4().hex, host_identity(), os.getpid())

    def columns(self) -> dict[str, Any]:
        return {"owner": self.id, "host": self.host, "pid": self.pid}


def host_identity() -> str:
    """This process's host name, PID namespace and boot (see the module docstring)."""
    try:
        ns = os.stat("/proc/self/ns/pid").st_ino
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()[:8]
    except OSError:  # no /proc (macOS...): no PID namespaces either
        return socket.gethostname()[:255]
    where = f" (pid ns {ns}, boot {boot})"
    return socket.gethostname()[:255 - len(where)] + where   # the column holds 255


def resolve_ttl(value: float | None) -> float:
    """The lease TTL: ``value``, else ``NBFLOW_LEASE_TTL``, else 30 seconds.

    Raises
    ------
    ValueError
        not a number of seconds from ``MIN_TTL`` (1) to ``MAX_TTL`` (a day).
    """
    text = os.environ.get("NBFLOW_LEASE_TTL", "").strip() if value is None else value
    if text == "":
        return DEFAULT_TTL
    try:
        ttl = float("nan") if isinstance(text, bool) else float(text)
    except (TypeError, ValueError):
        ttl = float("nan")
    if not MIN_TTL <= ttl <= MAX_TTL:   # also refuses nan and inf
        source = ("NBFLOW_LEASE_TTL" if value is None else "lease_ttl")
        fix = ("Fix or unset the environment variable." if value is None
               else "Pass Store(url, lease_ttl=SECONDS).")
        raise ValueError(f"{source} must be a number of seconds from {MIN_TTL:g} to "
                         f"{MAX_TTL:g} (a day), got {text!r}. {fix}")
    return ttl


class LeaseKeeper:
    """Refreshes the heartbeat of every live run one Store owns.

    Its thread runs while at least one run is held: it starts with the first
    :meth:`hold` and ends as soon as the last run is released (or at
    :meth:`close`), so an idle kernel keeps no thread for it.
    """

    def __init__(self, engine: Engine, owner: Owner, ttl: float):
        self._engine, self.owner, self.ttl = engine, owner, ttl
        self._held: dict[str, Callable[[str], None]] = {}
        self._lost: dict[str, str] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()  # set on close, and when the last run is released
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def thread(self) -> threading.Thread | None:
        """The keeper's thread while it runs."""
        return self._thread

    def holds(self, run_id: str) -> bool:
        """True while ``run_id`` is live in this Store."""
        return run_id in self._held

    def hold(self, run_id: str, on_lost: Callable[[str], None]) -> None:
        """Keep ``run_id``'s lease alive until :meth:`release`.

        ``on_lost(message)`` is called (from the keeper's thread) if another
        engine takes the run over meanwhile.
        """
        with self._lock:
            self._held[run_id] = on_lost
            self._closed = False   # a Store used again after close() keeps leases again
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="nbflow-lease-keeper")
                self._thread.start()

    def release(self, run_id: str) -> str | None:
        """Stop keeping ``run_id``; the message if its lease was lost meanwhile."""
        with self._lock:
            self._held.pop(run_id, None)
            if not self._held:
                self._wake.set()
            return self._lost.pop(run_id, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.set()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.ttl / 3)
            with self._lock:
                self._wake.clear()
                if self._closed or not self._held:
                    self._thread = None  # the next hold() starts a new one
                    return
            self.renew()

    def renew(self) -> None:
        """Refresh the heartbeat of every run held now (the thread does it every
        ``ttl / 3`` seconds); a run found taken over is let go and stopped."""
        with self._lock:
            held = list(self._held.items())
        if not held:
            return
        now = time.time()
        try:
            with self._engine.begin() as conn:
                lost = [run_id for run_id, _ in held if conn.execute(
                    update(runs)
                    .where(runs.c.id == run_id, runs.c.owner == self.owner.id,
                           runs.c.state == "running")
                    .values(heartbeat=now, version=runs.c.version + 1)).rowcount == 0]
        except Exception:  # noqa: BLE001
            # A busy or failing store: the next beat tries again.  Should the
            # lease expire meanwhile and another engine take the run, the next
            # successful beat finds out and stops the run.
            return
        for run_id, on_lost in held:
            if run_id not in lost:
                continue
            message = (f"run {run_id} was taken over by another engine while this one ran "
                       "it (its lease had expired); this engine stopped it")
            with self._lock:
                if self._held.pop(run_id, None) is None:
                    continue  # released meanwhile: the run ended on its own
                self._lost[run_id] = message
            on_lost(message)


def lease_status(row: Any, keeper: LeaseKeeper, now: float) -> str:
    """``"free"`` (not running), ``"live"`` or ``"expired"`` for a run row."""
    if row.state != "running":
        return "free"
    if row.owner == keeper.owner.id:
        return "live" if keeper.holds(row.id) else "expired"
    return "expired" if owner_gone(row.host, row.pid, row.heartbeat, now, keeper.ttl,
                                   keeper.owner.host) else "live"


def owner_gone(host: str | None, pid: int | None, heartbeat: float | None, now: float,
               ttl: float, here: str | None = None) -> bool:
    """Whether the kernel that holds a running run's lease is gone: its process ended (on
    this host, ``here``: ``host_identity()`` by default), or its heartbeat is older than
    ``ttl``."""
    if here is None:
        here = host_identity()
    if host == here and pid is not None and not _alive(pid):
        return True
    return heartbeat is None or now - heartbeat > ttl


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # a killed process its parent has not reaped yet is gone too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def claim(conn: Connection, old_id: str, flow: str, keeper: LeaseKeeper, now: float) -> None:
    """Check that run ``old_id`` of ``flow`` may be resumed, taking it over if needed.

    Runs inside the transaction that inserts the resuming run.

    Raises
    ------
    NoSuchRun
        no such run, or it belongs to another flow.
    LeaseHeldError
        its lease is live.
    StoreVersionConflict
        it was already resumed, or another process changed it first.
    """
    row = conn.execute(select(runs).where(runs.c.id == old_id)).first()
    if row is None or row.flow != flow:
        whose = "" if row is None else f" (it is a run of flow {row.flow!r})"
        raise NoSuchRun(f"flow {flow!r} has no run {old_id!r}{whose}; its runs are listed by "
                        f"flow.store.runs({flow!r}) and `nbflow runs`")
    later = conn.execute(select(runs.c.id).where(runs.c.resumed_from == old_id)).scalar()
    if later is not None:
        raise StoreVersionConflict(
            f"run {old_id} was already resumed by run {later}. Resume that run instead "
            "(flow.run(resume=True) picks the latest run of the flow).")
    status = lease_status(row, keeper, now)
    if status == "live":
        raise LeaseHeldError(_held_message(row, keeper, now))
    if status == "expired":
        taken = conn.execute(
            update(runs).where(runs.c.id == old_id, runs.c.version == row.version)
            .values(state="crashed", finished=row.heartbeat or now,
                    version=row.version + 1, **keeper.owner.columns())).rowcount
        if taken != 1:
            raise StoreVersionConflict(
                f"run {old_id} changed while this kernel was taking it over: another kernel "
                "resumed it, or its owner came back to life. Look at the flow's runs "
                "and resume the latest one.")


def _held_message(row: Any, keeper: LeaseKeeper, now: float) -> str:
    if row.owner == keeper.owner.id:
        return (f"run {row.id} of flow {row.flow!r} is still running in this kernel: wait for "
                "it (run.wait()) or cancel it (run.cancel()) before resuming it")
    age = f"{now - row.heartbeat:.1f}s ago" if row.heartbeat is not None else "never"
    return (f"run {row.id} of flow {row.flow!r} is still running, owned by another engine: "
            f"owner {row.owner} on host {_shown(row.host)}, pid {row.pid}, last heartbeat {age}. "
            f"Wait for it to finish, or stop that kernel; its lease expires "
            f"{keeper.ttl:g}s after its last heartbeat, and the run can then be resumed here.")


def _shown(host: str | None) -> str:
    """``'build-7' (pid ns 4026532585, boot 3f2a9c1e)``: the name quoted, its identity not."""
    name, sep, rest = (host or "").partition(" (pid ns ")
    return f"{name!r} (pid ns {rest}" if sep else repr(host)
