"""Checks that need no kernel: every magic and option is documented; the default flow name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nbflow.core.options import OPTIONS
from nbflow.notebook.magics import SUBCOMMANDS, TASK_PARSER, FlowMagics, default_flow_name

DOC = (Path(__file__).resolve().parents[2] / "docs" / "notebook.md").read_text()


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_flow_subcommand_is_documented(name):
    command = SUBCOMMANDS[name]
    assert command.summary
    [row] = [line for line in DOC.splitlines() if line.startswith(f"| `%flow {name}")]
    [doc] = [line for line in FlowMagics.flow_magic.__doc__.splitlines()
             if line.strip().startswith(f"``%flow {name}")]
    for action in command.parser._actions:
        for word in action.option_strings or [action.metavar]:
            assert word in row and word in doc, word


def test_every_task_option_is_documented():
    flags = [f for action in TASK_PARSER._actions for f in action.option_strings]
    # The parser is made from the options table: every flag of a task option is there,
    # then the two of a mapped cell.
    assert flags == [o.flag for o in OPTIONS.values() if o.flag and o.scope != "run"] + [
        "--map", "--as"]
    for flag in flags:
        assert flag in TASK_PARSER.usage and flag in FlowMagics.task_magic.__doc__
        assert re.search(rf"`{flag}\b", DOC), flag


@pytest.mark.parametrize("session, name", [
    ("/home/me/work/Sales Report.ipynb", "Sales Report"),
    ("analysis.ipynb", "analysis"),
    ("", "notebook"),
    (None, "notebook"),
    ("caf\udce9.ipynb", "caf\\xe9"),          # a latin-1 file name, as os.fsdecode gives it
    ("n" * 300 + ".ipynb", "n" * 255),         # longer than a flow name may be
])
def test_default_flow_name(session, name):
    environ = {} if session is None else {"JPY_SESSION_NAME": session}
    assert default_flow_name(environ) == name
