"""A run with 120 worker processes under a limit of 64 open files (test_processes.py).

Prints, as JSON, the error of the run and what is left of the pool: the child
processes and threads of this process (the store's writer is not the pool's).
"""

import json, os, resource, sys, threading
from nbflow import Flow, NbflowError
flow = Flow("many", store=sys.argv[1], executor="processes", workers=120)
for k in range(150):
    flow.task(os.getpid, name=f"t{k}")
flow.build()
flow.store  # opened before the limit: the store is not what is being tested
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
threads = threading.active_count()
try:
    flow.run()
    error = None
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
def parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None
def cmd(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()[:300]
children = [cmd(p) for p in os.listdir("/proc") if p.isdigit() and parent(p) == os.getpid()]
print(json.dumps({"error": error, "children": children,
                  "threads": sorted(t.name for t in threading.enumerate())}))
