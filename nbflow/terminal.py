"""Text from a store made safe to print on a terminal.

Everything the command line prints from a store (run ids, states, flow and task
names, errors, params) is data anyone who can write the store chose, and a
terminal obeys what it is sent: ``ESC ] 0 ;`` retitles the window, ``ESC ] 52 ;``
writes the clipboard, ``ESC [ 2 J`` clears the screen, U+202E shows the rest of
a line backwards.  :func:`clean` removes whole escape sequences, in their 7-bit
(``ESC [``) and 8-bit (U+009B) forms, and shows every other character that is
not plainly visible as its Python escape (``\\x1b``, ``\\u202e``), so a
disguise shows instead of working: C0 and C1 controls, bidi overrides and
isolates, zero-width and other format characters, lone surrogates (which would
also make printing fail), line separators, and a few letters that print as
nothing.
"""

from __future__ import annotations

import re
from typing import Any

# ECMA-48: a control sequence (CSI, parameters, intermediates, a final byte);
# a command string (OSC, DCS, SOS, PM, APC) up to its terminator, BEL or ST;
# any other escape sequence (intermediates, a final byte).  A command string
# without its terminator is not removed: the characters after it stay visible.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]")
# Letters Unicode calls printable that a terminal draws as blank space.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u034f\u17b4\u17b5")


def clean(text: Any, one_line: bool = False, limit: int | None = None) -> str:
    """``text`` (any object; None is empty) made safe for a terminal.

    Newlines and tabs stay unless ``one_line``: then only the first line is
    kept (`` ...`` marks the cut) and tabs become spaces.  ``limit`` caps the
    length of the result.
    """
    text = _SEQUENCE.sub("", "" if text is None else str(text)).replace("\r\n", "\n")
    if one_line:
        first, _, rest = text.strip().partition("\n")
        text = _visible(first.replace("\t", " "), "") + (" ..." if rest.strip() else "")
    else:
        text = _visible(text, "\n\t")
    if limit is not None and len(text) > limit:
        text = text[:limit - 3] + "..."
    return text


def _visible(text: str, keep: str) -> str:
    plain = text
    for c in keep:
        plain = plain.replace(c, "")
    if plain.isprintable() and _BLANK_LETTERS.isdisjoint(plain):  # the usual case, in C
        return text
    return "".join(c if (c.isprintable() and c not in _BLANK_LETTERS) or c in keep
                   else ascii(c)[1:-1] for c in text)
