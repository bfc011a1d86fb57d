"""What a run sends to its dashboard: batched diffs, at most ten a second, adding up
to exactly the run's final state; and what the dashboard does with the browser's
messages (cancel, expand, resync)."""

from __future__ import annotations

import threading
import time

import pytest
from frontend import FrontEnd

import nbflow
from nbflow.notebook.widgets import Dashboard
from nbflow.render import STATE_COLORS

EVIL = "<img src=x onerror=alert(1)>"


def final_state(run) -> dict[str, tuple]:
    """Each task's (state, attempt) as the store recorded it."""
    df = run.status()
    return {row.task: (row.state, row.attempt) for row in df.itertuples()}


def replay(recorder, dash) -> FrontEnd:
    """A front end fed every message the dashboard sent, in order."""
    opened = next(m for m in recorder.sent(dash) if m.kind == "comm_open")
    front = FrontEnd(opened.data["state"])
    for update in recorder.updates(dash):
        front.receive(update)
    return front


@pytest.mark.slow
def test_ten_thousand_tasks_send_at_most_ten_messages_a_second(comms, store_path):
    flow = nbflow.Flow("ten thousand", store=store_path, workers=8)
    for k in range(10_000):
        flow.task(lambda: None, name=f"t{k}", after=[f"t{k - 100}"] if k >= 100 else [])
    dash = flow.dashboard()
    run = flow.run()
    assert dash._bridge.join(60)

    updates = [m for m in comms.sent(dash) if m.kind == "comm_msg"]
    times = [m.at for m in updates]
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 10, f"{busiest} messages within one second"
    diffs = [m.data["state"]["_diff"] for m in updates if "_diff" in m.data["state"]]
    final = updates[-1].data["state"]["_snapshot"]  # the last message is the final table
    # Live while it ran, not only at the end: a diff every 0.1 s, give or take a busy CPU.
    assert len(diffs) >= max(1, int((final["t1"] - final["t0"]) / 0.3))

    front = replay(comms, dash)
    assert front.gaps == 0
    assert not front.running and front.outcome == "succeeded"
    expected = final_state(run)
    assert {flow.tasks[i]: (row[0], row[1]) for i, row in front.rows.items()} == expected
    assert len(front.bars) == 10_000

    # The diffs alone (without the final snapshot) carry all but the last moments.
    diffs_only = FrontEnd(next(m for m in comms.sent(dash) if m.kind == "comm_open")
                          .data["state"])
    for update in comms.updates(dash):
        diffs_only.receive(update if "_graph" in update else {"_diff": update.get("_diff")})
        if "_snapshot" in update and not update["_snapshot"]["running"]:
            break
    behind = [i for i, row in diffs_only.rows.items() if row[0] != "succeeded"]
    assert diffs_only.gaps == 0 and len(behind) < 5_000
    assert {diffs_only.rows[i][0] for i in behind} <= {"pending", "ready", "running"}


def test_a_dashboard_shown_before_the_run_is_live_without_reading_the_store(comms, store_path,
                                                                           monkeypatch):
    # On a big run the store can be seconds behind: a dashboard that subscribed
    # before the first event must not wait for it before showing anything.
    flow = nbflow.Flow("fresh", store=store_path, workers=2)
    for k in range(20):
        flow.task(lambda: None, name=f"t{k}", after=[f"t{k - 1}"] if k else [])
    read = []
    monkeypatch.setattr(flow.store, "events", lambda *a, **k: read.append(a) or [])
    dash = flow.dashboard()
    run = flow.run()
    assert dash._bridge.join(30)
    assert read == []
    assert replay(comms, dash).states() == ["succeeded"] * 20 and run.state == "succeeded"


def gated_flow(name: str, store_path: str, n: int, workers: int):
    """``n`` quick tasks, then ``last``, which sets ``reached`` and waits for ``release``."""
    flow = nbflow.Flow(name, store=store_path, workers=workers)
    reached, release = threading.Event(), threading.Event()
    for k in range(n):
        flow.task(lambda: None, name=f"quick{k}")

    def last():
        reached.set()
        release.wait(30)

    flow.task(last, name="last", after=[f"quick{k}" for k in range(n)])
    return flow, reached, release


