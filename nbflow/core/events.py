"""The shape of one event record, shared by the engine, the store and listeners.

An event is a plain tuple, cheap to build on the engine's hot path and written
to the store as it is::

    (run_id, seq, task, attempt, from_state, to_state, at, detail)

``seq`` numbers the run's events from 0; ``from_state`` and ``to_state`` are
state strings; ``at`` is a Unix time; ``detail`` is None or a :data:`Detail`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

RUN, SEQ, TASK, ATTEMPT, FROM, TO, AT, DETAIL = range(8)


#: Extra facts of an event (timings, worker, error).  A plain dict: the engine
#: builds one per success on its hot path, and the store sends each to its
#: writer process, where a dict subclass cost twice as much to serialize.
#: ``Detail(...)`` builds one; calling the alias ``dict[str, Any]`` itself would
#: go through ``types.GenericAlias`` on every call, hence the plain ``dict`` at run time.
if TYPE_CHECKING:
    Detail = dict[str, Any]
else:
    Detail = dict
