"""What a bare ``import nbflow`` reaches, as the docs and error messages write it."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("expression", [
    "nbflow.policies.Aging(rate=2.0)",
    "nbflow.executors.DaskExecutor",
    "nbflow.dask.get",
    "nbflow.compare",
    "nbflow.Flow('f')",
])
def test_a_documented_name_works_after_a_bare_import(expression):
    # A fresh interpreter: in this one, another test has imported the submodules.
    done = subprocess.run([sys.executable, "-c", f"import nbflow; print(repr({expression}))"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_an_unknown_name_is_an_attribute_error():
    import nbflow
    with pytest.raises(AttributeError, match="module 'nbflow' has no attribute 'polices'"):
        nbflow.polices   # the misspelling a user makes
