"""The live dashboard: DAG, status table, timeline and a cancel button in one widget.

The widget's synced state is the wire protocol with ``labextension/widgets/dashboard``:

``_graph``     the flow's structure, sent when the dashboard shows a run:
               ``{"flow", "run", "names", "levels", "deps", "workers", "resumed_from", "colors",
               "ink", "terminal", "legend", "store_file", "pools", "resources"}``: the
               states' fills and text colours (``core/states.py``), which are terminal,
               which the legend always shows; the store's SQLite file (the page asks the
               server extension about the run there once the kernel is gone); the pools
               and what tasks hold (below).
``_view``      what the DAG view draws, ``{"dot", "units"}`` (``layout.py``); it
               changes only when a unit is expanded or collapsed, never on a
               status change, so the browser lays the graph out once.
``_snapshot``  the whole task table (``bridge.py``), at the start, on a resync
               and at the end (then with ``running`` false and the ``outcome``).
``_diff``      the rows changed since the previous diff, at most ten a second.
``_viz``       the page's Graphviz runtime (``viz.py``).
``_uid``       a unique id: the browser keeps one task table per dashboard under it.

``_graph["lanes"]`` says how the timeline's lanes are made (``_lanes``).
``_graph["rollup"]`` is the rule of a group's state (``core/rollup.py``),
``_graph["pools"]`` ``{pool: slots}`` and ``_graph["resources"]``
``{task index: {pool: slots held}}`` for the tasks that hold any.

Messages from the browser: ``{"type": "cancel"}``, ``{"type": "expand", "node"}``,
``{"type": "fold", "cluster"}`` (a group's cluster folds into one node),
``{"type": "collapse"}`` and ``{"type": "resync"}``.

Threads: the bridge publishes from its own thread, the cell thread handles
messages and ``show``; ``_sync_lock`` makes every change of synced state one
step, because ipywidgets' ``hold_sync`` is not thread-safe.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
import warnings
from collections.abc import Sequence
from typing import Any

import anywidget
import traitlets as t

from ...core.rollup import RULES
from ...core.states import TERMINAL, State
from ...render import STATE_COLORS, STATE_INK
from ..bridge import INTERVAL, Bridge
from ..context import for_the_running_cell_too, renders_widgets, thread_initializer
from ._bundles import bundle
from .layout import DagLayout, layout_of
from .static import static_html
from .stored import latest_stored
from .viz import viz_runtime

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# The graph's legend always explains these; other states join it once a task reaches them.
ALWAYS_EXPLAINED = ["pending", "ready", "running", "succeeded", "failed"]
# What a dashboard is made of, in order; each part is also a widget of its own.
PARTS = ("header", "graph", "detail", "timeline", "table")
# The graph's toolbar has a button that shows the next task in each of these states.
JUMP_TO = ["running", "failed"]


class _Follower:
    """What the live dashboard and its static twin share: which run is shown (and, given a
    flow, each new run of it), the bridge that feeds it, and the static picture, displayed
    with an id so that the end of a run replaces it with the final one.

    The subclass holds ``_graph``, ``_view`` and ``_snapshot`` (synced traits for the
    widget, plain attributes for the static twin) and calls ``_start`` at the end of its
    ``__init__``.
    """

    collapse_above: int | None
    interval: float

    def _first(self, run: Any, flow: Any) -> tuple[Any, DagLayout, dict]:
        if run is None and flow is None:
            raise ValueError("Dashboard needs a run or a flow: use run.dashboard() or "
                             "flow.dashboard()")
        latest = run if run is not None else getattr(flow, "_last_run", None)
        if latest is not None:
            return (latest, *self._structure(latest))
        stored = latest_stored(flow, self.collapse_above)
        if stored is not None:  # a new kernel: the run the last one made, as stored
            layout, run_id, params, snapshot = stored
            index = layout.graph.index
            holds = {index[name]: slots for name, slots in (params.get("resources") or {}).items()
                     if name in index}
            state = initial_state(flow.name, run_id, layout, params, holds, _store_file(flow))
            state["_snapshot"] = snapshot
            return None, layout, state
        graph, specs = flow.build()
        layout = layout_of(flow.name, graph, specs, self.collapse_above)
        return None, layout, initial_state(flow.name, None, layout, {"pools": flow.pools},
                                           _holds(specs))

    def _start(self, latest: Any, flow: Any, layout: DagLayout) -> None:
        self.run = None
        self._flow = flow
        self._bridge: Bridge | None = None
        self._layout = layout
        self._sync_lock = threading.RLock()
        self._display_ids: list[str] = []
        if latest is not None:
            self._follow(latest)
        if flow is not None:
            flow._run_listeners.append(self.show)

    # -- what is shown -------------------------------------------------------------
    def show(self, run: Any) -> None:
        """Show ``run`` (live if it is still going) instead of what is shown now."""
        layout, state = self._structure(run)
        with self._sync_lock:
            self.run = None  # what the old run's bridge still publishes is dropped
            self._layout = layout
            self._set_state(state)
        self._follow(run)

    def _set_state(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def _structure(self, run: Any) -> tuple[DagLayout, dict]:
        specs = run._engine.specs
        layout = layout_of(run.flow.name, run.graph, specs, self.collapse_above)
        state = initial_state(run.flow.name, run.id, layout, _params(run), _holds(specs),
                              _store_file(run))
        state["_graph"]["cancel_grace"] = getattr(run, "cancel_grace", None)
        return layout, state

    def _follow(self, run: Any) -> None:
        bridge = Bridge(run, self, interval=self.interval, initializer=thread_initializer())
        with self._sync_lock:
            old, self._bridge, self.run = self._bridge, bridge, run
        if old is not None:
            old.close()
        run.add_sink(bridge)

    def _stop(self) -> None:
        # getattr: ipywidgets also calls this from __del__, after a failed __init__.
        bridge, flow = getattr(self, "_bridge", None), getattr(self, "_flow", None)
        if bridge is not None:
            bridge.close()
        if flow is not None and self.show in flow._run_listeners:
            flow._run_listeners.remove(self.show)

    # -- the bridge's target (bridge thread) ---------------------------------------------
    def publish_diff(self, diff: dict) -> None:
        with self._sync_lock:
            if self.run is not None and diff["run"] == self.run.id:
                self._diff = diff

    def publish_snapshot(self, snapshot: dict) -> None:
        with self._sync_lock:
            if self.run is None or snapshot["run"] != self.run.id:
                return
            self._snapshot = snapshot
            if not snapshot["running"]:
                self._refresh_displays(snapshot)

    # -- the static picture ----------------------------------------------------------------
    def _display_static(self) -> None:
        # Under the lock, so the final refresh comes either before the picture is made
        # (which then shows the final state) or after its display id is known.
        from IPython.display import display
        with self._sync_lock:
            handle = display({"text/html": self.static_html()}, raw=True, display_id=True)
            if handle is not None:
                self._display_ids.append(handle.display_id)

    def _refresh_displays(self, snapshot: dict) -> None:
        if not self._display_ids:
            return
        from IPython.display import update_display
        picture = {"text/html": self.static_html(snapshot)}
        for display_id in self._display_ids:
            for_the_running_cell_too(
                lambda d=display_id: update_display(picture, raw=True, display_id=d))

    def static_html(self, snapshot: dict | None = None) -> str:
        """The dashboard as static HTML (what nbconvert and GitHub show), as of now or
        as of ``snapshot``."""
        with self._sync_lock:
            layout, bridge = self._layout, self._bridge
        if snapshot is None:
            snapshot = bridge.current() if bridge is not None else self._snapshot
        return static_html(self._graph["flow"], self._graph.get("run"), layout, snapshot,
                           uid=self._uid)

    def __repr__(self) -> str:
        what = f"run {self.run.id}" if self.run is not None else "no run yet"
        return f"<nbflow.{type(self).__name__} of {self._graph.get('flow', '?')!r}: {what}>"


class Dashboard(_Follower, anywidget.AnyWidget):
    """A live view of a run: use ``run.dashboard()`` or ``flow.dashboard()``.

    Displayed, it is two outputs: the static picture (what a saved notebook reopened
    without a kernel, nbconvert and GitHub show) and the live widget, which hides the
    picture while it is on screen.

    Parameters
    ----------
    run
        The run to show.
    flow
        Show this flow's latest run in this kernel (or its tasks, all pending, if it
        has none) and switch to each run the flow starts afterwards.
    collapse_above
        Above this many tasks the DAG view folds tasks into one node per level
        (click to expand); None never folds.
    interval
        Seconds between two updates sent to the browser, at least.
    parts
        Which parts to show, some of ``PARTS`` (all by default); :class:`RunHeader`,
        :class:`RunGraph`, :class:`RunTimeline` and :class:`RunTable` are one each.

    Raises
    ------
    ValueError
        neither ``run`` nor ``flow`` is given, ``collapse_above`` is below 1, or a part
        is unknown.
    CycleError, UnknownDependencyError
        a flow shown before its first run has invalid dependencies.
    """

    _esm = bundle("dashboard.js")
    _css = bundle("dashboard.css")
    _viz = anywidget.WidgetTrait().tag(sync=True)
    _graph = t.Dict().tag(sync=True)
    _view = t.Dict().tag(sync=True)
    _snapshot = t.Dict().tag(sync=True)
    _diff = t.Dict().tag(sync=True)
    _uid = t.Unicode().tag(sync=True)
    _parts = t.List(t.Unicode()).tag(sync=True)
    PARTS: tuple[str, ...] = PARTS
    KNOWN_PARTS: tuple[str, ...] = PARTS   # what ``parts`` may name

    def __init__(self, run: Any = None, *, flow: Any = None, collapse_above: int | None = 300,
                 interval: float = INTERVAL, parts: Sequence[str] | None = None):
        parts = list(self.PARTS if parts is None else parts)
        unknown = [p for p in parts if p not in self.KNOWN_PARTS]
        if unknown or not parts:
            raise ValueError(f"a dashboard's parts are some of {', '.join(self.KNOWN_PARTS)}; got "
                             f"{parts!r}")
        self.collapse_above = collapse_above
        self.interval = interval
        latest, layout, state = self._first(run, flow)
        # The first state goes with the comm's opening, so the browser never sees an
        # empty dashboard.
        super().__init__(_viz=viz_runtime(), _uid=uuid.uuid4().hex, _parts=parts, **state)
        self.on_msg(self._on_message)
        self._start(latest, flow, layout)

    def _set_state(self, state: dict) -> None:
        with self.hold_sync():
            super()._set_state(state)

    # -- actions -----------------------------------------------------------------------
    def cancel(self) -> None:
        """Cancel the run shown, if it is still going (what the Cancel button does)."""
        if self.run is not None and not self.run.done:
            self.run.cancel("cancelled from the dashboard")

    def expand(self, node: str) -> None:
        """Show the tasks of the folded DAG node ``node`` (a ``u...`` id)."""
        with self._sync_lock:
            if self._layout is not None and self._layout.expand(node):
                self._view = self._layout.view()

    def fold(self, cluster: str) -> None:
        """Fold the group drawn as cluster ``cluster`` (a ``G...`` id) into one node."""
        with self._sync_lock:
            if self._layout is not None and self._layout.fold(cluster):
                self._view = self._layout.view()

    def collapse(self) -> None:
        """Fold every expanded DAG node again."""
        with self._sync_lock:
            if self._layout is not None and (self._layout.expanded or self._layout.folded):
                self._layout.collapse_all()
                self._view = self._layout.view()

    def close(self) -> None:
        """Stop following the run and the flow, and close the widget."""
        self._stop()
        super().close()

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "cancel":
            self.cancel()
        elif kind == "expand":
            self.expand(str(content.get("node")))
        elif kind == "fold":
            self.fold(str(content.get("cluster")))
        elif kind == "collapse":
            self.collapse()
        elif kind == "resync":
            if self._bridge is not None:
                self._bridge.resync()
        else:
            warnings.warn(f"nbflow: the dashboard got a message it does not know: {content!r}. "
                          "Is the page's nbflow front end from another version? Reload it.",
                          RuntimeWarning, stacklevel=1)

    def send_state(self, key=None):
        bridge = getattr(self, "_bridge", None)
        if key is not None or bridge is None:
            return super().send_state(key)
        # The whole state carries the table as it is now (get_state): publish it before
        # any diff made after it, or the page would drop that diff as older.
        with bridge.sending():
            return super().send_state(key)

    def get_state(self, key=None, drop_defaults=False):
        state = super().get_state(key, drop_defaults)
        # A front end that asks for the whole state is a page that (re)loads: it gets the
        # table as it is now, not the first snapshot and the latest diff, so a reload
        # shows the truth at once, however fast the run goes, with no round trip.
        # Not under _sync_lock: the flusher takes the bridge's locks before that one.
        bridge = getattr(self, "_bridge", None)
        if key is None and bridge is not None:
            snapshot = bridge.table_now()
            if snapshot is not None and snapshot["run"] == state["_graph"].get("run"):
                state["_snapshot"], state["_diff"] = snapshot, {}
        return state

    # -- display -------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any):
        bundle = super()._repr_mimebundle_()
        if bundle is None:  # closed
            return None
        data, metadata = bundle
        data["text/html"] = self.static_html()
        return data, metadata

    def _ipython_display_(self) -> None:
        # Two outputs, not one bundle: in one bundle JupyterLab always prefers the widget
        # view, which without a kernel says "model not found" instead of the picture.
        from IPython.display import display
        bundle = super()._repr_mimebundle_()
        if bundle is None:  # closed
            return
        self._display_static()
        display(bundle[0], metadata=bundle[1], raw=True)


class RunHeader(Dashboard):
    """The dashboard's header alone (run, state, counts, progress, Cancel): a widget for
    any ipywidgets layout (``HBox``, ``Tab``, ``AppLayout``), as live as the dashboard.
    Same parameters as :class:`Dashboard` (without ``parts``)."""

    PARTS = ("header",)


class RunGraph(Dashboard):
    """The dashboard's DAG view alone; see :class:`RunHeader`."""

    PARTS = ("graph",)


