"""The writer process: a SQLite file's transactions, off the kernel's GIL.

Writing a run costs about as much CPU as running its no-op tasks, most of it
in SQLite (binding every row's values, the B-tree inserts) and encoding event
details.  In the writer thread all of it held the GIL the engine and the
workers need (a 10,000-task run spent half its time there).  For a SQLite
file it runs in this child process instead, on another core: the kernel's
writer thread folds each group into its statements (``batches.py``) and
sends them; the child runs them in one transaction and answers.  The child
keeps no state but its connection, so one that died is simply replaced.
Database servers keep the thread: their drivers wait on the network with the
GIL released.

The protocol is one request, one answer, over the child's stdin and stdout:
each message is a header (length, encoding) and a marshal or pickle body.
The parent sends ``("execute", transaction)``, answered by the rows the
database refused (``transactions.Transactions.execute``), or ``("query", (sql,
params))``, answered by its rows; or the exception that stopped it.  End of
input (the store closed, or the kernel died) ends the child.  The child
ignores SIGINT, so Ctrl-C in a terminal interrupts the run, not its store.

For fault tests, ``NBFLOW_WRITER_EXIT_AFTER_COMMIT=N`` makes each child exit
right after its Nth commit, before it answers: the worst moment to die.
"""

from __future__ import annotations

import marshal
import os
import pickle
import signal
import sqlite3
import struct
import subprocess
import sys
from typing import IO, Any

from ..children import reap
from .batches import encode
from .transactions import Refused, Transaction, Transactions

_HEAD = struct.Struct("!QB")   # length of the body, how it is encoded
_MARSHAL, _PICKLE = 0, 1
# The child imports this module from the same nbflow as its parent, whatever
# the working directory holds.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
         "from nbflow.store.writerproc import main; main(sys.argv[2], float(sys.argv[3]))")


def send(stream: IO[bytes], obj: Any) -> None:
    # Items are tuples, lists and dicts of strings and numbers, which marshal
    # (same interpreter on both ends) reads back in half pickle's time: the
    # child's reading is on the critical path of a big run.  Anything else
    # (an exception in an answer, a str subclass in a name) goes by pickle.
    try:
        data, how = marshal.dumps(obj), _MARSHAL
    except ValueError:
        data, how = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL), _PICKLE
    stream.write(_HEAD.pack(len(data), how))
    stream.write(data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    head = stream.read(_HEAD.size)
    if len(head) < _HEAD.size:
        raise EOFError
    size, how = _HEAD.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return marshal.loads(data) if how == _MARSHAL else pickle.loads(data)


class WriterProcessEnded(OSError):
    """The writer process died during a request (killed, or out of memory)."""


class WriterProcess:
    """Runs transactions (``transactions.py``) on the SQLite file ``path`` in a child
    process (started now, and again after it died)."""

    def __init__(self, path: str, busy_timeout: float):
        self._argv = [sys.executable, "-c", _BOOT, _ROOT, path, repr(busy_timeout)]
        self._proc: subprocess.Popen | None = None
        self._start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> None:
        self._proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def execute(self, statements: Transaction) -> Refused:
        """Run ``statements`` in one transaction in the child; raise what stopped it."""
        return self._ask("execute", statements)

    def query(self, sql: str, params: tuple) -> list[tuple]:
        """The rows of one read, made by the child."""
        return self._ask("query", (sql, params))

    def _ask(self, op: str, arg: Any) -> Any:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        proc = self._proc
        try:
            send(proc.stdin, (op, arg))
            answer = receive(proc.stdout)
        except (OSError, EOFError):
            self.close()
            raise WriterProcessEnded(f"the store's writer process ended (exit code "
                                     f"{proc.poll()}); the next write starts a new one") from None
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def kill(self) -> None:
        """End the child at once, whatever it is doing (it is stalled)."""
        if self._proc is not None:
            self._proc.kill()

    def close(self, timeout: float = 10.0) -> None:
        """End the child: it finishes the write it is in, then exits."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:  # a broken pipe to a child that already died
                pass
        reap(proc, timeout)


def main(path: str, busy_timeout: float) -> None:
    """The child: run each transaction it is sent until the parent closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The protocol owns the real stdout; a stray print goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    # This process is the store's own: adapting every dict (the event details)
    # touches no one else.  None has no adapter by default, so binding each NULL
    # went through the whole adaptation protocol and its two AttributeErrors
    # (7% of this process's instructions); an empty dict's C ``get`` maps it to
    # None at once, which binds as NULL.
    sqlite3.register_adapter(dict, encode)
    sqlite3.register_adapter(type(None), {}.get)
    transactions = Transactions(lambda: _connect(path, busy_timeout), "BEGIN")
    exit_after = int(os.environ.get("NBFLOW_WRITER_EXIT_AFTER_COMMIT") or 0)
    commits = 0
    try:
        while True:
            try:
                op, arg = receive(inp)
            except EOFError:
                return
            try:
                if op == "execute":
                    answer = transactions.execute(arg)
                    commits += 1
                    if commits == exit_after:
                        os._exit(3)
                else:
                    answer = transactions.query(*arg)
            except Exception as exc:  # noqa: BLE001 - it is the answer
                answer = _portable(exc)
            send(out, answer)
    finally:
        transactions.close()


def _connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=busy_timeout)
    # The store is in WAL mode already (open.py); synchronous=NORMAL is per
    # connection.  The writer only adds rows under runs that exist (create_run
    # wrote them first): checking each event's foreign key against runs cost
    # about a quarter of the insert time, for nothing.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling, else a RuntimeError that says what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - an exception that does not pickle travels as text
        return RuntimeError(f"{type(exc).__name__}: {exc}")
