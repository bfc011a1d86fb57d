"""Random rows through the store's writer, on SQLite and PostgreSQL (issue 9).

Names, texts and numbers are drawn from everything a task or a hostile sink
could hand over: any unicode, lone surrogates, NULs, texts past the size
limit, names past 255 characters, numbers past what a column holds.  Whatever
the mix, every valid row is committed (its text as ``storable`` makes it),
every invalid one is left out and reported by name, and a run written after it
is recorded whole.
"""

from __future__ import annotations

import time
import uuid
import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbflow.core import text
from nbflow.core.graph import Graph
from nbflow.core.replay import COLUMNS, replay
from nbflow.core.text import storable
from nbflow.store import Store

# The size limit is lowered for this test, so that texts past it are cheap to draw,
# write and shrink (tests/store/test_refused_rows.py writes real gigantic ones).
LIMIT = 3000
NASTY = ["\x00", "\udce9", "\ud800", "\udfff", "\u202e", "\x1b", "é", "\U0001f600", "\n"]
chars = st.one_of(st.characters(), st.sampled_from(NASTY))
texts = st.one_of(
    st.text(chars, max_size=30),
    # Past the limit: a few characters repeated, so that it is cheap to draw.
    st.builds(lambda s, n: s * n, st.text(chars, min_size=1, max_size=3),
              st.sampled_from([2, LIMIT // 2 + 1, LIMIT])))
names = st.one_of(st.text(chars, min_size=1, max_size=12),
                  st.builds(lambda c, n: c * n, st.sampled_from("ab"),
                            st.sampled_from([255, 256, 400])))
# The attempt of an event is the engine's own (small); a log's may come from
# elsewhere (a process worker's outcome), and a number past a column's range is
# refused.  (An event's is folded into its task's row before the database sees it.)
attempts = st.sampled_from([1, 2, 3])
log_attempts = st.sampled_from([1, 2, 3, 2 ** 40, 2 ** 70])
tasks = st.lists(st.tuples(names, st.lists(st.tuples(attempts, log_attempts, texts, texts,
                                                     st.booleans()),
                                           min_size=1, max_size=3)),
                 min_size=1, max_size=6, unique_by=lambda t: t[0])


def valid_name(name: str, postgres: bool) -> bool:
    # Names are checked where they are declared (text.check_name); what a database
    # takes anyway differs: SQLite keeps a NUL and any length, PostgreSQL neither.
    if storable(name.replace("\x00", "")) != name.replace("\x00", ""):
        return False   # a lone surrogate
    return not postgres or (len(name) <= 255 and "\x00" not in name)


def valid_attempt(attempt: int, postgres: bool) -> bool:
    return attempt < (2 ** 31 if postgres else 2 ** 63)


def check_writer(url: str) -> None:
    store = Store(url)
    postgres = not url.endswith(".db")

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(tasks)
    def prop(drawn):
        run_id = uuid.uuid4().hex
        order = [name for name, _ in drawn]
        store.create_run(run_id, "prop", Graph(order, [()] * len(order)),
                         ["function"] * len(order), {}, time.time())
        events, logs, seq = [], [], 0
        for name, tries in drawn:
            for k, (attempt, log_attempt, out, err, fails) in enumerate(tries):
                detail = {"error": f"E: {out[:50]}", "traceback": err} if fails else None
                # As the engine does: only the last attempt's failure is final.
                end = ("failed" if k == len(tries) - 1 else "retrying") if fails else "succeeded"
                for frm, to, d in (("ready", "running", None), ("running", end, detail)):
                    events.append((run_id, seq, name, attempt, frm, to, float(seq), d))
                    seq += 1
                logs.append((name, log_attempt, out, err))
        sink = store.sink(run_id)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sink.events(events)
            sink.logs(logs)
            store.flush()
        reported = "\n".join(str(w.message) for w in caught)

        first = set()   # a second log of the same attempt is refused (a duplicate key)

        def log_ok(name, attempt):
            if not valid_name(name, postgres) or not valid_attempt(attempt, postgres) \
                    or (name, attempt) in first:
                return False
            first.add((name, attempt))
            return True

        valid_logs = [log_ok(n, a) for n, a, _o, _e in logs]

        # Every valid row committed, with its text made storable.
        expected = [(*ev[:7], None if ev[7] is None else
                     {k: storable(v) for k, v in ev[7].items()})
                    for ev in events if valid_name(ev[2], postgres)]
        stored = store.events(run_id)
        assert stored == expected
        got_logs = {(r["task"], r["attempt"]): (r["stdout"], r["stderr"])
                    for r in store.logs(run_id)}
        assert got_logs == {(n, a): (storable(o), storable(e))
                            for (n, a, o, e), good in zip(logs, valid_logs) if good}
        rows = {r["name"]: [r[c] for c in COLUMNS] for r in store.tasks(run_id)}
        assert set(rows) == {n for n in order if valid_name(n, postgres)}
        assert rows == {n: r for n, r in replay(order, stored).items() if n in rows}
        # Every invalid one reported, naming its task and run.
        for (n, _a, _o, _e), good in zip(logs, valid_logs):
            if not good:
                assert f"refused the log of task {n!r} of run {run_id}" in reported
        for n in order:
            if not valid_name(n, postgres):
                assert f"refused the task row of task {n!r} of run {run_id}" in reported
        if all(valid_logs) and all(valid_name(n, postgres) for n in order):
            assert reported == ""   # nothing valid is ever reported

        # Later writes are never affected.
        later = uuid.uuid4().hex
        store.create_run(later, "prop", Graph(["fine"], [()]), ["function"], {}, time.time())
        store.sink(later).events([(later, 0, "fine", 1, "pending", "ready", 1.0, None)])
        store.sink(later).logs([("fine", 1, "ok", "")])
        store.flush()
        assert [r["state"] for r in store.tasks(later)] == ["ready"]
        assert [r["stdout"] for r in store.logs(later)] == ["ok"]

    prop()


def test_random_rows_through_the_writer(backend_url, monkeypatch):
    monkeypatch.setattr(text, "TEXT_LIMIT", LIMIT)
    check_writer(backend_url)
