"""``nbflow runs`` and ``nbflow status`` on a store crafted by an attacker with raw SQL:
escape sequences, C1 controls, bidi controls and invisible characters in every column,
wrong types and broken JSON.  Nothing of it reaches the terminal, and nothing crashes."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nbflow
from nbflow.cli import clean
from nbflow.terminal import _BLANK_LETTERS

PAYLOADS = {
    "OSC 0 (window title)": "\x1b]0;pwned\x07",
    "OSC 52 (clipboard)": "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x1b\\",
    "CSI 2J (clear screen)": "\x1b[2J",
    "CSI, 8-bit": "\x9b2J",
    "OSC, 8-bit": "\x9d0;title\x9c",
    "DCS": "\x1bP1$r\x1b\\",
    "APC": "\x1b_payload\x1b\\",
    "unterminated OSC": "\x1b]0;no end",
    "ESC c (reset)": "\x1bc",
    "lone ESC": "\x1b",
    "C1 NEL, APC, ST": "\x85\x9f\x9c",
    "C0": "\x00\x07\x08\x0b\x0c\r\x7f",
    "bidi override": "\u202eevil\u202c",
    "bidi embeddings": "\u202a\u202b\u202d",
    "bidi isolates": "\u2066\u2067\u2068\u2069",
    "invisible": "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad\u061c",
    "line separators": "\u2028\u2029",
    "blank letters": "\u3164\u115f",
    "tag characters": "\U000e0041\U000e007f",
}
HOSTILE = "<" + "".join(PAYLOADS.values()) + ">"
# Nothing of these may reach stdout or stderr.
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069"
                       "\u2028\u2029\ufeff\u00ad\u061c\u3164\u115f\U000e0000-\U000e007f]")


def honest_store(path):
    """A real store at ``path`` with one succeeded run, closed."""
    flow = nbflow.Flow("honest", store=str(path), executor="sync")
    flow.task(lambda: 1, name="one")
    flow.run()
    flow.store.close()
    return path


@pytest.fixture
def crafted(tmp_path):
    """A real store (one honest run), then rows written with raw SQL by an attacker."""
    path = honest_store(tmp_path / "crafted.db")
    con = sqlite3.connect(path)
    run = ("INSERT INTO runs (id, flow, state, created, finished, params, version) "
           "VALUES (?, ?, ?, ?, ?, ?, 1)")
    con.execute(run, ("r1" + HOSTILE, HOSTILE, HOSTILE, 2e9, 2e9 + 5, "{not json" + HOSTILE))
    con.execute(run, ("r2" + HOSTILE, HOSTILE, "failed", "yesterday" + HOSTILE,
                      "later" + HOSTILE, json.dumps({HOSTILE: HOSTILE, "n": [HOSTILE]})))
    con.execute(run, ("r3", "lists", "running", 2e9 - 1, None, json.dumps([HOSTILE])))
    con.execute(run, ("r4", "deep", "running", 2e9 - 2, float("inf"), "[" * 100_000))
    con.execute(run, ("r5", HOSTILE.encode(), HOSTILE.encode(), 1e300, -1e300,
                      HOSTILE.encode()))
    # Text that is not UTF-8 (sqlite3 raises on it mid-read, quoting the bytes).
    con.execute("INSERT INTO runs (id, flow, state, created, version) VALUES "
                "('r6', CAST(x'ff1b5b324a9b324a' AS TEXT), CAST(x'c3' AS TEXT), 2e9 - 3, 1)")
    con.execute("INSERT INTO tasks (run_id, name, idx, level, deps, kind, state, attempt, "
                "error, version) VALUES ('r6', CAST(x'e28780ff' AS TEXT), 0, 0, '[]', "
                "'function', 'failed', 1, CAST(x'1b5d303b74fe07' AS TEXT), 1)")
    task = ("INSERT INTO tasks (run_id, name, idx, level, deps, kind, state, attempt, started, "
            "finished, error, version) VALUES (?, ?, ?, ?, '[]', 'function', ?, ?, ?, ?, ?, 1)")
    for run_id in ("r1" + HOSTILE, "r2" + HOSTILE, "r5"):
        con.execute(task, (run_id, HOSTILE, 0, HOSTILE, HOSTILE, HOSTILE, "noon" + HOSTILE,
                           HOSTILE, HOSTILE + "\nTraceback (not really)\n" + HOSTILE))
        con.execute(task, (run_id, "failing" + HOSTILE, 1, 0, "failed", 1, 2e9, 2e9 + 1,
                           "ValueError: " + HOSTILE + "\n  line two " + HOSTILE))
        con.execute(task, (run_id, HOSTILE.encode(), 2, 0, HOSTILE.encode(), 1, 2e9, None,
                           HOSTILE.encode()))
    con.commit()
    con.close()
    return path


def assert_safe(result) -> None:
    for stream in (result.stdout, result.stderr):
        found = FORBIDDEN.search(stream)
        assert found is None, (f"{found.group()!r} reached the terminal in\n{stream!r}")
        assert "Traceback (most recent call last)" not in stream


@pytest.mark.parametrize("args", [
    ["runs"], ["runs", "--flow", HOSTILE.replace("\x00", "")], ["status"], ["status", "r1"],
    ["status", "r2"], ["status", "r3"], ["status", "r4"], ["status", "r5"], ["status", "r6"],
    ["status", "r"],
])
def test_nothing_an_attacker_stored_reaches_the_terminal(crafted, nbflow_cli, tmp_path, args):
    result = nbflow_cli(*args, "--store", str(crafted), cwd=tmp_path)
    assert_safe(result)
    assert result.returncode == (2 if args == ["status", "r"] else 0), result.stderr
    if args[0] == "status" and args[1:] not in (["r3"], ["r4"], ["r6"], ["r"]):
        # What was hidden is shown as escapes, so a disguise shows instead of working.
        assert "\\u202e" in result.stdout and "\\x85" in result.stdout, result.stdout


def test_the_table_keeps_its_columns_with_hostile_values(crafted, nbflow_cli, tmp_path):
    lines = nbflow_cli("runs", "--store", str(crafted), cwd=tmp_path).stdout.splitlines()
    # One line per run, each starting with its (cleaned) id.
    assert sorted(line.split()[0][:2] for line in lines[1:]) == ["20", "r1", "r2", "r3", "r4",
                                                                 "r5", "r6"]
    r2 = next(line for line in lines if line.startswith("r2"))
    assert "yesterday<" in r2      # a time that is no number shows as text
    r5 = next(line for line in lines if line.startswith("r5"))
    assert re.search(r"\s-\s", r5)  # a duration from out-of-range times is "-"


def test_params_that_are_no_json_object_are_shown_as_text(crafted, nbflow_cli, tmp_path):
    out = nbflow_cli("status", "r1", "--store", str(crafted), cwd=tmp_path).stdout
    assert re.search(r"^created \S+ \S+, took 5\.00s; \{not json<", out, re.M), out
    out = nbflow_cli("status", "r3", "--store", str(crafted), cwd=tmp_path).stdout
    assert re.search(r"; \[\"<", out), out
    out = nbflow_cli("status", "r4", "--store", str(crafted), cwd=tmp_path).stdout
    assert re.search(r"took -; \[\[\[", out), out


@pytest.mark.parametrize("name", PAYLOADS)
def test_clean_leaves_no_control_of_any_kind(name):
    for one_line in (False, True):
        text = clean(f"a{PAYLOADS[name]}b", one_line=one_line)
        assert FORBIDDEN.search(text) is None, text
        # ESC b is itself a sequence (a terminal would take the b): nothing else eats text.
        assert text.startswith("a") and (text.endswith("b") or name == "lone ESC")


def test_clean_removes_sequences_whole_and_shows_invisible_characters():
    assert clean("x\x1b]0;title\x07y\x1b]52;c;ZXZpbA==\x1b\\z\x1b[2Jw") == "xyzw"
    assert clean("\x9b31mred\x9b0m \x9d0;t\x9cok") == "red ok"
    assert clean("ad\u200bmin \u202eexe.txt") == "ad\\u200bmin \\u202eexe.txt"
    assert clean("caf\udce9") == "caf\\udce9"   # a lone surrogate would not even print
    assert clean("\x1b]0;unterminated") == "0;unterminated"
    assert clean("a\r\nb\rc") == "a\nb\\rc"


def test_a_store_that_fails_in_an_unnamed_way_is_an_error_without_traceback(
        tmp_path, nbflow_cli):
    path = honest_store(tmp_path / "odd.db")
    con = sqlite3.connect(path)
    con.execute('ALTER TABLE runs RENAME COLUMN flow TO "flow\x1b[2J"')
    con.commit()
    con.close()
    result = nbflow_cli("runs", "--store", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert_safe(result)
    assert re.fullmatch(r"nbflow runs: error: the store could not be read: no such column: "
                        r"runs\.flow\. Check the store given by --store or NBFLOW_STORE\.\n",
                        result.stderr), result.stderr


TEXT = st.text(alphabet=st.characters(codec=None)) | st.text(
    alphabet="\x1b\x9b\x9d\x90\x07\\[];0Pc_^X\x9c\n\t\r a\u202e")   # sequences, dense


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_clean_never_lets_a_control_through(text):
    for one_line in (False, True):
        out = clean(text, one_line=one_line)
        assert FORBIDDEN.search(out) is None, (text, out)
        kept = "" if one_line else "\n\t"
        assert out.translate({ord(c): None for c in kept}).isprintable(), (text, out)


@given(st.text(alphabet=st.characters(codec=None)).filter(
    lambda t: t.isprintable() and _BLANK_LETTERS.isdisjoint(t)))
@settings(max_examples=300, deadline=None)
def test_clean_leaves_visible_text_as_it_is(text):
    assert clean(text) == text
