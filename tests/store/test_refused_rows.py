"""One row a database refuses never stops the store (issue 9), on SQLite and PostgreSQL.

The texts are what real tasks produce: a latin-1 file name printed from
``os.listdir`` (a lone surrogate), a NUL byte from a binary file, a gigantic
output.  Each is made storable; what still fails is left out alone, reported,
and every later write goes on.
"""

from __future__ import annotations

import os
import warnings

import pytest

from nbflow import Flow
from nbflow.core.replay import COLUMNS, replay
from nbflow.core.text import NAME_LIMIT, TEXT_LIMIT
from nbflow.store import Store

SURROGATE = os.fsdecode(b"caf\xe9.csv")   # 'caf\udce9.csv', as listdir gives it


def table(store, run_id) -> dict[str, list]:
    return {r["name"]: [r[c] for c in COLUMNS] for r in store.tasks(run_id)}


def hostile_flow(url) -> Flow:
    flow = Flow("hostile", store=url, executor="sync")

    @flow.task
    def listing():
        print("found", SURROGATE, "and a\x00b")
        print("other surrogate \ud800", file=__import__("sys").stderr)
        return 1

    @flow.task
    def parse(listing):
        raise ValueError(f"cannot parse {SURROGATE}: byte \x00 at 3")

    return flow


def test_surrogates_and_nuls_in_output_and_errors_are_stored_escaped(backend_url):
    flow = hostile_flow(backend_url)
    run = flow.run()
    assert run.counts() == {"succeeded": 1, "failed": 1}
    store = flow.store
    assert run.logs("listing", "stdout") == "found caf\\xe9.csv and a\\x00b\n"
    assert run.logs("listing", "stderr") == "other surrogate \\ud800\n"
    error = "ValueError: cannot parse caf\\xe9.csv: byte \\x00 at 3"
    assert table(store, run.id)["parse"][4] == error
    [dead] = store.dead_letters("hostile")
    assert dead["error"] == error and error in dead["traceback"]
    events = store.events(run.id)
    assert table(store, run.id) == replay(run.names, events)
    # Before, the refused batch was written again in front of every later one:
    # nothing of this run, or of any other, was recorded after it.
    second = Flow("after", store=store, executor="sync")
    second.task(lambda: 2, name="fine")
    later = second.run()
    assert table(store, later.id)["fine"][0] == "succeeded"
    assert store.run(run.id)["state"] == "failed"


def test_a_gigantic_output_is_kept_as_its_start_and_end_with_what_was_cut(store_path):
    flow = Flow("loud", store=store_path, executor="sync")
    chunk = "y" * 999_999 + "\n"

    @flow.task
    def loud():
        print("first line")
        for _ in range(40):   # 40 MB, which before was held whole and stored whole
            print(chunk, end="")
        print("last line")

    run = flow.run()
    out = run.logs("loud", "stdout")
    assert len(out) <= TEXT_LIMIT
    assert out.startswith("first line\nyyy") and out.endswith("yyy\nlast line\n")
    cut = 11 + 40 * 1_000_000 + 10 - (len(out) - len(_note(out)))
    assert f"[nbflow: {cut:,} characters cut here]" in out


def _note(text: str) -> str:
    start = text.index("\n[nbflow: ")
    return text[start:text.index("]\n", start) + 2]


def test_text_brought_by_a_process_executor_is_capped_when_rows_are_built(store_path):
    store = Store(store_path)
    flow = Flow("brought", store=store, executor="sync")
    flow.task(lambda: 1, name="one")
    run = flow.run()
    # What a process worker's outcome brings did not go through this process's capture.
    store.sink(run.id).logs([("one", 2, "a" * (3 * TEXT_LIMIT), "b\udce9")])
    store.flush()
    [second] = store.logs(run.id, "one")
    assert len(second["stdout"]) <= TEXT_LIMIT and "characters cut here]" in second["stdout"]
    assert second["stderr"] == "b\\xe9"