def test_a_burst_of_events_is_one_diff_with_each_task_once(comms, store_path):
    flow, reached, release = gated_flow("burst", store_path, 100, workers=4)
    dash = Dashboard(flow=flow, interval=3600)  # it sends only when told (or at the end)
    run = flow.run(background=True)
    assert reached.wait(30)
    assert dash._bridge.flush()
    release.set()
    run.wait(30)
    assert dash._bridge.join(30)

    updates = comms.updates(dash)
    diffs = [u["_diff"] for u in updates if u.get("_diff")]
    # 300 events (ready, running, succeeded for 100 tasks) and "last" starting: one message.
    assert len(diffs) == 1
    rows = diffs[0]["tasks"]
    assert len(rows) == 101 and len({r[0] for r in rows}) == 101
    assert {r[1] for r in rows[:100]} == {"succeeded"} and rows[100][1] == "running"
    assert diffs[0]["seq"] == 1 and diffs[0]["run"] == run.id
    assert updates[-1]["_snapshot"]["outcome"] == "succeeded"


def test_the_final_snapshot_carries_errors_logs_retries_and_escapes_nothing(comms,
                                                                          store_path):
    flow = nbflow.Flow("details", store=store_path, workers=2)
    tries = []

    @flow.task(retries=1)
    def flaky():
        tries.append(1)
        print(f"try {len(tries)}")
        if len(tries) == 1:
            raise RuntimeError("first try fails")
        return 1

    @flow.task(name=EVIL)
    def evil():
        print("<script>alert(1)</script>")
        raise ValueError("<b>bold?</b>")

    run = flow.run()
    dash = run.dashboard()
    assert dash._bridge.join(30)
    front = replay(comms, dash)
    assert front.rows[0][:2] == ["succeeded", 2]
    assert front.rows[1][:2] == ["failed", 1]
    assert 0 not in front.errors  # the retry succeeded: its first error is not shown
    assert front.errors[1][0] == "ValueError: <b>bold?</b>"
    assert "raise ValueError" in front.errors[1][1]
    assert front.logs == {(0, 1): "try 1\n", (0, 2): "try 2\n",
                          (1, 1): "<script>alert(1)</script>\n"}
    assert sorted(front.bars) == [(0, 1), (0, 2), (1, 1)]
    assert [b[5] for _, b in sorted(front.bars.items())] == ["retrying", "succeeded", "failed"]
    # Each attempt keeps its own error: the first try's is not lost once the second won.
    assert [b[6] for _, b in sorted(front.bars.items())] == [
        "RuntimeError: first try fails", None, "ValueError: <b>bold?</b>"]
    assert all(b[2] and b[2].startswith("nbflow-worker-") for b in front.bars.values())


def test_a_flow_dashboard_follows_each_new_run(comms, store_path):
    flow = nbflow.Flow("follow", store=store_path)
    flow.task(lambda: 1, name="one")
    dash = flow.dashboard()
    assert dash._graph["run"] is None and dash._graph["names"] == ["one"]
    assert not dash._snapshot["running"]
    first = flow.run()
    assert dash.run is first and dash._graph["run"] == first.id
    second = flow.run()
    assert dash._bridge.join(30)
    assert dash.run is second and replay(comms, dash).graph["run"] == second.id
    assert replay(comms, dash).states() == ["succeeded"]
    dash.close()
    third = flow.run()
    assert dash.run is second and third.state == "succeeded"


