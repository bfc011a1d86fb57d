"""Text of user objects that cannot raise: the engine formats errors and values
it did not write, and one whose ``__str__`` or ``__repr__`` raises must not
stop a run (nor leave its tasks ``running`` in the store)."""

from __future__ import annotations

import sys
from typing import Any

LIMIT = 200   # characters of a value shown in a message


def safe_str(obj: Any) -> str:
    """``str(obj)``, or a note saying why it could not be had."""
    try:
        return str(obj)   # a __str__ returning no str makes str() raise TypeError
    except Exception as exc:  # noqa: BLE001 - any failure of user code is reported, not raised
        return f"<{_type_name(obj)} object: its __str__ raised {_type_name(exc)}>"


def safe_repr(obj: Any, limit: int = LIMIT) -> str:
    """``repr(obj)`` cut to ``limit`` characters, or a note when it raises."""
    try:
        text = repr(obj)
    except Exception:  # noqa: BLE001 - as above
        return f"<{_type_name(obj)} object: its __repr__ raised>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(error: BaseException) -> str:
    """``Type: message`` of an exception, whatever its ``__str__`` does."""
    return f"{_type_name(error)}: {safe_str(error)}"


def _type_name(obj: Any) -> str:
    return type(obj).__name__


def add_note(error: BaseException, note: str) -> None:
    """``error.add_note(note)``; on Python 3.10, which has no ``add_note`` (nbflow
    supports it), the note goes where 3.11 keeps it, for code that reads ``__notes__``."""
    if sys.version_info >= (3, 11):
        error.add_note(note)
    else:
        vars(error).setdefault("__notes__", []).append(note)
