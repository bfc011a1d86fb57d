"""Turning database errors into messages that say what happened and what to do."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from ..errors import StoreError, StoreLockedError
from .open import FIX


def translate_error(exc: BaseException, label: str) -> BaseException:
    """A :class:`StoreError` for known database conditions, else ``exc`` itself."""
    if isinstance(exc, StoreError) or not isinstance(exc, DBAPIError):
        return exc
    text = str(exc.orig).lower()
    if "locked" in text or "busy" in text:
        err = StoreLockedError(
            f"the nbflow store {label} is locked by another process and stayed locked past "
            "the busy timeout. Finish or close the other kernel or command that is writing "
            f"to it, then try again; or {FIX[0].lower()}{FIX[1:]}")
    elif "readonly" in text or "read-only" in text:
        err = StoreError(f"the nbflow store {label} is read-only: nothing can be recorded "
                         f"there. Make it writable, or {FIX[0].lower()}{FIX[1:]}")
    elif ("disk" in text and "full" in text) or "disk i/o" in text:
        err = StoreError(f"the nbflow store {label} could not be written: the disk is full "
                         "or failing. What was committed before is intact; free space and "
                         "resume the run.")
    elif any(sign in text for sign in _UNREACHABLE):
        err = StoreError(f"cannot connect to the nbflow store {label}: "
                         f"{str(exc.orig).strip().splitlines()[0]}. Check that the database "
                         f"server is running and the URL is right, or {FIX[0].lower()}{FIX[1:]}")
    elif "not a database" in text or "malformed" in text:
        err = StoreError(f"{label} is not an nbflow store, or it is corrupt ({exc.orig}). "
                         f"Move it aside, or {FIX[0].lower()}{FIX[1:]}")
    else:
        return exc
    err.__cause__ = exc
    return err


# How drivers (psycopg, libpq) say that the server cannot be reached.
_UNREACHABLE = ("connection refused", "could not connect", "connection failed",
                "could not translate host name", "timeout expired", "no route to host")
