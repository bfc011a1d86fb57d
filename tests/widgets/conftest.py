"""Widget tests without a browser: every comm message a widget sends is recorded.

``comms`` swaps ipywidgets' comm factory for :class:`RecordingComm` (as
ipywidgets' own tests do), so a test sees exactly what would reach the front
end, with the time each message left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import comm
import pytest
from comm.base_comm import BaseComm


@dataclass
class Message:
    at: float        # time.monotonic() when sent
    comm_id: str
    kind: str        # comm_open, comm_msg, comm_close
    data: dict


class RecordingComm(BaseComm):
    """A comm that records instead of publishing on a kernel's IOPub."""

    log: list[Message]

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        self.log.append(Message(time.monotonic(), self.comm_id, msg_type, data or {}))


@dataclass
class Recorder:
    messages: list[Message] = field(default_factory=list)

    def updates(self, widget) -> list[dict]:
        """The state updates sent to ``widget``'s model, oldest first."""
        return [m.data["state"] for m in self.sent(widget)
                if m.kind == "comm_msg" and m.data.get("method") == "update"]

    def sent(self, widget) -> list[Message]:
        return [m for m in self.messages if m.comm_id == widget.model_id]


@pytest.fixture
def comms(monkeypatch):
    """Record every widget comm message of the test; close the test's widgets after it."""
    import ipywidgets

    recorder = Recorder()

    def create_comm(*args, **kwargs):
        c = RecordingComm.__new__(RecordingComm)
        c.log = recorder.messages
        RecordingComm.__init__(c, *args, **kwargs)
        return c

    monkeypatch.setattr(comm, "create_comm", create_comm)
    yield recorder
    ipywidgets.Widget.close_all()  # stops the dashboards' bridges
