"""Child processes nbflow starts (worker processes, the store's writer process)."""

from __future__ import annotations

import subprocess


def reap(proc: subprocess.Popen, timeout: float) -> None:
    """Wait up to ``timeout`` seconds for ``proc`` to exit after its input closed,
    then kill it: a child must never outlive the object that started it."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
