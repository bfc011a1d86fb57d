"""Text that every store accepts: user text made storable, names checked.

What a task prints and raises is stored as it came, with three exceptions,
because a database refuses them and one refused row must not cost the rest:

* a lone surrogate (what Python makes of a byte that is not UTF-8, such as a
  latin-1 file name, ``"\\udce9"``) becomes the escape of that byte, ``\\xe9``
  (other lone surrogates: ``\\ud800``);
* a NUL character (PostgreSQL refuses it in text) becomes the four
  characters ``\\x00``;
* text longer than :data:`TEXT_LIMIT` characters keeps its first and last
  halves with a note of how much was cut between them (SQLite refuses a value
  of a gigabyte, and one huge transaction holds the write lock for seconds).

Names are not rewritten but checked where they are declared
(:func:`check_name`): a name is a key, and two names that escaped alike would
be one task.  Text that needs none of this (nearly all) costs one or two
scans in C (:func:`storable`).
"""

from __future__ import annotations

import codecs

#: Characters kept of one stream of one attempt's output, of an error and of a
#: traceback: 1 MiB of ASCII.
TEXT_LIMIT = 1 << 20
#: Characters a task or flow name may have: the store's name columns hold 255.
NAME_LIMIT = 255
# Room left for the note in the middle of a cut text, so that cutting again
# (when building rows, after the capture already cut) changes nothing.
_NOTE_ROOM = 100


def _note(cut: int) -> str:
    return f"\n[nbflow: {cut:,} characters cut here]\n"


def capped(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text``, or its first and last parts with a note between them when it is longer
    than ``limit`` characters (the result is at most ``limit`` long)."""
    if len(text) <= limit:
        return text
    half = (limit - _NOTE_ROOM) // 2
    return text[:half] + _note(len(text) - 2 * half) + text[-half:]


def storable(text: str) -> str:
    """``text`` as any store can keep it (see the module docstring); anything but a
    ``str`` is returned as it is, for the database to take or refuse."""
    if type(text) is not str:
        return text
    if len(text) <= TEXT_LIMIT and "\x00" not in text and (text.isascii() or _utf8(text)):
        return text
    text = capped(text, TEXT_LIMIT)
    if not text.isascii() and not _utf8(text):
        text = text.encode("utf-8", "nbflow.escape").decode("utf-8")
    text = text.replace("\x00", "\\x00")
    # An escape is longer than what it stands for: cut again if that went past.
    return capped(text, TEXT_LIMIT)


def _escape(err: UnicodeError) -> tuple[str, int]:
    # A surrogate that surrogateescape made (U+DC80..U+DCFF) stands for the byte
    # a decoder could not read: show that byte; any other, its code point.
    if not isinstance(err, UnicodeEncodeError):
        raise err
    return "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF
                   else f"\\u{ord(c):04x}"
                   for c in err.object[err.start:err.end]), err.end


codecs.register_error("nbflow.escape", _escape)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_name(what: str, name: object) -> None:
    """Raise unless ``name`` can be a ``what`` ("task", "flow") name in every store.

    Raises
    ------
    TypeError
        ``name`` is not a string.
    ValueError
        it is empty, longer than :data:`NAME_LIMIT`, or holds a NUL or a lone
        surrogate.
    """
    if not isinstance(name, str):
        raise TypeError(f"a {what} name must be a string, not {type(name).__name__} "
                        f"({name!r}); give it as text")
    fix = f"Give the {what} another name."
    if not name:
        raise ValueError(f"a {what} name cannot be empty. {fix}")
    if len(name) > NAME_LIMIT:
        raise ValueError(f"the {what} name {name[:40]!r}... is {len(name)} characters long; "
                         f"a store keeps names of at most {NAME_LIMIT}. {fix}")
    if storable(name) != name:
        raise ValueError(f"the {what} name {name!r} holds a NUL character or a lone surrogate "
                         f"(a byte that is not UTF-8), which no store can keep. {fix}")


class CappedText:
    """Text written in pieces (a task's output) keeping what :func:`capped` would:
    at most ``limit`` characters, however much is written, so that a task printing
    gigabytes holds a few megabytes."""

    __slots__ = ("_half", "_head", "_limit", "_pieces", "_size", "_tail_size")

    def __init__(self, limit: int = TEXT_LIMIT):
        self._pieces: list[str] = []   # all of it; once past the limit, the tail
        self._size = 0                 # characters written in all
        self._head: str | None = None  # once past the limit: the first half
        self._tail_size = 0
        self._half = (limit - _NOTE_ROOM) // 2
        self._limit = limit

    def write(self, s: str) -> None:
        self._size += len(s)
        self._pieces.append(s)
        if self._head is None:
            if self._size > self._limit:   # the limit is passed: split off the head
                text = "".join(self._pieces)
                self._head = text[:self._half]
                self._pieces = [text[self._half:]]
                self._tail_size = len(text) - self._half
            return
        self._tail_size += len(s)
        if self._tail_size > 2 * self._half:   # trimmed once per half written: amortised
            text = "".join(self._pieces)[-self._half:]
            self._pieces, self._tail_size = [text], len(text)

    def text(self) -> str:
        """Everything written, or its first and last parts with a note of what was cut."""
        if self._head is None:
            return "".join(self._pieces)
        tail = "".join(self._pieces)[-self._half:]
        return self._head + _note(self._size - 2 * self._half) + tail
