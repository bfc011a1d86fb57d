"""Driving a real ipykernel over ZeroMQ and recording every IOPub message it sends."""

from __future__ import annotations

import ast
import os
import queue
import sys
import uuid
from dataclasses import dataclass, field

import pytest
from jupyter_client.manager import KernelManager

TIMEOUT = 60  # seconds for one cell; generous for a shared 2-core machine


@dataclass
class Cell:
    """What one executed cell produced."""

    msg_id: str
    reply: dict
    outputs: list[tuple[str, dict]] = field(default_factory=list)  # (msg_type, content)

    def stream(self, name: str) -> str:
        return "".join(c["text"] for t, c in self.outputs if t == "stream" and c["name"] == name)

    @property
    def stdout(self) -> str:
        return self.stream("stdout")

    @property
    def stderr(self) -> str:
        return self.stream("stderr")

    def data(self, mimetype: str) -> list[str]:
        """Every ``mimetype`` payload of the cell's display and result outputs."""
        return [c["data"][mimetype] for t, c in self.outputs
                if t in ("display_data", "execute_result") and mimetype in c["data"]]

    @property
    def errors(self) -> list[dict]:
        return [c for t, c in self.outputs if t == "error"]


class KernelSession:
    """One running kernel plus a log of all IOPub messages, whatever cell they belong to."""

    def __init__(self, cwd: str, env: dict[str, str]):
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=cwd, env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=TIMEOUT)
        self.iopub: list[dict] = []   # every message, in arrival order

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def execute(self, code: str, cell_id: str | None = None, *,
                user_expressions: dict[str, str] | None = None) -> Cell:
        """Run ``code`` as a notebook cell (with ``cellId`` metadata, as JupyterLab sends)."""
        content = {"code": code, "silent": False, "store_history": True,
                   "user_expressions": user_expressions or {}, "allow_stdin": False,
                   "stop_on_error": True}
        msg = self.kc.session.msg("execute_request", content,
                                  metadata={"cellId": cell_id} if cell_id else {})
        self.kc.shell_channel.send(msg)
        msg_id = msg["header"]["msg_id"]
        cell = Cell(msg_id, reply={})
        while True:
            m = self._next(self.kc.get_iopub_msg, code)
            self.iopub.append(m)
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            kind = m["header"]["msg_type"]
            if kind == "status" and m["content"]["execution_state"] == "idle":
                break
            if kind in ("stream", "display_data", "execute_result", "error"):
                cell.outputs.append((kind, m["content"]))
        while True:
            reply = self._next(self.kc.get_shell_msg, code)
            if reply["parent_header"].get("msg_id") == msg_id:
                cell.reply = reply["content"]
                return cell

    @staticmethod
    def _next(get, code: str) -> dict:
        try:
            return get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"the kernel sent nothing for {TIMEOUT}s while running:\n{code}")

    def ok(self, code: str, cell_id: str | None = None) -> Cell:
        """Run ``code`` and fail the test if the cell raised."""
        cell = self.execute(code, cell_id)
        if cell.reply["status"] != "ok":
            pytest.fail(f"cell failed: {cell.reply.get('ename')}: {cell.reply.get('evalue')}\n"
                        f"{code}\n" + "\n".join(cell.reply.get("traceback", [])))
        return cell

    def value(self, expression: str):
        """The value of a Python-literal ``expression`` evaluated in the kernel."""
        cell = self.execute("", user_expressions={"v": f"repr({expression})"})
        result = cell.reply["user_expressions"]["v"]
        if result["status"] != "ok":
            pytest.fail(f"{expression}: {result['ename']}: {result['evalue']}")
        return ast.literal_eval(ast.literal_eval(result["data"]["text/plain"]))

    def streams(self) -> str:
        """Every stream text the kernel sent so far, to any cell."""
        return "".join(m["content"]["text"] for m in self.iopub
                       if m["header"]["msg_type"] == "stream")


def kernel_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NBFLOW_STORE", "NBFLOW_WORKERS", "JPY_SESSION_NAME")}
    # The kernel must be this virtualenv's Python (jupyter_client maps the
    # kernelspec's "python" to sys.executable; make PATH agree anyway).
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def new_cell_id() -> str:
    return uuid.uuid4().hex[:8]
