"""The shape of one event record, shared by the engine, the store and listeners.

An event is a plain tuple, cheap to build on the engine's hot path and written
to the store as it is::

    (run_id, seq, task, attempt, from_state, to_state, at, detail)

``seq`` numbers the run's events from 0; ``from_state`` and ``to_state`` are
state strings; ``at`` is a Unix time; ``detail`` is None or a :class:`Detail`.
"""

from __future__ import annotations

RUN, SEQ, TASK, ATTEMPT, FROM, TO, AT, DETAIL = range(8)


class Detail(dict):
    """Extra facts of an event (timings, worker, error).

    A distinct type so the store can register one database adapter for it
    (JSON) without touching how plain dicts are adapted anywhere else.
    """

    __slots__ = ()