def test_cancel_expand_collapse_and_resync_messages(comms, store_path):
    flow = nbflow.Flow("steer", store=store_path, workers=2)
    started = threading.Barrier(3)

    def spin():
        started.wait(30)
        while True:
            nbflow.check_cancelled()
            threading.Event().wait(0.01)

    for k in range(2):
        flow.task(spin, name=f"spin{k}")
    for k in range(10):
        flow.task(lambda: None, name=f"after{k}", after=["spin0", "spin1"])
    dash = Dashboard(flow=flow, collapse_above=5, interval=3600)
    assert set(dash._view["units"]) == {"uL0", "uL1"}
    run = flow.run(background=True)
    started.wait(30)

    dash._handle_custom_msg({"type": "expand", "node": "uL1"}, [])
    assert set(dash._view["units"]) == {"uL0", "uL1.0", "uL1.1"}
    dash._handle_custom_msg({"type": "expand", "node": "no-such-node"}, [])
    assert set(dash._view["units"]) == {"uL0", "uL1.0", "uL1.1"}
    dash._handle_custom_msg({"type": "collapse"}, [])
    assert set(dash._view["units"]) == {"uL0", "uL1"}

    # The spins can pass the barrier before the engine has taken the dashboard's
    # subscription (a thread the pool starts runs its task at once): resync until
    # the dashboard has heard of them.
    deadline = time.monotonic() + 30
    while True:
        before = len(comms.updates(dash))
        dash._handle_custom_msg({"type": "resync"}, [])
        resent = comms.updates(dash)[before:]
        assert len(resent) == 1 and resent[0]["_snapshot"]["running"]
        states = [r[1] for r in resent[0]["_snapshot"]["tasks"][:2]]
        if states == ["running", "running"] or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert states == ["running", "running"]

    dash._handle_custom_msg({"type": "cancel"}, [])
    assert run.wait(30).state == "cancelled"
    assert dash._bridge.join(30)
    front = replay(comms, dash)
    assert front.outcome == "cancelled" and set(front.states()) == {"cancelled"}

    with pytest.warns(RuntimeWarning, match="nbflow: the dashboard got a message it does "
                                            "not know: {'type': 'dance'}"):
        dash._handle_custom_msg({"type": "dance"}, [])


