"""A dashboard model as the browser keeps it, to replay recorded messages.

:class:`FrontEnd` applies a dashboard's messages by the rules the browser's
``labextension/widgets/dashboard/store.js`` follows, so a test can check that
what was sent adds up to the run's real final state.
"""

from __future__ import annotations


class FrontEnd:
    """A dashboard model as the browser keeps it (the rules of ``store.js``)."""

    def __init__(self, state: dict):
        self.graph = state["_graph"]
        self.gaps = 0
        self._snapshot(state["_snapshot"])

    def _snapshot(self, snap: dict) -> None:
        n = len(self.graph["names"])
        self.rows = {i: ["pending", 0, None, None] for i in range(n)}
        self.errors: dict[int, list] = {}
        self.logs: dict[tuple[int, int], str] = {}
        self.restored: set[int] = set()
        self.abandoned: set[int] = set()
        self.cancel: list | None = None
        self.bars: dict[tuple[int, int], list] = {}
        self.seq = snap["seq"]
        self.running, self.outcome = snap["running"], snap.get("outcome")
        self._rows(snap)

    def _rows(self, msg: dict) -> None:
        for i, state, attempt, started, finished in msg["tasks"]:
            self.rows[i] = [state, attempt, started, finished]
        for i, summary, tb in msg["errors"]:
            if summary is None:
                self.errors.pop(i, None)
            else:
                self.errors[i] = [summary, tb]
        for i, attempt, text in msg["logs"]:
            self.logs[i, attempt] = text
        if msg["restored"]:
            self.restored = set(msg["restored"])
        if msg["cancel"] is not None:
            self.cancel = msg["cancel"]
            self.abandoned = set(msg["abandoned"])
        for bar in msg["bars"]:
            self.bars[bar[0], bar[1]] = bar
        self.running = msg["running"]

    def receive(self, update: dict) -> None:
        """Apply one state update message (keys of one ``update``)."""
        if "_graph" in update:  # another run: its sequence starts again
            self.graph = update["_graph"]
            self.seq = 0
        snap = update.get("_snapshot")
        if snap and snap["run"] == self.graph["run"] and snap["seq"] >= self.seq:
            self._snapshot(snap)
        diff = update.get("_diff")
        if diff and diff["run"] == self.graph["run"] and diff["seq"] > self.seq:
            if diff["seq"] != self.seq + 1:
                self.gaps += 1
            self.seq = diff["seq"]
            self._rows(diff)

    def states(self) -> list[str]:
        return [self.rows[i][0] for i in range(len(self.rows))]
