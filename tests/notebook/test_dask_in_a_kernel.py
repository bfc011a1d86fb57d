"""The Dask executor driven from a real kernel: functions defined in the notebook run on
worker processes, retries get new keys, cancel stops the futures, a resource no worker
can give fails at submit; a ``%%task`` cell that declares what it reads and assigns runs
on the cluster (worker processes and an in-process one), one that does not is refused
with the flags to add."""

from __future__ import annotations

import re

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
    assert re.match(r"^keyed-[0-9a-f]{8}-keyed-2-\d+$", key)
    errors = kernel.value("[e[7]['error'] for e in run.store.events(run.id) "
                          "if e[5] == 'retrying' or (e[5] == 'failed')]")
    assert errors and re.match(r"^ConnectionError: keyed-[0-9a-f]{8}-keyed-1-", errors[0])

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

    _task_cells_on(kernel, "client")
    assert kernel.value("pid != __import__('os').getpid()")   # it ran in a worker process
    kernel.ok("client.close(); cluster.close()")


def _task_cells_on(kernel, client: str) -> None:
    """``%%task`` cells on the cluster of ``client``: one that does not declare its names
    is refused before anything is submitted, naming the flags to add; declared ones run
    there, and their assigns come back into the notebook."""
    kernel.ok(f"""
cells = nbflow.Flow("nb-cells", executor=DaskExecutor({client}))
base = 10
""")
    kernel.ok("%flow use cells")
    assert kernel.execute("%%task load\nx = base + 1\n").reply["status"] == "ok"
    submitted = f"sum(len(p) for p in {client}.processing().values())"
    kernel.ok(f"before = len({client}.who_has())")
    refused = kernel.execute("%flow run")
    assert refused.reply["status"] == "error"
    assert refused.reply["evalue"].startswith(
        "task 'load' is a %%task cell that does not declare what it reads and assigns")
    assert "Add --reads base --assigns x to its %%task line" in refused.reply["evalue"]
    assert kernel.value(f"len({client}.who_has()) == before and {submitted} == 0")
    assert kernel.value("cells.store.runs(flow='nb-cells')") == []   # nothing was recorded

    kernel.ok("%%task load --reads base --assigns x\n"
              "import distributed\nx = base + 1\nwhere = distributed.get_worker().address\n")
    kernel.ok("%%task double --reads x --assigns y,pid\nimport os\ny = 2 * x\npid = os.getpid()\n")
    kernel.ok("%flow run")
    assert kernel.value("get_ipython().magics_manager.registry['FlowMagics'].last_run.state") \
        == "succeeded"
    assert kernel.value("[x, y]") == [11, 22]
    assert kernel.value("'where' in globals()") is False   # only --assigns come back
    kernel.ok("done = get_ipython().magics_manager.registry['FlowMagics'].last_run\n"
              "done.store.flush()")
    workers = kernel.value("[e[7]['worker'] for e in done.store.events(done.id) "
                           "if e[5] == 'succeeded']")
    assert len(workers) == 2 and set(workers) <= set(kernel.value(
        f"list({client}.scheduler_info()['workers'])"))
    kernel.ok("%flow reset")


def test_task_cells_on_an_in_process_cluster(kernel):
    kernel.ok("""
import distributed, nbflow
from nbflow.executors import DaskExecutor
local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                 dashboard_address=":0")
inproc = distributed.Client(local, set_as_default=False)
""")
    _task_cells_on(kernel, "inproc")
    assert kernel.value("pid") == kernel.value("__import__('os').getpid()")
    kernel.ok("inproc.close(); local.close()")