class RunTimeline(Dashboard):
    """The dashboard's timeline alone; see :class:`RunHeader`."""

    PARTS = ("timeline",)


class RunTable(Dashboard):
    """The dashboard's task table with the selected task's detail; see :class:`RunHeader`."""

    PARTS = ("table", "detail")


class StaticDashboard(_Follower):
    """A dashboard where no browser renders widgets (nbclient, papermill, nbconvert
    ``--execute``, ``nbflow run``): the static picture alone, replaced by the final one when
    the run ends.  It opens no comm, so the executed notebook holds no widget state and no
    WebAssembly, and its HTML needs no script from a CDN.  Same parameters as
    :class:`Dashboard`.
    """

    def __init__(self, run: Any = None, *, flow: Any = None, collapse_above: int | None = 300,
                 interval: float = INTERVAL):
        self.collapse_above = collapse_above
        self.interval = interval
        latest, layout, state = self._first(run, flow)
        self._uid = uuid.uuid4().hex
        self._set_state(state)
        self._start(latest, flow, layout)

    def close(self) -> None:
        """Stop following the run and the flow."""
        self._stop()

    def _ipython_display_(self) -> None:
        self._display_static()

    def _repr_html_(self) -> str:
        return self.static_html()


def dashboard(run: Any = None, *, flow: Any = None, collapse_above: int | None = 300,
              interval: float = INTERVAL) -> Dashboard | StaticDashboard:
    """A :class:`Dashboard`, or its :class:`StaticDashboard` twin where the cell's front
    end renders no widgets (``context.renders_widgets``)."""
    cls = Dashboard if renders_widgets() else StaticDashboard
    return cls(run, flow=flow, collapse_above=collapse_above, interval=interval)


