"""Kernel fixtures: each test gets a fresh kernel of this virtualenv's Python, started
in the test's temporary directory, so the default store (``.nbflow/nbflow.db`` in the
kernel's working directory) never touches the repository."""

from __future__ import annotations

import pytest
from kernelsession import KernelSession, kernel_env


@pytest.fixture
def start_kernel(tmp_path):
    """``start_kernel(**env)`` -> a :class:`KernelSession` in ``tmp_path``; shut down after."""
    sessions: list[KernelSession] = []

    def start(**env: str) -> KernelSession:
        session = KernelSession(str(tmp_path), kernel_env(**env))
        sessions.append(session)
        return session

    yield start
    for s in sessions:
        s.close()


@pytest.fixture
def kernel(start_kernel) -> KernelSession:
    """A fresh kernel with ``%load_ext nbflow`` done."""
    k = start_kernel()
    k.ok("%load_ext nbflow")
    return k


@pytest.fixture(scope="module")
def shared_kernel(tmp_path_factory) -> KernelSession:
    """One kernel with ``%load_ext nbflow`` for a module's tests that change nothing."""
    k = KernelSession(str(tmp_path_factory.mktemp("kernel")), kernel_env())
    k.ok("%load_ext nbflow")
    yield k
    k.close()
