"""The cell-status channel: live task states for the lab extension's cell badges.

One named comm target, :data:`TARGET`, carries the states of the tasks each
notebook cell declared.  Both sides may open it: the front end opens a comm
with ``{"protocol": PROTOCOL}`` when it connects to a kernel (and after a
reload); the kernel opens one at each run start, because kernel-to-front
messages travel on IOPub even while a blocking ``%flow run`` keeps the shell
busy, and a front end's own open would wait for that cell to end.  Every
message goes to every comm the kernel holds (IOPub reaches each page anyway;
a page knows only its own comm ids).

Messages to the front end (plain JSON)
--------------------------------------
``state``
    ``{"type": "state", "protocol", "notebook", "declared", "runs"}``: the
    whole picture, first on every comm.  ``declared`` is
    ``[[flow, task, cell], ...]`` for the tasks declared now; ``runs`` the
    runs this kernel made lately, oldest first, each ``{"id", "flow", "names",
    "cells", "attempts", "running", "outcome", "now", "tasks", "errors"}``
    where ``attempts`` is each task's most attempts, ``tasks`` is
    ``[[i, state, attempt, started, finished], ...]`` and ``errors``
    ``[[i, first line of the error or None], ...]``.
``run``
    ``{"type": "run", ...}`` one run as in ``runs``, when it starts.
``diff``
    ``{"type": "diff", "run", "seq", "now", "running", "outcome", "tasks",
    "errors"}``: what changed, throttled by a :class:`~.bridge.Bridge` (at most
    one per ``INTERVAL`` per run, whatever the rate of events).
``declared``
    ``{"type": "declared", "declared"}`` after a cell changed the declarations.
``error``
    ``{"type": "error", "message"}``: the front end speaks another protocol.

Messages from the front end are dispatched on ``type`` through ``HANDLERS``
(``hello`` and ``refresh`` ask for a ``state``); an unknown type is logged with
a report-this hint, never raised into the kernel.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .bridge import Bridge
from .context import thread_initializer, track_cells

TARGET = "nbflow.cells"
#: Bumped when a message changes shape; the two sides refuse another version.
PROTOCOL = 1
KEPT_RUNS = 4         # runs of this kernel whose states a new page still gets
KEPT_COMMS = 16       # a reloaded page never closes its comm: keep only the newest
ERROR_LINE = 300      # characters of an error's first line on a badge

log = logging.getLogger("nbflow")


def attach(flow: Any) -> None:
    """Follow ``flow``'s runs on the channel of the running kernel, if there is one."""
    shell = _kernel_shell()
    if shell is None:
        return
    channel = getattr(shell, "_nbflow_cells", None)
    if channel is None:
        channel = shell._nbflow_cells = CellChannel(shell)
    channel.add_flow(flow)


def _kernel_shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if getattr(shell, "kernel", None) is not None else None


