"""The REST API: read-only views of the nbflow stores under the server's root.

Every route is under ``{base_url}nbflow/api/`` and answers JSON:

``GET runs?notebook=NB&store=DB&all=1&limit=N``
    ``{"store", "runs"}``: recent runs, newest first, of notebook ``NB`` (an
    API path) unless ``all=1``.  Each run has ``counts`` per state,
    ``owner_alive`` (None once it ended; False for a kernel that stopped
    heartbeating: the run crashed) and ``notebook`` as an API path.
``GET runs/RUN?store=DB``
    the run with its ``tasks`` (declaration order, with ``cell_id``).
``GET runs/RUN/events?since=SEQ&store=DB``
    ``{"events", "last"}``: the events after ``SEQ`` (default -1: all), at most
    ``EVENTS_LIMIT``; poll again with ``since=last``.
``GET runs/RUN/logs?task=T&store=DB``
    ``{"logs"}``: what each attempt printed.
``GET cells?notebook=NB&store=DB``
    ``{"runs", "cells"}``: ``cells`` maps a cell id to the tasks it declared in
    the notebook's latest run of each flow.

``store`` defaults to ``.nbflow/nbflow.db`` beside the notebook (where its
kernel writes by default), else at the root.  Failures answer
``{"message", "reason"}`` with reason ``missing`` or ``no-run`` (404),
``outside-root`` (403), ``bad-request`` (400), ``newer`` (409), ``corrupt``
(422), ``locked`` (503) or ``unreadable`` (500).

Each handler requires Jupyter's authentication (``@tornado.web.authenticated``)
and authorization (``@authorized`` on the resource ``nbflow``, action
``read``); the database work runs in a thread, never on the server's loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

from .paths import default_store, to_api_path, under_root
from .reader import ReadError, StoreReader

RESOURCE = "nbflow"


class StoreHandler(ExtensionHandlerMixin, APIHandler):
    """Shared by the routes: where the store is, and reading it off the loop."""

    auth_resource = RESOURCE

    @property
    def root(self) -> str:
        return self.serverapp.root_dir

    def notebook_arg(self, required: bool = False) -> str | None:
        notebook = self.get_argument("notebook", None)
        if required and not notebook:
            raise ReadError("bad-request", 400, "give the notebook: ?notebook=PATH "
                            "(its path relative to the server's root)")
        return notebook

    def int_arg(self, name: str, default: int, low: int, high: int) -> int:
        text = self.get_argument(name, None)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise ReadError("bad-request", 400, f"?{name}= must be a whole number from {low} "
                            f"to {high}, got {text[:40]!r}")
        return value

    async def answer(self, reading: Callable[[], Callable[[StoreReader], Any]]) -> None:
        """Open the request's store read-only in a thread and write as JSON what the
        function ``reading()`` returns (it checks the request's arguments) makes of it."""
        try:
            read = reading()
            store = self.get_argument("store", None) or default_store(self.notebook_arg())
            path = under_root(self.root, store, "store")
            body = await asyncio.to_thread(_read, path, store, read)
        except ReadError as exc:
            raise tornado.web.HTTPError(exc.status, log_message=str(exc),
                                        reason=exc.reason) from None
        body.setdefault("store", store)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, default=str))

    def api_paths(self, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Runs with their ``notebook`` as an API path (never a path outside the root)."""
        for run in runs:
            run["notebook"] = to_api_path(self.root, run["notebook"])
        return runs


def _read(path: str, shown: str, read: Callable[[StoreReader], Any]) -> Any:
    with StoreReader(path, shown) as reader:
        return read(reader)


class RunsHandler(StoreHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        def reading() -> Callable[[StoreReader], dict]:
            notebook = self.notebook_arg()
            limit = self.int_arg("limit", 50, 1, 1000)
            every = self.get_argument("all", "") in ("1", "true")
            mine = None if every or not notebook else under_root(self.root, notebook,
                                                                 "notebook")
            return lambda r: {"runs": self.api_paths(r.runs(mine, limit))}
        await self.answer(reading)


class RunHandler(StoreHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        def read(r: StoreReader) -> dict:
            return {"run": self.api_paths([r.run(run_id)])[0]}
        await self.answer(lambda: read)


class EventsHandler(StoreHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        def reading() -> Callable[[StoreReader], dict]:
            since = self.int_arg("since", -1, -1, 2**62)

            def read(r: StoreReader) -> dict:
                r.run(run_id)   # a run that is not there is a 404, not an empty list
                events = r.events(run_id, since)
                return {"events": events, "last": events[-1]["seq"] if events else since}
            return read
        await self.answer(reading)


class LogsHandler(StoreHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        task = self.get_argument("task", None)

        def read(r: StoreReader) -> dict:
            r.run(run_id)
            return {"logs": r.logs(run_id, task)}
        await self.answer(lambda: read)


class CellsHandler(StoreHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        def reading() -> Callable[[StoreReader], dict]:
            path = under_root(self.root, self.notebook_arg(required=True), "notebook")

            def read(r: StoreReader) -> dict:
                found = r.cells(path)
                self.api_paths(found["runs"])
                return found
            return read
        await self.answer(reading)


def routes() -> list[tuple[str, type]]:
    """The API's URL patterns (the extension app puts them under the base URL)."""
    run = r"/nbflow/api/runs/(?P<run_id>[^/]+)"
    return [(r"/nbflow/api/runs", RunsHandler), (run, RunHandler),
            (run + "/events", EventsHandler), (run + "/logs", LogsHandler),
            (r"/nbflow/api/cells", CellsHandler)]
