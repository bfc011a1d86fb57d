"""Binder, as far as this machine allows (no Docker): what repo2docker would build,
then the same install replayed in a fresh virtualenv, and the quickstart opened in
JupyterLab from it."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
from conftest import JupyterLab
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> pathlib.Path:
    """The repository's tracked files, as mybinder.org clones them (no built outputs)."""
    dest = tmp_path_factory.mktemp("binder") / "repo"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        src = REPO / os.fsdecode(name)
        if src.is_file():
            (dest / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / os.fsdecode(name))
    return dest


def test_repo2docker_installs_the_requirements_then_runs_post_build(checkout):
    repo2docker = shutil.which("repo2docker", path=os.path.dirname(sys.executable))
    if repo2docker is None:
        pytest.fail("repo2docker is missing: pip install jupyter-repo2docker (test extras)")
    done = subprocess.run([repo2docker, "--no-build", "--user-id", "1000", "--user-name",
                           "jovyan", str(checkout)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    dockerfile = done.stdout
    assert "python=3.11" in done.stderr + dockerfile   # binder/runtime.txt
    steps = [line for line in dockerfile.splitlines() if line.startswith(("RUN", "COPY"))]
    copy_repo = next(i for i, s in enumerate(steps) if re.match(r"COPY .*src/ \$\{REPO_DIR\}/", s))
    install = next(i for i, s in enumerate(steps) if "-r \"binder/requirements.txt\"" in s)
    post = next(i for i, s in enumerate(steps) if s == "RUN ./binder/postBuild")
    # The requirements name the repository itself (".") so they install after it is copied,
    # and postBuild checks what they installed.
    assert copy_repo < install < post
    installs = [s for s in steps if "pip install" in s]
    assert installs == [steps[install]], installs   # nothing else: the root pyproject is ignored


@pytest.fixture(scope="module")
def binder_env(checkout, tmp_path_factory) -> pathlib.Path:
    """A fresh virtualenv with binder/requirements.txt installed and binder/postBuild run."""
    venv = tmp_path_factory.mktemp("binder-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run([*pip, "install", "-r", "binder/requirements.txt"], cwd=checkout,
                          env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    post = subprocess.run(["bash", "binder/postBuild"], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=300)
    assert post.returncode == 0, post.stdout + post.stderr
    assert "extensions are enabled" in post.stdout
    return venv


def test_post_build_fails_loudly_without_the_extensions(checkout, tmp_path):
    """In an environment without nbflow, postBuild stops the build and says why."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "jupyter").write_text("#!/bin/sh\necho 'JupyterLab v4.6.6'\n")
    (fake / "jupyter").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    post = subprocess.run(["bash", "binder/postBuild"], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=60)
    assert post.returncode == 1
    assert "the nbflow JupyterLab extension is not 'enabled OK'" in post.stderr


def test_the_quickstart_opens_in_jupyterlab_from_the_binder_install(binder_env, checkout,
                                                                    tmp_path, page):
    server = JupyterLab(tmp_path, python=str(binder_env / "bin" / "python"), root=checkout)
    try:
        page.goto(f"{server.url}/lab/tree/notebooks/01-quickstart.ipynb?token={server.token}"
                  "&reset")
        page.wait_for_function(
            """() => {
                const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const kernel = w && w.sessionContext && w.sessionContext.session
                    && w.sessionContext.session.kernel;
                return kernel && kernel.status === 'idle' && w.context.isReady;
            }""", timeout=120_000)
        plugins = page.evaluate("window.jupyterapp.listPlugins()"
                                ".filter(p => p.startsWith('nbflow'))")
        assert sorted(plugins) == ["nbflow:plugin", "nbflow:sidebar"]
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        badge = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .nbflow-cell-badge")
        expect(badge.first).to_be_visible(timeout=120_000)
        expect(page.locator('.nbflow-cell-badge[data-state="succeeded"]').first).to_be_visible(
            timeout=120_000)
        page.screenshot(path=str(tmp_path / "quickstart.png"))
    finally:
        server.stop()
