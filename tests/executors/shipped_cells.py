"""What a ``%%task`` cell sent to another interpreter does with reads it cannot send:
the same on every executor that ships cells (Dask, worker processes)."""

from __future__ import annotations

import pytest


def check_reads_that_cannot_go(flow, ns: dict, where: str, **run_options) -> None:
    """A read that does not pickle, and one the notebook lacks, each fail their own
    attempt, naming the variable; nothing is written back.  ``ns`` holds ``lock``."""
    flow.cell_task("held", "z = lock.locked()\n", ns, reads=["lock"], assigns=["z"])
    flow.cell_task("lost", "w = nowhere\n", ns, reads=["nowhere"], assigns=["w"])
    run = flow.run(**run_options)
    assert run.task_state("held") == "failed" and "z" not in ns
    with pytest.raises(TypeError) as info:
        run.result("held")
    assert f"task 'held' (attempt 1) cannot be sent to {where}: the variable 'lock' " \
        "does not pickle" in "".join(info.value.__notes__)
    with pytest.raises(NameError, match=r"^task 'lost' reads 'nowhere' \(--reads\), but the "
                                        r"notebook has no such variable yet"):
        run.result("lost")