def test_static_fallback_is_escaped_svg_with_dot_and_a_table_without(comms, store_path,
                                                                    monkeypatch, tmp_path):
    flow = nbflow.Flow("static <flow>", store=store_path)
    flow.task(lambda: 1, name=EVIL)
    flow.task(lambda: 2, name="b&b", after=[EVIL])
    run = flow.run()
    dash = run.dashboard()
    assert dash._bridge.join(30)
    data, _meta = dash._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == dash.model_id
    page = data["text/html"]
    assert "<svg" in page and "static &lt;flow&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "b&amp;b" in page
    assert "<img" not in page

    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot`: the table instead
    page = dash._repr_mimebundle_()[0]["text/html"]
    assert "<svg" not in page and "<table" in page and "<img" not in page
    assert "<td>&lt;img src=x onerror=alert(1)&gt;</td>" in page
    assert "succeeded: 2" in page


def test_dashboard_arguments_are_checked(store_path):
    with pytest.raises(ValueError, match=r"Dashboard needs a run or a flow: use "
                                         r"run.dashboard\(\) or flow.dashboard\(\)"):
        Dashboard()
    flow = nbflow.Flow("f", store=store_path)
    flow.task(lambda: 1, name="a")
    with pytest.raises(ValueError, match=r"collapse_above must be at least 1 \(or None to "
                                         r"never collapse\), got 0"):
        flow.dashboard(collapse_above=0)
    with pytest.raises(ValueError, match=r"a dashboard's parts are some of header, graph, "
                                         r"detail, timeline, table; got \['grpah'\]"):
        Dashboard(flow=flow, parts=["grpah"])


def test_graphviz_travels_once_for_any_number_of_dashboards(comms, store_path):
    flow = nbflow.Flow("twice", store=store_path)
    flow.task(lambda: 1, name="a")
    first, second = flow.dashboard(), flow.dashboard()
    assert first._viz is second._viz
    opened = [m.data["state"] for m in comms.messages if m.kind == "comm_open"]
    runtimes = [s for s in opened if s.get("_anywidget_id", "").endswith("VizRuntime")]
    assert len(runtimes) == 1 and len(runtimes[0]["_esm"]) > 1_000_000  # the WASM, inlined
    dashboards = [s for s in opened if s.get("_anywidget_id", "").endswith("Dashboard")]
    assert len(dashboards) == 2
    for state in dashboards:
        assert len(state["_esm"]) < 100_000
        assert state["_viz"] == f"anywidget:{first._viz.model_id}"


def test_a_page_that_asks_for_the_whole_state_gets_the_table_as_it_is_now(comms, store_path):
    # A reloaded page asks the kernel for the model's whole state: it must get every
    # task as it is now, not the first (all pending) snapshot and the latest diff.
    flow, reached, release = gated_flow("reload", store_path, 30, workers=2)
    dash = Dashboard(flow=flow, interval=3600)
    run = flow.run(background=True)
    assert reached.wait(30)
    try:
        # The bridge may not have heard of "last" running yet: flush until it has.
        deadline = time.monotonic() + 30
        while True:
            dash._bridge.flush()
            state = dash.get_state()
            if state["_snapshot"]["tasks"][-1][1] == "running" or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        snap = state["_snapshot"]
        assert snap["run"] == run.id and snap["running"] and state["_diff"] == {}
        assert [row[1] for row in snap["tasks"]] == ["succeeded"] * 30 + ["running"]
        assert snap["seq"] == dash._bridge.seq  # the next diff follows it
        assert dash._snapshot["tasks"][0][1] == "pending"  # the trait itself is untouched
        assert set(dash.get_state("_snapshot")) == {"_snapshot"}
    finally:
        release.set()
    run.wait(30)
    assert dash._bridge.join(30)


def test_a_running_task_s_output_reaches_the_page_before_the_task_ends(comms, store_path):
    flow = nbflow.Flow("stream", store=store_path)
    printed, release = threading.Event(), threading.Event()

    @flow.task
    def talky():
        print("line 1")
        printed.set()
        release.wait(30)
        print("line 2")

    dash = Dashboard(flow=flow, interval=3600)
    run = flow.run(background=True)
    assert printed.wait(30)
    try:
        deadline = time.monotonic() + 30
        while True:  # until the bridge has heard that the task runs
            dash._bridge._next_live = 0.0
            dash._bridge.flush()
            logs = [log for u in comms.updates(dash) if u.get("_diff")
                    for log in u["_diff"]["logs"]]
            if logs or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert logs == [[0, 1, "line 1\n"]]
    finally:
        release.set()
    run.wait(30)
    assert dash._bridge.join(30)
    assert replay(comms, dash).logs == {(0, 1): "line 1\nline 2\n"}


def test_the_static_picture_of_a_big_flow_is_small_and_names_the_failures(comms, store_path):
    flow = nbflow.Flow("big static", store=store_path, workers=4)
    for k in range(2000):
        flow.task(lambda: None, name=f"t{k}", after=[f"t{k - 40}"] if k >= 40 else [])
    flow.task(lambda: 1 / 0, name="broken <b>", after=["t0"])
    run = flow.run()
    dash = run.dashboard(collapse_above=None)  # the live view draws every task
    assert dash._bridge.join(60)
    page = dash.static_html()
    assert len(page) < 200_000, f"{len(page):,} characters"
    assert page.count('class="node"') <= 60
    assert "<li><code>broken &lt;b&gt;</code>: ZeroDivisionError: division by zero</li>" in page
    # Done grows from the left: the first part of the bar is the succeeded one.
    bar = page[page.index("display:flex;height:6px"):]
    assert bar.index(STATE_COLORS["succeeded"]) < bar.index(STATE_COLORS["failed"])


def test_a_new_kernel_s_dashboard_shows_the_latest_stored_run_crashed_or_not(comms, tmp_path):
    import subprocess
    import sys
    store = str(tmp_path / "nbflow.db")
    # A kernel that dies in the middle of a run: the run stays "running" in the store.
    script = f"""
import os, threading, nbflow
flow = nbflow.Flow("restarted", store={store!r}, workers=2)
started = threading.Event()
flow.task(lambda: print("done"), name="first")
def hangs():
    started.set()
    threading.Event().wait(60)
flow.task(hangs, name="hangs", after=["first"])
run = flow.run(background=True)
started.wait(30)
run.store.flush()
os._exit(3)
"""
    assert subprocess.run([sys.executable, "-c", script], timeout=120).returncode == 3
    flow = nbflow.Flow("restarted", store=store)  # the new kernel's flow: no run in memory
    flow.task(lambda: 1, name="first")
    dash = flow.dashboard()
    snap = dash._snapshot
    assert dash._graph["run"] == flow.store.latest_run_id("restarted")
    assert dash._graph["names"] == ["first", "hangs"]
    assert [row[1] for row in snap["tasks"]] == ["succeeded", "running"]
    assert snap["outcome"] == "crashed" and not snap["running"]
    assert snap["logs"] == [[0, 1, "done\n"]]
    assert "· crashed ·" in dash.static_html()
    # The next run of the flow takes over, as for any flow dashboard.
    run = flow.run()
    assert dash._bridge.join(30) and dash._graph["run"] == run.id
    assert replay(comms, dash).states() == ["succeeded"]