class CellChannel:
    """The kernel side of the channel (one per shell; see the module docstring)."""

    def __init__(self, shell: Any):
        from comm import get_comm_manager
        self.shell = shell
        self._flows: weakref.WeakSet = weakref.WeakSet()
        self._comms: OrderedDict[str, Any] = OrderedDict()
        self._announcer: Any = None        # the comm the kernel opened last
        self._feeds: OrderedDict[str, _RunFeed] = OrderedDict()
        self._declared: list | None = None
        self._lock = threading.Lock()       # _comms and _feeds: the flushers read them
        track_cells(shell)
        shell.events.register("post_run_cell", self._after_cell)
        get_comm_manager().register_target(TARGET, self._on_open)
        # A page that connected before nbflow was loaded had its own comm closed:
        # this one tells it nbflow is here now.
        self._announce()

    # -- flows and runs (the cell thread) -------------------------------------------
    def add_flow(self, flow: Any) -> None:
        if flow in self._flows:
            return
        self._flows.add(flow)
        flow._run_listeners.append(self.follow)

    def follow(self, run: Any) -> None:
        """Publish ``run``'s states from now to its end (a Flow run listener)."""
        feed = _RunFeed(self, run)
        with self._lock:
            self._feeds[run.id] = feed
            while len(self._feeds) > KEPT_RUNS:
                self._feeds.popitem(last=False)[1].close()
        self._announce()
        feed.start()

    def _after_cell(self, result: Any) -> None:
        declared = self.declared()
        if declared != self._declared:
            self._declared = declared
            self.publish({"type": "declared", "declared": declared})

    def declared(self) -> list[list[str]]:
        return [[flow.name, task, cell] for flow in list(self._flows)
                for task, cell in flow._cells.items()]

    def state(self) -> dict:
        """The whole picture (the ``state`` message)."""
        from ..api import notebook_path
        with self._lock:
            feeds = list(self._feeds.values())
        return {"type": "state", "protocol": PROTOCOL, "notebook": notebook_path(),
                "declared": self.declared(), "runs": [f.current() for f in feeds]}

    # -- comms -------------------------------------------------------------------------
    def _announce(self) -> None:
        """Open a comm from the kernel with the state (reaches a page at once)."""
        from comm import create_comm
        old, self._announcer = self._announcer, None
        if old is not None:
            self._drop(old)
            old.close()
        comm = create_comm(target_name=TARGET, data=self.state())
        self._announcer = comm
        self._keep(comm)

    def _on_open(self, comm: Any, msg: dict) -> None:
        data = (msg.get("content") or {}).get("data")
        theirs = data.get("protocol") if isinstance(data, dict) else None
        if theirs != PROTOCOL:
            comm.send({"type": "error", "message": (
                f"the nbflow lab extension speaks protocol {theirs!r} and this kernel's "
                f"nbflow speaks {PROTOCOL}: install the same nbflow version in the kernel's "
                "environment and in JupyterLab's, then reload the page")})
            comm.close()
            return
        self._keep(comm)
        comm.send(self.state())

    def _keep(self, comm: Any) -> None:
        comm.on_msg(lambda msg: self._on_msg(comm, msg))
        comm.on_close(lambda msg: self._drop(comm))
        with self._lock:
            self._comms[comm.comm_id] = comm
            while len(self._comms) > KEPT_COMMS:
                self._comms.popitem(last=False)

    def _drop(self, comm: Any) -> None:
        with self._lock:
            self._comms.pop(comm.comm_id, None)

    def _on_msg(self, comm: Any, msg: dict) -> None:
        data = (msg.get("content") or {}).get("data")
        if not isinstance(data, dict):
            data = {}
        kind = data.get("type")
        handler = HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            log.warning("nbflow: the lab extension sent a message of unknown type %r; "
                        "the extension and the kernel's nbflow may be different versions. "
                        "If they are the same, please report this as a bug.", kind)
            return
        handler(self, comm, data)

    def publish(self, message: dict) -> None:
        """Send ``message`` on every open comm (any thread)."""
        with self._lock:
            comms = list(self._comms.values())
        for comm in comms:
            try:
                comm.send(message)
            except Exception as exc:  # noqa: BLE001 - a gone page must not stop a run
                log.debug("nbflow: dropping a cell-status comm: %r", exc)
                self._drop(comm)


def _send_state(channel: CellChannel, comm: Any, data: dict) -> None:
    comm.send(channel.state())


#: Front-end message type -> handler(channel, comm, data).
HANDLERS: dict[str, Callable[[CellChannel, Any, dict], None]] = {
    "hello": _send_state,
    "refresh": _send_state,
}


class _RunFeed:
    """One run's states for the channel: a :class:`Bridge` target (flusher thread)."""

    def __init__(self, channel: CellChannel, run: Any):
        self.channel = channel
        self.run = run
        cells = run.flow._cells
        specs = run._engine.specs
        self.head = {"id": run.id, "flow": run.flow.name, "names": list(run.names),
                     "cells": [cells.get(s.name) for s in specs],
                     "attempts": [s.retries + 1 for s in specs]}
        self.bridge: Bridge | None = None

    def start(self) -> None:
        self.bridge = Bridge(self.run, self, initializer=thread_initializer())
        self.run.add_sink(self.bridge)
        self.channel.publish({"type": "run", **self.current()})

    def close(self) -> None:
        if self.bridge is not None:
            self.bridge.close()

    def current(self) -> dict:
        snap = self.bridge.current(timeout=0) if self.bridge is not None else None
        if snap is None:
            n = len(self.head["names"])
            snap = {"tasks": [[i, "pending", 0, None, None] for i in range(n)], "errors": [],
                    "running": True, "outcome": None, "now": time.time()}
        return {**self.head, "running": snap["running"], "outcome": snap["outcome"],
                "now": snap["now"], "tasks": snap["tasks"], "errors": _lines(snap["errors"])}

    # -- Target (the bridge's flusher thread) -------------------------------------------
    def publish_diff(self, diff: dict) -> None:
        self.channel.publish({"type": "diff", "run": self.run.id, "seq": diff["seq"],
                              "now": diff["now"], "running": True, "outcome": None,
                              "tasks": diff["tasks"], "errors": _lines(diff["errors"])})

    def publish_snapshot(self, snapshot: dict) -> None:
        self.channel.publish({"type": "diff", "run": self.run.id, "seq": snapshot["seq"],
                              "now": snapshot["now"], "running": snapshot["running"],
                              "outcome": snapshot["outcome"], "tasks": snapshot["tasks"],
                              "errors": _lines(snapshot["errors"])})


def _lines(errors: list) -> list:
    """The bridge's ``[i, summary, traceback]`` as ``[i, first line]`` (None clears)."""
    return [[i, None if summary is None else first_line(summary)]
            for i, summary, *_ in errors]


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, at most ERROR_LINE characters."""
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line if len(line) <= ERROR_LINE else line[:ERROR_LINE - 1] + "\u2026"
