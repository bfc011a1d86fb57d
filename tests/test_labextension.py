"""The front-end package agrees with Python: states, versions, and its own unit tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nbflow
from nbflow.core.states import vocabulary

PACKAGE = Path(__file__).resolve().parent.parent / "labextension"


def test_the_front_end_reads_the_states_of_core_states():
    shipped = json.loads((PACKAGE / "src" / "states.json").read_text())
    assert shipped == vocabulary(), (
        "labextension/src/states.json is stale: run "
        "python -m nbflow.core.states > labextension/src/states.json")


def test_the_package_and_python_versions_agree():
    assert json.loads((PACKAGE / "package.json").read_text())["version"] == nbflow.__version__


def test_the_python_package_finds_its_extensions():
    [lab] = nbflow._jupyter_labextension_paths()
    assert lab == {"src": "labextension", "dest": json.loads(
        (PACKAGE / "package.json").read_text())["name"]}
    [server] = nbflow._jupyter_server_extension_points()
    assert server["module"] == "nbflow.server.app" and server["app"].name == "nbflow"
    config = json.loads((PACKAGE.parent / "jupyter-config" / "jupyter_server_config.d"
                         / "nbflow.json").read_text())
    assert config == {"ServerApp": {"jpserver_extensions": {"nbflow": True}}}


@pytest.mark.slow
def test_the_client_side_state_code(tmp_path):
    """``jlpm test``: tsc type-checks the extension, node's runner runs test/*.test.mjs."""
    jlpm = shutil.which("jlpm", path=os.path.dirname(sys.executable))
    if not (PACKAGE / "node_modules").is_dir() or jlpm is None:
        pytest.fail("labextension/node_modules or jlpm is missing: run scripts/setup.sh")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    done = subprocess.run([jlpm, "test"], cwd=PACKAGE, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "# fail 0" in done.stdout
