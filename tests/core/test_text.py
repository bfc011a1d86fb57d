"""Storable text (``core/text.py``): what it keeps, what it escapes, and its bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbflow.core import text
from nbflow.core.text import CappedText, capped, check_name, storable

LIMIT = 500
chars = st.one_of(st.characters(), st.sampled_from(["\x00", "\udce9", "\ud800", "é"]))
texts = st.one_of(st.text(chars, max_size=40),
                  st.builds(lambda s, n: s * n, st.text(chars, min_size=1, max_size=4),
                            st.integers(1, 2 * LIMIT)))


@pytest.fixture(autouse=True)
def small_limit(monkeypatch):
    monkeypatch.setattr(text, "TEXT_LIMIT", LIMIT)


@given(texts)
def test_storable_text_is_utf8_without_nul_within_the_limit_and_stable(t):
    s = storable(t)
    s.encode("utf-8")   # no lone surrogate left
    assert "\x00" not in s and len(s) <= LIMIT
    assert storable(s) == s
    if t.isascii() and "\x00" not in t and len(t) <= LIMIT:
        assert s is t   # the common case is not copied


def test_escapes_say_what_the_bytes_were():
    assert storable("caf\udce9 \ud800 a\x00b é") == "caf\\xe9 \\ud800 a\\x00b é"
    # Escapes longer than what they stand for still keep the text within the limit.
    assert len(storable("\x00" * LIMIT)) <= LIMIT


@given(st.lists(st.text(max_size=300), max_size=30), st.integers(120, 700))
def test_capped_text_written_in_pieces_keeps_what_capped_keeps(pieces, limit):
    buf = CappedText(limit)
    for p in pieces:
        buf.write(p)
    whole = "".join(pieces)
    assert buf.text() == capped(whole, limit)
    assert len(buf.text()) <= limit and capped(buf.text(), limit) == buf.text()


def test_a_cut_text_says_how_much_was_cut():
    out = capped("a" * 300 + "b" * 300, 300)
    assert out == "a" * 100 + "\n[nbflow: 400 characters cut here]\n" + "b" * 100


@pytest.mark.parametrize("name", ["t", "n" * 255, "é", "a b-c.d"])
def test_names_every_store_keeps_pass(name):
    check_name("task", name)


@pytest.mark.parametrize("name, error, match", [
    ("", ValueError, r"^a task name cannot be empty\. Give the task another name\.$"),
    ("n" * 256, ValueError, r"is 256 characters long; a store keeps names of at most 255"),
    ("a\x00", ValueError, r"holds a NUL character or a lone surrogate"),
    ("\udce9", ValueError, r"holds a NUL character or a lone surrogate"),
    (b"t", TypeError, r"^a task name must be a string, not bytes \(b't'\); give it as text$"),
])
def test_names_no_store_keeps_are_refused(name, error, match):
    with pytest.raises(error, match=match):
        check_name("task", name)
