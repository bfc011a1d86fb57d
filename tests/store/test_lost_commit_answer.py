"""A COMMIT whose answer never comes back, on a real PostgreSQL server.

Between the store and the server sits a TCP proxy that, once armed, passes
the next COMMIT on to the server, lets the server commit it, and then closes
the client's connection instead of passing the answer back: the writer
thread cannot tell whether its transaction happened.  Before, it wrote the
same rows again (UniqueViolation) with every later batch, for good.
"""

from __future__ import annotations

import socket
import threading
import warnings

import pytest
from sqlalchemy.engine import make_url

from nbflow import Flow, StoreError

pytestmark = pytest.mark.postgres

# The simple-query message psycopg sends for connection.commit().
COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"


class LoseCommitAnswer:
    """A proxy to ``port``; :meth:`arm` makes it drop the answer of the next COMMIT."""

    def __init__(self, port: int):
        self._upstream = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._armed = threading.Event()
        self.dropped = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self) -> None:
        self.dropped.clear()
        self._armed.set()

    def close(self) -> None:
        for s in [self._listener, *self._sockets]:
            s.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._upstream))
            self._sockets += [client, server]
            swallow = threading.Event()
            threading.Thread(target=self._to_server, args=(client, server, swallow),
                             daemon=True).start()
            threading.Thread(target=self._to_client, args=(server, client, swallow),
                             daemon=True).start()

    def _to_server(self, client, server, swallow) -> None:
        while data := _recv(client):
            if COMMIT in data and self._armed.is_set():
                self._armed.clear()
                swallow.set()
            if not _send(server, data):
                return

    def _to_client(self, server, client, swallow) -> None:
        while data := _recv(server):
            if swallow.is_set():   # the server has committed and answers: cut
                self.dropped.set()   # before the client can see the cut
                for s in (client, server):
                    s.shutdown(socket.SHUT_RDWR)
                return
            if not _send(client, data):
                return


def _send(s: socket.socket, data: bytes) -> bool:
    try:
        s.sendall(data)
        return True
    except OSError:   # closed at the end of the test
        return False


def _recv(s: socket.socket) -> bytes:
    try:
        return s.recv(65536)
    except OSError:
        return b""


@pytest.fixture
def proxy(new_pg_url):
    u = make_url(new_pg_url)
    p = LoseCommitAnswer(u.port)
    p.url = u.set(port=p.port).render_as_string(hide_password=False)
    yield p
    p.close()


def test_a_commit_whose_answer_was_lost_is_not_written_again(proxy):
    flow = Flow("lost", store=proxy.url, executor="sync")
    flow.task(lambda: print("one"), name="one")
    run = flow.run()
    store = flow.store
    sink = store.sink(run.id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        proxy.arm()
        sink.logs([("one", 2, "second attempt\n", "")])
        # The writer learns only that the connection dropped during COMMIT.
        with pytest.raises(StoreError, match="server closed the connection"):
            store.flush()
        assert proxy.dropped.is_set()
        sink.logs([("one", 3, "third attempt\n", "")])
        store.flush()   # reads that the lost one was committed, and goes on
        again = flow.run()
    assert [str(w.message) for w in caught if "nbflow" in str(w.message)] == []
    assert [(r["attempt"], r["stdout"]) for r in store.logs(run.id)] == [
        (1, "one\n"), (2, "second attempt\n"), (3, "third attempt\n")]
    assert [r["state"] for r in store.tasks(again.id)] == ["succeeded"]