@pytest.mark.parametrize("what, make", [
    ("task", lambda name: Flow("f").task(lambda: 1, name=name)),
    ("flow", lambda name: Flow(name)),
])
def test_a_name_longer_than_the_store_keeps_is_refused_where_it_is_declared(what, make):
    make("n" * NAME_LIMIT)
    with pytest.raises(ValueError, match=rf"^the {what} name 'n{{40}}'\.\.\. is 256 characters "
                                         rf"long; a store keeps names of at most 255\. "
                                         rf"Give the {what} another name\.$"):
        make("n" * (NAME_LIMIT + 1))
    with pytest.raises(ValueError, match=rf"^the {what} name 'caf\\udce9.csv' holds a NUL "
                                         r"character or a lone surrogate"):
        make(SURROGATE)
    with pytest.raises(ValueError, match=rf"{what} name 'a\\x00' holds a NUL"):
        make("a\x00")
    # The options table refuses what is not text at all (core/options.py).
    with pytest.raises(TypeError, match=r"name must be a non-empty string, got 7"):
        make(7)


def test_a_cell_task_name_is_checked_too():
    with pytest.raises(ValueError, match=r"the task name 'x{40}'\.\.\. is 300 characters long"):
        Flow("cells").cell_task("x" * 300, "a = 1", {})


REFUSED = (r"^nbflow: the store .* refused the log of task 'b' of run {run}: "
           r"(OverflowError|NumericValueOutOfRange): .*\. It was left out and everything else "
           r"was recorded; please report this as an nbflow bug, with this message\.$")


def test_a_row_the_database_refuses_is_left_out_alone_and_reported(backend_url):
    flow = Flow("refused", store=backend_url, executor="sync")
    flow.task(lambda: print("a"), name="a")
    flow.task(lambda: print("b"), name="b")
    run = flow.run()
    store = flow.store
    sink = store.sink(run.id)
    # An attempt number no integer column holds: refused on every backend.
    with pytest.warns(RuntimeWarning, match=REFUSED.format(run=run.id)):
        sink.logs([("a", 2, "kept\n", ""), ("b", 2 ** 70, "refused\n", ""),
                   ("a", 3, "kept too\n", "")])
        store.flush()
    assert {(r["task"], r["attempt"]) for r in store.logs(run.id)} == {
        ("a", 1), ("b", 1), ("a", 2), ("a", 3)}
    assert len(store._held.writer.refused) == 1
    # Later writes are not affected.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = flow.run()
    assert [r["state"] for r in store.tasks(again.id)] == ["succeeded", "succeeded"]
    assert [r["stdout"] for r in store.logs(again.id)] == ["a\n", "b\n"]


@pytest.mark.postgres
def test_a_name_too_long_for_postgresql_that_got_past_declaration_costs_only_its_rows(
        new_pg_url):
    store = Store(new_pg_url)
    flow = Flow("long", store=store, executor="sync")
    flow.task(lambda: 1, name="short")
    run = flow.run()
    long = "z" * 300
    sink = store.sink(run.id)
    with pytest.warns(RuntimeWarning, match=r"refused the log of task 'z{300}' of run .*"
                                            r"StringDataRightTruncation: value too long"):
        sink.logs([(long, 1, "x", ""), ("short", 2, "y", "")])
        store.flush()
    assert [(r["task"], r["attempt"]) for r in store.logs(run.id)] == [("short", 2)]


def test_batches_of_the_wrong_shape_from_a_sink_are_left_out_alone(backend_url):
    flow = Flow("shapes", store=backend_url, executor="sync")
    flow.task(lambda: 1, name="a")
    run = flow.run()
    store = flow.store
    sink = store.sink(run.id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sink.events([(run.id, 99, "a")])             # a short event
        sink.logs([("a", 3, "kept\n", "")])
        store.flush()
        sink.logs([("a", 2, None, "")])              # no text
        store.record_results(run.id, [(run.id, "a", "key")])   # a short row
        sink.logs([("a", 4, "kept too\n", "")])
        store.flush()
    reported = [str(w.message) for w in caught]
    assert len(reported) == 3
    assert reported[0].startswith(f"nbflow: the store {store.label} could not record a batch "
                                  f"of events of run {run.id}: IndexError: ")
    assert reported[1].startswith(f"nbflow: the store {store.label} could not record a batch "
                                  f"of logs of run {run.id}: TypeError: ")
    assert f"refused the result index row of task 'a' of run {run.id}" in reported[2]
    assert [r["attempt"] for r in store.logs(run.id)] == [3, 4]
    assert flow.run().state == "succeeded"
