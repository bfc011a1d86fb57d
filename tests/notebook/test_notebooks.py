"""Every notebook in ``notebooks/`` runs top to bottom under nbval, in a fresh kernel.

nbval runs in lax mode (outputs are not compared; the notebooks assert what
matters themselves, and any exception fails).  It runs in a subprocess so its
kernel writes to a store in the test's temporary folder, never to the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

# Flows each notebook must leave behind in the store, all succeeded: {flow: runs}.
EXPECTED_RUNS = {"01-quickstart.ipynb": {"quickstart": 2}}


def test_the_quickstart_notebook_is_there():
    # A glob that finds nothing would make the nbval test below vanish silently.
    assert (NOTEBOOKS / "01-quickstart.ipynb").is_file()


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = json.loads(path.read_text())
        stale = [i for i, c in enumerate(nb["cells"])
                 if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
        assert not stale, f"{path.name}: clear the outputs of cells {stale} before committing"


@pytest.mark.kernel
@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_runs_under_nbval(notebook: Path, tmp_path):
    store = tmp_path / "nbflow.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBFLOW_", "JPY_"))}
    env["NBFLOW_STORE"] = str(store)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
         "-p", "no:cacheprovider", "-q", str(notebook)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"nbval failed on {notebook.name}:\n{proc.stdout[-6000:]}\n" \
                                 f"{proc.stderr[-2000:]}"
    expected = EXPECTED_RUNS.get(notebook.name)
    if expected:
        from nbflow.store import Store
        s = Store(str(store))
        try:
            runs = s.runs()
        finally:
            s.close()
        found: dict[str, int] = {}
        for r in runs:
            assert r["state"] == "succeeded", f"{notebook.name}: run {r['id']} of {r['flow']}"
            found[r["flow"]] = found.get(r["flow"], 0) + 1
        assert found == expected
