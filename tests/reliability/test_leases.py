"""Leases: one engine owns a run; a live one is refused, an expired one is taken over,
and of several kernels taking a run at once exactly one wins."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import select, update

import nbflow
from nbflow.errors import LeaseHeldError, StoreVersionConflict
from nbflow.store import Store, leases
from nbflow.store.schema import runs

BOUND = 30  # seconds any wait in these tests may take before it is a failure


def declare(flow: nbflow.Flow, release: threading.Event) -> nbflow.Flow:
    """``first`` -> ``hold`` (waits for ``release``, stops when cancelled) -> ``after``."""
    @flow.task
    def first():
        return 1

    @flow.task
    def hold(first):
        while not release.wait(0.005):  # a cooperative task: it polls its cancel flag
            nbflow.check_cancelled()
        return first + 1

    @flow.task
    def after(hold):
        return hold + 1

    return flow


def set_run(url: str, run_id: str, **values) -> None:
    store = Store(url)
    with store.engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(**values))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_run_live_in_another_kernel_is_refused_with_its_owner_named(backend_url):
    release = threading.Event()
    mine = declare(nbflow.Flow("live", store=backend_url), release)
    live = mine.run(background=True)
    # Another kernel: a Store of its own (Flows of one process share one).
    other = declare(nbflow.Flow("live", store=Store(backend_url)), threading.Event())
    owner = mine.store.owner
    with pytest.raises(LeaseHeldError, match=(
            rf"^run {live.id} of flow 'live' is still running, owned by another engine: owner "
            rf"{owner.id} on host '{socket.gethostname()}' \(pid ns \d+, boot [0-9a-f]{{8}}\), "
            rf"pid {os.getpid()}, last heartbeat "
            r"\d+\.\ds ago\. Wait for it to finish, or stop that kernel; its lease expires 30s "
            r"after its last heartbeat, and the run can then be resumed here\.$")):
        other.run(resume=live.id)
    release.set()
    assert live.wait(BOUND).state == "succeeded"
    assert other.run(resume=live.id).status()["cached"].all()  # a finished run is free


def test_a_run_still_going_in_this_kernel_is_refused(store_path, results_dir):
    release = threading.Event()
    flow = declare(nbflow.Flow("live", store=store_path), release)
    live = flow.run(background=True)
    with pytest.raises(LeaseHeldError, match=(
            rf"^run {live.id} of flow 'live' is still running in this kernel: wait for it "
            r"\(run\.wait\(\)\) or cancel it \(run\.cancel\(\)\) before resuming it$")):
        flow.run(resume=True)
    release.set()
    live.wait(BOUND)


def test_an_expired_lease_is_taken_over_and_its_old_owner_stops(backend_url):
    release = threading.Event()
    # A kernel that stalled: its keeper will not beat again within the test.
    stalled = declare(nbflow.Flow("lease", store=Store(backend_url, lease_ttl=3600)), release)
    old = stalled.run(background=True)
    set_run(backend_url, old.id, heartbeat=time.time() - 60)

    released = threading.Event()
    released.set()
    taker = declare(nbflow.Flow("lease", store=Store(backend_url, lease_ttl=5)), released)
    new = taker.run(resume=old.id)
    assert new.state == "succeeded"
    row = taker.store.run(old.id)
    assert (row["state"], row["owner"]) == ("crashed", taker.store.owner.id)

    stalled.store._leases.renew()  # its next heartbeat finds the run taken
    message = (f"run {old.id} was taken over by another engine while this one ran it (its "
               "lease had expired); this engine stopped it")
    with pytest.raises(StoreVersionConflict, match=rf"^{re.escape(message)}$"):
        old.wait(BOUND)
    assert old.state == "cancelled" and old.task_state("hold") == "cancelled"
    assert taker.store.run(old.id)["state"] == "crashed"  # not overwritten by the old owner


def test_a_live_run_keeps_its_lease_fresh(store_path, results_dir):
    release = threading.Event()
    store = Store(store_path, lease_ttl=1)   # the shortest: a beat every third of a second
    flow = declare(nbflow.Flow("beat", store=store), release)
    run = flow.run(background=True)
    created = store.run(run.id)
    deadline = time.monotonic() + BOUND
    while store.run(run.id)["heartbeat"] == created["heartbeat"]:
        assert time.monotonic() < deadline, "no heartbeat"
        release.wait(0.02)
    row = store.run(run.id)
    assert row["version"] > created["version"] and row["state"] == "running"
    [keeper] = [t for t in threading.enumerate() if t.name == "nbflow-lease-keeper"]
    release.set()
    run.wait(BOUND)
    keeper.join(BOUND)  # the last run released: the thread ends
    assert not keeper.is_alive()


def test_the_lease_thread_ends_with_the_last_live_run(store_path, results_dir):
    release = threading.Event()
    flow = declare(nbflow.Flow("idle", store=store_path), release)  # ttl 30 s: a beat per 10 s
    run = flow.run(background=True)
    [keeper] = [t for t in threading.enumerate() if t.name == "nbflow-lease-keeper"]
    release.set()
    run.wait(BOUND)
    keeper.join(5)
    assert not keeper.is_alive()


def test_a_dead_owner_on_this_host_frees_its_run_at_once(store_path, results_dir):
    flow = nbflow.Flow("dead", store=store_path)
    flow.task(lambda: 1, name="one")
    old = flow.run()
    gone = dead_pid()
    # Left running a moment ago by a process of another host: its lease is live.
    set_run(store_path, old.id, state="running", owner="ghost", host="another-host", pid=gone,
            heartbeat=time.time())
    with pytest.raises(LeaseHeldError, match=rf"owned by another engine: owner ghost on host "
                                             rf"'another-host', pid {gone}, "):
        flow.run(resume=old.id)
    # The same where this process runs: the process is gone, so is its lease.
    set_run(store_path, old.id, host=leases.host_identity())
    assert flow.run(resume=old.id).state == "succeeded"
    assert flow.store.run(old.id)["state"] == "crashed"


def test_a_killed_child_not_yet_reaped_counts_as_dead():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert leases._alive(child.pid)
        child.kill()
        deadline = time.monotonic() + BOUND
        while leases._alive(child.pid):  # a zombie until waited for
            assert time.monotonic() < deadline
            threading.Event().wait(0.01)
    finally:
        child.wait()
    assert not leases._alive(child.pid)


def test_a_compare_and_set_that_loses_is_a_conflict_not_an_overwrite(backend_url, monkeypatch):
    flow = declare(nbflow.Flow("cas", store=backend_url), threading.Event())
    flow.remove("hold")
    flow.remove("after")
    old = flow.run()
    set_run(backend_url, old.id, state="running", owner="ghost", heartbeat=time.time() - 600)
    sneaky = Store(backend_url)
    original = leases.lease_status

    def heartbeat_in_between(row, keeper, now):
        # Another process changes the row after this one read it.
        with sneaky.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == old.id)
                         .values(version=runs.c.version + 1))
        return original(row, keeper, now)

    monkeypatch.setattr(leases, "lease_status", heartbeat_in_between)
    with pytest.raises(StoreVersionConflict, match=(
            rf"^run {old.id} changed while this kernel was taking it over: another kernel "
            r"resumed it, or its owner came back to life\. Look at the flow's runs and resume "
            r"the latest one\.$")):
        flow.run(resume=old.id)
    row = flow.store.run(old.id)
    assert (row["state"], row["owner"]) == ("running", "ghost")  # untouched
    with flow.store.engine.connect() as conn:
        assert conn.execute(select(runs.c.id).where(runs.c.resumed_from == old.id)).all() == []


RACER = '''
import os, sys
import nbflow
from nbflow.errors import StoreVersionConflict

flow = nbflow.Flow("race", store=os.environ["STORE"])


@flow.task
def one():
    return 1


print("ready", flush=True)
sys.stdin.readline()
try:
    print("won", flow.run(resume=os.environ["RESUME"]).id, flush=True)
except StoreVersionConflict as e:
    print("lost", e, flush=True)
'''


def test_of_kernels_racing_to_take_over_a_run_exactly_one_wins(backend_url, tmp_path):
    flow = nbflow.Flow("race", store=backend_url)
    flow.task(lambda: 1, name="one")
    old = flow.run()
    set_run(backend_url, old.id, state="running", owner="ghost", pid=dead_pid())
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    env = {**os.environ, "STORE": backend_url, "RESUME": old.id}
    racers = [subprocess.Popen([sys.executable, str(script)], env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
              for _ in range(4)]
    try:
        for racer in racers:
            assert racer.stdout.readline() == "ready\n"
        for racer in racers:  # all at once, as near as a pipe allows
            racer.stdin.write("go\n")
            racer.stdin.flush()
        answers = [racer.communicate(timeout=BOUND * 4)[0].split(" ", 1) for racer in racers]
    finally:
        for racer in racers:
            racer.kill()
    winners = [text.strip() for word, text in answers if word == "won"]
    losers = [text for word, text in answers if word == "lost"]
    assert len(winners) == 1 and len(losers) == 3, answers
    for text in losers:
        assert text.startswith(f"run {old.id} ")
    [new] = [r for r in flow.store.runs("race") if r["resumed_from"] == old.id]
    assert new["id"] == winners[0] and new["state"] == "succeeded"
    assert flow.store.run(old.id)["state"] == "crashed"


@pytest.mark.parametrize("value", [0, -1, 1e-9, 0.5, float("inf"), float("nan"), 86401, True,
                                   "soon"])
def test_the_lease_ttl_must_be_a_second_to_a_day(store_path, monkeypatch, value):
    # inf killed the keeper thread (an Event.wait overflow), 1e-9 made it spin.
    with pytest.raises(ValueError, match=(
            rf"^lease_ttl must be a number of seconds from 1 to 86400 \(a day\), got "
            rf"{re.escape(repr(value))}\. Pass Store\(url, lease_ttl=SECONDS\)\.$")):
        Store(store_path, lease_ttl=value)
    monkeypatch.setenv("NBFLOW_LEASE_TTL", str(value))
    with pytest.raises(ValueError, match=(
            rf"^NBFLOW_LEASE_TTL must be a number of seconds from 1 to 86400 \(a day\), got "
            rf"{re.escape(repr(str(value)))}\. Fix or unset the environment variable\.$")):
        Store(store_path)


def test_lease_ttls_within_the_range_are_kept(store_path, monkeypatch):
    assert Store(store_path, lease_ttl=1)._leases.ttl == 1
    assert Store(store_path, lease_ttl=86400)._leases.ttl == 86400
    monkeypatch.setenv("NBFLOW_LEASE_TTL", " 2.5 ")
    assert Store(store_path)._leases.ttl == 2.5


# -- an owner elsewhere: another PID namespace, another boot --------------------------

def test_an_owner_recorded_with_another_pid_namespace_waits_for_its_heartbeat(store_path,
                                                                          results_dir):
    flow = nbflow.Flow("ns", store=store_path)
    flow.task(lambda: 1, name="one")
    old = flow.run()
    gone = dead_pid()
    name = socket.gethostname()
    here = flow.store.owner.host
    other_ns = re.sub(r"pid ns \d+", "pid ns 1", here)
    other_boot = re.sub(r"boot \w+", "boot 00000000", here)
    # Same host name, a pid not visible here, a fresh heartbeat: alive somewhere else
    # (a container sharing the store), or recorded by an nbflow that kept the name alone.
    for host in (other_ns, other_boot, name):
        set_run(store_path, old.id, state="running", owner="elsewhere", host=host, pid=gone,
                heartbeat=time.time())
        with pytest.raises(LeaseHeldError, match=rf"owned by another engine: owner elsewhere "
                                                 rf"on host '{name}'"):
            flow.run(resume=old.id)
    # Once its heartbeat is older than the TTL, it is taken over.
    set_run(store_path, old.id, heartbeat=time.time() - 60)
    assert flow.run(resume=old.id).state == "succeeded"
    assert flow.store.run(old.id)["state"] == "crashed"


KERNEL_IN_A_NAMESPACE = """
import sys, threading
import nbflow
release = threading.Event()
flow = nbflow.Flow("ns", store=sys.argv[1])

