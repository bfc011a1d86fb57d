"""The Dask executor driven from a real kernel: functions defined in the notebook run on
worker processes, retries get new keys, cancel stops the futures, a resource no worker
can give fails at submit, and a ``%%task`` cell is refused with the fix."""

from __future__ import annotations

import pytest

pytest.importorskip("distributed", reason="the Dask executor needs distributed "
                    "(pip install 'nbflow[dask]')")

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

SETUP = """
import time, types
import distributed, nbflow
from nbflow.executors import DaskExecutor
cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=":0",
                                   resources={"GPU": 1})
client = distributed.Client(cluster)
"""


def test_dask_from_a_notebook(kernel):
    kernel.ok(SETUP)
    kernel.ok("""
flow = nbflow.Flow("nb-dask")

@flow.task(retries=1)
def keyed():
    key = distributed.get_worker().get_current_task()
    if nbflow.current_task().attempt == 1:
        raise ConnectionError(key)
    return key

run = flow.run(executor=DaskExecutor(client))
first = run.status().set_index("task").loc["keyed", "attempt"]
second_key = run.result("keyed")
""")
    assert kernel.value("int(first)") == 2
    key = kernel.value("second_key")
    assert key.startswith("keyed-2-")
    errors = kernel.value("[e[7]['error'] for e in run.store.events(run.id) "
                          "if e[5] == 'retrying' or (e[5] == 'failed')]")
    assert errors and errors[0].startswith("ConnectionError: keyed-1-")   # its own key

    kernel.ok("""
waits = nbflow.Flow("nb-cancel")

@waits.task
def forever():
    while True:
        nbflow.check_cancelled()
        time.sleep(0.01)

bg = waits.run(executor=DaskExecutor(client), background=True)
deadline = time.monotonic() + 60
while bg.task_state("forever") != "running" and time.monotonic() < deadline:
    time.sleep(0.05)
begin = time.monotonic()
bg.cancel("stop from the notebook")
bg.wait(60)
took = time.monotonic() - begin
""")
    assert kernel.value("bg.state") == "cancelled"
    assert kernel.value("took < 10")

    kernel.ok("""
ex = DaskExecutor(client)
spec = types.SimpleNamespace(name="greedy", kind="function", resources={"GPU": 4})
got = []
ex.prepare([spec])
ex.start(got.append)
ex.submit((0, 1), lambda: None, {}, nbflow.core.worker.TaskContext("greedy", 1))
ex.shutdown()
""")
    assert kernel.value("str(got[0][1].error)").startswith("this task needs GPU=4, more than "
                                                           "any Dask worker advertises (GPU=1)")

    cell = kernel.execute("%%task load\nx = 1\n")
    assert cell.reply["status"] == "ok"
    refused = kernel.execute("get_ipython().magics_manager.registry['FlowMagics'].flow"
                             ".run(executor=DaskExecutor(client))")
    assert refused.reply["status"] == "error"
    assert "task 'load' is a %%task cell" in refused.reply["evalue"]
    kernel.ok("client.close(); cluster.close()")
