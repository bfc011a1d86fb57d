"""Fan-out and fan-in: one task per item (``Flow.map``), and the list of their results.

``flow.map(clean, over=files, name="clean")`` declares ``clean[0]``, ``clean[1]``,
... one task per item, each calling ``clean`` with its item as the function's
first parameter (or ``param=``).  ``flow.each("clean")`` names those tasks in
order: as an input of one task it passes the list of their results (fan-in,
``inputs={"parts": flow.each("clean")}``); as ``over=`` or an input of another
map it pairs the tasks item by item (``clean[k]`` takes ``fetch[k]``'s result).

The items are known when the flow is declared (like ``client.map`` in Dask): a
mapped task is an ordinary task, so retries, trigger rules, resume and caching
apply to each item on its own.  An item is part of its task's result key (a
digest of its pickle), so a resumed run never restores the result of an item
that changed.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import itertools
import os
import pickle
from collections.abc import Callable, Iterable
from typing import Any

#: Most items one map may have (``NBFLOW_MAX_MAP`` sets another bound): an endless
#: iterator (``itertools.count()``, a generator that never returns) must be an error,
#: not a kernel that hangs while the cell is declared.
MAX_ITEMS = 100_000


class Each(tuple):
    """The tasks of one map, in order (see :meth:`nbflow.Flow.each`).

    A tuple of task names, so as an input of a single task it is what a list of
    names is: the list of their results.
    """

    group: str

    def __new__(cls, group: str, names: Iterable[str]):
        self = super().__new__(cls, names)
        self.group = group
        return self

    def __repr__(self) -> str:
        return f"flow.each({self.group!r}) ({len(self)} tasks)"


def item_name(group: str, k: int) -> str:
    """The name of item ``k`` of map ``group``: ``group[k]``, as Airflow shows mapped tasks."""
    return f"{group}[{k}]"


def item_salt(item: Any) -> bytes:
    """What an item adds to its task's key: a digest of its pickle (of its type if it
    does not pickle, which only costs a restore, never a wrong one: the task's
    name differs per item)."""
    try:
        data = pickle.dumps(item, protocol=4)
    except Exception:  # noqa: BLE001 - a lock, a generator...: counted by type
        data = f"<{type(item).__module__}.{type(item).__qualname__}>".encode()
    return hashlib.sha256(data).digest()


def plan(fn: Callable[..., Any], over: Any, group: str, param: str | None,
         inputs: dict[str, Any] | None) -> list[tuple[str, Callable[..., Any], dict, bytes]]:
    """The tasks of ``flow.map``: ``(name, function, inputs, key salt)`` per item.

    Raises
    ------
    TypeError
        ``over`` is a string or not iterable, ``fn`` has no parameter for the
        item, or an ``Each`` of another length is paired with it.
    """
    items = items_of(over, group)
    param = param or _first_parameter(fn, group)
    out = []
    for k, item in enumerate(items):
        task_inputs = {}
        for p, source in (inputs or {}).items():
            if isinstance(source, Each):
                _same_length(group, len(items), source)
                task_inputs[p] = source[k]
            else:
                task_inputs[p] = source
        if isinstance(over, Each):   # item k is the result of over[k]
            task_inputs[param] = item
            call, salt = fn, b""
        else:
            call, salt = functools.partial(fn, **{param: item}), item_salt(item)
        out.append((item_name(group, k), call, task_inputs, salt))
    return out


def items_of(over: Any, group: str, option: str = "over=", pairs: bool = True) -> list[Any]:
    """The items of map ``group``, in order; ``option`` names where they came from in the
    error, ``pairs`` says whether ``flow.each(...)`` of another map is accepted.

    Raises
    ------
    TypeError
        ``over`` is a string or not iterable (or an ``Each`` where it cannot pair).
    ValueError
        ``over`` has more than :data:`MAX_ITEMS` items (or ``NBFLOW_MAX_MAP``'s).
    """
    each = ", or flow.each(NAME) of another map" if pairs else ""
    if (isinstance(over, (str, bytes)) or not _iterable(over)
            or (not pairs and isinstance(over, Each))):
        raise TypeError(f"map {group!r}: {option} must be a list (or other iterable) of "
                        f"items{each}; got {type(over).__name__}")
    bound = _max_items()
    items = list(itertools.islice(over, bound + 1))
    if len(items) > bound:
        raise ValueError(f"map {group!r}: {option} has more than {bound:,} items (an endless "
                         "iterator, such as itertools.count()?). Pass a list of the items; for "
                         "a bigger map, set NBFLOW_MAX_MAP to a higher bound.")
    return items


def _max_items() -> int:
    raw = os.environ.get("NBFLOW_MAX_MAP", "")
    try:
        bound = int(raw) if raw.strip() else MAX_ITEMS
    except ValueError:
        raise ValueError(f"NBFLOW_MAX_MAP={raw!r} is not a whole number of items; set it to "
                         f"one (the default is {MAX_ITEMS:,}), or unset it.") from None
    if bound < 1:
        raise ValueError(f"NBFLOW_MAX_MAP={raw!r}: a map needs a bound of at least 1 item.")
    return bound


def _iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


def _same_length(group: str, n: int, each: Each) -> None:
    if len(each) != n:
        raise TypeError(f"map {group!r} has {n} items but flow.each({each.group!r}) has "
                        f"{len(each)} tasks: maps paired item by item need the same length")


def _first_parameter(fn: Callable[..., Any], group: str) -> str:
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            return p.name
    raise TypeError(f"map {group!r}: {getattr(fn, '__name__', fn)!r} has no parameter to "
                    "receive the item; give it one, or name it with param=")