@flow.task
def hold():
    release.wait(120)
    return 1

run = flow.run(background=True)
print(run.id, flow.store.owner.host, __import__("os").getpid(), flush=True)
sys.stdin.readline()
release.set()
print(run.wait(120).state, flush=True)
"""


def test_a_live_run_in_another_pid_namespace_is_not_taken_over(store_path, results_dir):
    """A real second PID namespace (``unshare``), same host name: its kernel's pid is
    not visible here, and its run must still be refused as live."""
    try:
        probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c",
                                "echo 9 > /proc/sys/kernel/ns_last_pid"],
                               capture_output=True, text=True, timeout=BOUND)
    except FileNotFoundError:
        pytest.skip("needs unshare (util-linux) to make a second PID namespace")
    if probe.returncode:
        pytest.skip(f"cannot make a PID namespace here (needs root): {probe.stderr.strip()}")
    gone = dead_pid()   # free here; the namespace's kernel gets this very pid
    shell = (f"echo {gone - 1} > /proc/sys/kernel/ns_last_pid && "
             f'"$0" -c "$1" "$2"')
    kernel = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", shell, sys.executable,
         KERNEL_IN_A_NAMESPACE, store_path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        line = kernel.stdout.readline().split()
        assert line, kernel.stderr.read()
        run_id, host, pid = line[0], " ".join(line[1:-1]), int(line[-1])
        assert pid == gone and not leases._alive(pid)
        flow = nbflow.Flow("ns", store=store_path)
        flow.task(lambda: 1, name="hold")
        with pytest.raises(LeaseHeldError, match=rf"^run {run_id} of flow 'ns' is still "
                                                 rf"running, owned by another engine"):
            flow.run(resume=run_id)
        assert flow.store.run(run_id)["state"] == "running"
        assert host != flow.store.owner.host and host.startswith(socket.gethostname() + " ")
        out, err = kernel.communicate("go\n", timeout=BOUND)
        assert out.split() == ["succeeded"], err
    finally:
        if kernel.poll() is None:
            kernel.kill()
            kernel.wait()
