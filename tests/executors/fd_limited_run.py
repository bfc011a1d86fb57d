"""A run with 120 worker processes under a limit of 64 open files (test_processes.py).

Prints, as JSON, the error of the run and what is left of the pool: the child
processes and threads of this process (the store's writer is not the pool's).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading

from nbflow import Flow


def parent(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:   # it ended meanwhile
        return None


def command(pid: str) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()[:300]


def main(store: str) -> None:
    flow = Flow("many", store=store, executor="processes", workers=120)
    for k in range(150):
        flow.task(os.getpid, name=f"t{k}")
    # Opened before the limit: the store is not what is tested.
    assert flow.store.label
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    try:
        flow.run()
        error = None
    except Exception as exc:  # what the test looks at
        error = f"{type(exc).__name__}: {exc}"
    children = [command(p) for p in os.listdir("/proc")
                if p.isdigit() and parent(p) == os.getpid()]
    print(json.dumps({"error": error, "children": children,
                      "threads": sorted(t.name for t in threading.enumerate())}))


if __name__ == "__main__":
    main(sys.argv[1])
