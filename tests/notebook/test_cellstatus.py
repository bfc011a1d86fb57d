"""The cell-status channel and the cell ids recorded with tasks, in a real ipykernel."""

from __future__ import annotations

import queue
import time
import uuid

import pytest
from kernelsession import TIMEOUT, KernelSession, new_cell_id

from nbflow.notebook.cellstatus import PROTOCOL, TARGET, first_line

pytestmark = pytest.mark.kernel


class FrontEnd:
    """A comm to the channel opened from the client side, as the lab extension does."""

    def __init__(self, kernel: KernelSession, protocol=PROTOCOL):
        self.kernel = kernel
        self.comm_id = uuid.uuid4().hex
        self.seen = 0
        msg = kernel.kc.session.msg("comm_open", {"comm_id": self.comm_id, "target_name": TARGET,
                                                  "data": {"protocol": protocol}})
        kernel.kc.shell_channel.send(msg)

    def messages(self) -> list[dict]:
        return [m["content"]["data"] for m in self.kernel.iopub
                if m["header"]["msg_type"] in ("comm_msg", "comm_close")
                and m["content"].get("comm_id") == self.comm_id]

    def next(self, timeout: float = TIMEOUT) -> dict:
        """The next message on this comm (drains IOPub while waiting)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.messages()
            if len(got) > self.seen:
                self.seen += 1
                return got[self.seen - 1]
            try:
                self.kernel.iopub.append(self.kernel.kc.get_iopub_msg(
                    timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                pytest.fail(f"no message on the {TARGET} comm for {timeout}s")

    def until_done(self, run_id: str) -> list[dict]:
        out = []
        while True:
            m = self.next()
            out.append(m)
            if m["type"] == "diff" and m["run"] == run_id and not m["running"]:
                return out


def states_by_task(run: dict, messages: list[dict]) -> dict[str, list[str]]:
    """Every state each task showed, in order, from a ``run`` message and its diffs."""
    seen = {name: [] for name in run["names"]}

    def note(rows):
        for i, state, *_ in rows:
            name = run["names"][i]
            if not seen[name] or seen[name][-1] != state:
                seen[name].append(state)

    note(run["tasks"])
    for m in messages:
        if m["type"] == "diff" and m["run"] == run["id"]:
            note(m["tasks"])
    return seen


def test_tasks_record_the_cell_that_declared_them(start_kernel, tmp_path):
    kernel = start_kernel(JPY_SESSION_NAME=str(tmp_path / "etl.ipynb"))
    kernel.ok("%load_ext nbflow")
    load, clean, api = new_cell_id(), new_cell_id(), new_cell_id()
    kernel.ok("%%task load\nrows = [1, 2]", load)
    kernel.ok("%%task clean\ncleaned = rows", clean)
    kernel.ok("from nbflow.notebook.magics import current_flow\nflow = current_flow()\n"
              "@flow.task\ndef total(cleaned):\n    return sum(cleaned)\n"
              "@flow.task\ndef count(cleaned):\n    return len(cleaned)", api)
    kernel.ok("@flow.task\ndef unknown():\n    return 1")   # a client that sends no cell id
    kernel.ok("%flow run")
    kernel.ok("r = current_flow().store.run(current_flow().store.latest_run_id())\n"
              "t = current_flow().store.tasks(r['id'])")
    assert kernel.value("r['notebook']") == str(tmp_path / "etl.ipynb")
    assert kernel.value("[(x['name'], x['cell_id']) for x in t]") == [
        ("load", load), ("clean", clean), ("total", api), ("count", api), ("unknown", None)]
    # Declaring the task again from another cell moves it there.
    other = new_cell_id()
    kernel.ok("@flow.task\ndef unknown():\n    return 2", other)
    assert kernel.value("flow._cells['unknown']") == other


def test_a_front_end_sees_each_cell_go_through_its_states(kernel: KernelSession):
    ok, bad, flaky = new_cell_id(), new_cell_id(), new_cell_id()
    kernel.ok("%%task ok\na = 1", ok)
    kernel.ok("%%task bad\nraise ValueError('no good\\nsecond line')", bad)
    # A cell task's globals are its own per attempt: the first attempt leaves a file.
    kernel.ok("%%task flaky --retries 2 --retry-delay 0\n"
              "import pathlib, tempfile\n"
              "tried = pathlib.Path(tempfile.gettempdir(), f'tried-{id(pathlib)}')\n"
              "if not tried.exists():\n    tried.touch()\n    raise RuntimeError('not yet')\n"
              "b = 2", flaky)
    front = FrontEnd(kernel)
    state = front.next()
    assert state["type"] == "state" and state["protocol"] == PROTOCOL
    assert sorted(c for _f, _t, c in state["declared"]) == sorted([ok, bad, flaky])
    assert state["runs"] == []
    kernel.ok("%flow run")
    messages = [front.next()]
    assert messages[0]["type"] == "run"
    run = messages[0]
    assert run["cells"] == [ok, bad, flaky] and run["attempts"] == [1, 1, 3]
    messages += front.until_done(run["id"])
    seen = states_by_task(run, messages)
    assert seen["ok"][-1] == "succeeded" and seen["bad"][-1] == "failed"
    final = messages[-1]
    # A retry between two throttled diffs may not show: the attempt number does.
    assert seen["flaky"][-1] == "succeeded" and final["tasks"][2][2] == 2
    assert final["outcome"] == "failed"
    assert [i for i, _ in final["errors"]] == [1]
    assert final["errors"][0][1].startswith("ValueError: no good")
    assert "second line" not in final["errors"][0][1]
    # Throttled: a handful of messages, not one per event.
    assert len([m for m in messages if m["type"] == "diff"]) < 12


def test_a_front_end_that_connects_mid_run_gets_a_snapshot_first(kernel: KernelSession,
                                                                  tmp_path):
    gate = tmp_path / "go"
    first, second = new_cell_id(), new_cell_id()
    kernel.ok("%%task first\nx = 1", first)
    kernel.ok(f"%%task second\nimport pathlib, time\n"
              f"while not pathlib.Path({str(gate)!r}).exists():\n    time.sleep(0.02)\ny = x",
              second)
    kernel.ok("from nbflow.notebook.magics import current_flow\n"
              "run = current_flow().run(background=True)")
    kernel.ok("import time\nwhile run.task_state('second') != 'running':\n    time.sleep(0.02)")
    front = FrontEnd(kernel)
    snapshot = front.next()
    assert snapshot["type"] == "state"
    [run] = snapshot["runs"]
    assert run["running"] is True
    assert [row[1] for row in run["tasks"]] == ["succeeded", "running"]
    assert run["cells"] == [first, second]
    gate.touch()
    rest = front.until_done(run["id"])
    assert rest[-1]["outcome"] == "succeeded"
    assert [row[1] for row in rest[-1]["tasks"]] == ["succeeded", "succeeded"]


def test_another_protocol_is_refused_with_the_fix(kernel: KernelSession):
    front = FrontEnd(kernel, protocol=PROTOCOL + 1)
    reply = front.next()
    assert reply["type"] == "error"
    assert f"speaks protocol {PROTOCOL + 1}" in reply["message"]
    assert "install the same nbflow version" in reply["message"]


def test_unknown_messages_are_logged_not_raised(kernel: KernelSession):
    front = FrontEnd(kernel)
    assert front.next()["type"] == "state"
    msg = kernel.kc.session.msg("comm_msg", {"comm_id": front.comm_id,
                                             "data": {"type": "launch-missiles"}})
    kernel.kc.shell_channel.send(msg)
    kernel.kc.shell_channel.send(kernel.kc.session.msg(
        "comm_msg", {"comm_id": front.comm_id, "data": {"type": "refresh"}}))
    assert front.next()["type"] == "state"   # still answering
    assert kernel.value("1 + 1") == 2


@pytest.mark.parametrize("text, line", [
    ("ValueError: boom\n  more", "ValueError: boom"),
    ("\n\n  KeyError: 'x'", "KeyError: 'x'"),
    ("", ""),
    ("E" * 1000, "E" * 299 + "\u2026"),
])
def test_first_line(text, line):
    assert first_line(text) == line


def test_a_malformed_open_gets_the_protocol_error(kernel: KernelSession):
    """Data that is not a dict is a front end of another kind: it is told what to do."""
    front = FrontEnd(kernel, protocol=None)
    front.kernel.kc.shell_channel.send(kernel.kc.session.msg(   # a second one, data a list
        "comm_open", {"comm_id": "x" + front.comm_id, "target_name": TARGET, "data": [1]}))
    assert front.next()["type"] == "error"
    other = [m["content"]["data"] for m in kernel.iopub
             if m["header"]["msg_type"] == "comm_msg"
             and m["content"].get("comm_id") == "x" + front.comm_id]
    deadline = time.monotonic() + TIMEOUT
    while not other and time.monotonic() < deadline:
        kernel.iopub.append(kernel.kc.get_iopub_msg(timeout=TIMEOUT))
        other = [m["content"]["data"] for m in kernel.iopub
                 if m["header"]["msg_type"] == "comm_msg"
                 and m["content"].get("comm_id") == "x" + front.comm_id]
    assert other and other[0]["type"] == "error"
    assert "speaks protocol None" in other[0]["message"]
