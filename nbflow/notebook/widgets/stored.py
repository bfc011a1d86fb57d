"""A run read back from the store: what ``flow.dashboard()`` shows in a new kernel.

After a kernel restart the flow has no run in memory, but the store has the runs the old
kernel made.  The latest one is shown as the store has it, finished or not: a run whose
kernel died is ``crashed`` (its lease expired, ``store/leases.py``), and
``flow.run(resume=ID)`` continues it.  Nothing follows it (its engine is gone); the
dashboard switches to the next run the flow starts, as ever.
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

from ...core.graph import Graph
from ..bridge import TaskTable
from .layout import DagLayout


def latest_stored(flow: Any, collapse_above: int | None) -> tuple[DagLayout, str, dict,
                                                                   dict] | None:
    """``(layout, run id, params, snapshot)`` of the flow's latest run in its store, or
    None if it has none (or the store cannot be read: the dashboard then shows the flow)."""
    try:
        store = flow.store
        found = store.runs(flow=flow.name, limit=1)
        if not found:
            return None
        record = found[0]
        rows, events, outputs = store.record(record["id"])
    except Exception:  # noqa: BLE001 - a missing or locked store: show the flow's tasks
        return None
    names = [row["name"] for row in rows]
    graph = Graph(names, [json.loads(row["deps"]) for row in rows])
    table = TaskTable(names)
    for event in events:
        table.apply(event)
    table.add_stored(outputs)
    snapshot = table.snapshot()
    snapshot.update(run=record["id"], seq=0, now=time.time(), running=False,
                    outcome=_outcome(store, record))
    params = json.loads(record["params"]) if record.get("params") else {}
    groups = params.get("groups") or {}
    layout = DagLayout(flow.name, graph, [groups.get(name) for name in names], collapse_above,
                       [(params.get("phases") or {}).get(name) for name in names])
    return layout, record["id"], params, snapshot


def _outcome(store: Any, record: dict) -> str:
    if record["state"] != "running":
        return record["state"]
    from ...store.leases import lease_status
    status = lease_status(SimpleNamespace(**record), store._leases, time.time())
    # Expired: its kernel is gone (a resume marks it crashed in the store too).
    return "crashed" if status == "expired" else "running in another kernel"