def _holds(specs: Sequence[Any]) -> dict[int, dict]:
    """The pool slots each task holds while it runs, for the tasks that hold any."""
    return {i: dict(spec.resources) for i, spec in enumerate(specs) if spec.resources}


def _params(run: Any) -> dict:
    try:
        params = (run.store.run(run.id) or {}).get("params")
        return json.loads(params) if params else {}
    except Exception:  # noqa: BLE001 - hints only (worker count, resumed run): shown if known
        return {}


def _lanes(params: dict) -> str:
    """How the timeline's lanes are made: ``"named"``, one per worker an attempt names
    (a Dask worker's address: an adaptive cluster's come and go), or ``"slots"``, as many
    as the run has workers (threads and processes, replaced when one is abandoned)."""
    return "named" if params.get("executor") in ("dask", "DaskExecutor") else "slots"


def _store_file(owner: Any) -> str | None:
    """The real path of the SQLite file ``owner`` (a run or flow) keeps its runs in, or None
    (a server database, or a store that cannot be opened)."""
    try:
        path = owner.store.path
    except Exception:  # noqa: BLE001 - only what a page whose kernel is gone asks the server
        return None
    return os.path.realpath(path) if path else None


def initial_state(title: str, run_id: str | None, layout: DagLayout,
                  params: dict | None, holds: dict[int, dict] | None = None,
                  store_file: str | None = None) -> dict:
    """The synced traits that describe a run (or a flow not run yet) before its first event;
    ``params``: the run's, as the store has them; ``holds``: ``{task: {pool: slots}}``;
    ``store_file``: where a page whose kernel is gone asks the server extension how the
    run ended."""
    graph = layout.graph
    params = params or {}
    return {
        "_graph": {"flow": title, "run": run_id, "names": graph.names, "levels": graph.level,
                   "deps": [list(p) for p in graph.preds], "workers": params.get("workers"),
                   "resumed_from": params.get("resumed_from"), "cancel_grace": None,
                   "store_file": store_file,
                   "colors": STATE_COLORS, "ink": STATE_INK,
                   "terminal": [s.value for s in State if s in TERMINAL],
                   "legend": ALWAYS_EXPLAINED, "jump": JUMP_TO,
                   "pools": params.get("pools") or {}, "resources": holds or {},
                   "rollup": RULES, "lanes": _lanes(params)},
        "_view": layout.view(),
        "_snapshot": {"run": run_id, "seq": 0, "now": None, "t0": None, "t1": None,
                      "running": run_id is not None, "outcome": None,
                      "tasks": [[i, "pending", 0, None, None] for i in range(len(graph))],
                      "errors": [], "logs": [], "displays": [], "bars": [], "restored": [], "abandoned": [],
                      "cancel": None},
        "_diff": {},
    }
