"""``Store.record``: a run's rows, events and logs as of one moment, on both backends.

Another connection commits a task row and its event between the read of the
task rows and the read of the events, the worst moment.  Three separate reads
would return the event without its task: a stored dashboard then fails on a task
it does not know, and a replay disagrees with the table.
"""

from __future__ import annotations

from sqlalchemy import event, insert

from nbflow import Flow
from nbflow.store import Store
from nbflow.store.schema import events, tasks


def test_a_commit_between_the_reads_of_a_record_is_not_half_seen(backend_url):
    flow = Flow("snap", store=backend_url, executor="sync")
    flow.task(lambda: 1, name="a")
    run_id = flow.run().id
    flow.store.close()
    store = Store(backend_url)
    row = store.tasks(run_id)[0]
    last = store.events(run_id)[-1]
    committed = []

    def commit_a_late_task(_conn, _cursor, statement, *_args):
        if committed or "FROM tasks" not in statement:
            return
        with store.engine.begin() as other:
            other.execute(insert(tasks).values({**row, "name": "late", "idx": 1}))
            other.execute(insert(events).values(
                run_id=run_id, seq=last[1] + 1, task="late", attempt=0, from_state="pending",
                to_state="ready", at=last[6], detail=None))
        committed.append(True)

    event.listen(store.engine, "after_cursor_execute", commit_a_late_task)
    try:
        rows, evs, _logs = store.record(run_id)
    finally:
        event.remove(store.engine, "after_cursor_execute", commit_a_late_task)
    assert committed
    assert [r["name"] for r in rows] == ["a"]
    assert {e[2] for e in evs} == {"a"}
    # Committed all the same: the next record has both.
    rows, evs, _logs = store.record(run_id)
    assert [r["name"] for r in rows] == ["a", "late"] and evs[-1][2] == "late"
    store.close()
