"""Through ``Flow`` (its wrappers: result saving, a ``%%task`` cell's execution), a
failed task's traceback still starts in the user's code."""

from __future__ import annotations

import traceback

import pytest

from nbflow import Flow


def user_code(n):
    raise ValueError(f"cannot parse {n}")


@pytest.mark.parametrize("kind", ["function", "cell"])
def test_the_traceback_starts_in_user_code_through_flow(kind, store_path):
    flow = Flow("f", store=store_path, executor="sync")
    if kind == "function":
        flow.task(lambda: user_code(7), name="parse")
    else:
        flow.cell_task("parse", "from test_tracebacks import user_code\nuser_code(7)",
                       {"__name__": "cell"})
    run = flow.run()
    frames = traceback.extract_tb(run._engine.errors[0].__traceback__)
    assert frames[-1].name == "user_code"
    assert [f.filename for f in frames if "/nbflow/" in f.filename] == []
