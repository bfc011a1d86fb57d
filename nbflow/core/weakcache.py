"""A cache of facts about objects (functions), dropped with the object.

Declaring a flow in a loop asks about one function thousands of times in a
row: the entry asked for last is answered by comparing the object, without
the ``WeakKeyDictionary`` lookup (a weak reference made and a Python frame
per call, two per declaration).
"""

from __future__ import annotations

import weakref
from contextlib import suppress
from typing import Any


class WeakCache:
    """``get(obj)`` and ``put(obj, value)``, weakly keyed by ``obj``; an object that
    cannot be weakly referenced is never cached."""

    def __init__(self) -> None:
        self._map: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        # (weak reference to the object asked last, its value): one tuple, swapped
        # whole, so a thread reading it never sees one's object with another's value.
        self._last: tuple[Any, Any] = (None, None)

    def get(self, obj: Any) -> Any:
        """The value put for ``obj``, or None."""
        ref, value = self._last
        if ref is not None and ref() is obj:
            return value
        try:
            value = self._map[obj]
        except (KeyError, TypeError):
            return None
        self._last = (weakref.ref(obj), value)
        return value

    def put(self, obj: Any, value: Any) -> None:
        with suppress(TypeError):   # not weak-referenceable: worked out again next time
            self._map[obj] = value
            self._last = (weakref.ref(obj), value)
