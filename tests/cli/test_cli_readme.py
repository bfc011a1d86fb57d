"""The README is true: its two commands exist, its snippets run, its CLI lines parse."""

from __future__ import annotations

import ast
import os
import re
import shlex
from pathlib import Path

import pytest

from nbflow.cli import parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def blocks(section: str, lang: str) -> list[str]:
    """The ``lang`` code blocks of the README section whose heading is ``section``."""
    match = re.search(rf"^#+ {re.escape(section)}\n(.*?)(?=^#+ |\Z)", README, re.M | re.S)
    assert match, f"the README has no section {section!r}"
    return re.findall(rf"^```{lang}\n(.*?)^```", match.group(1), re.M | re.S)


def test_the_readme_opens_with_the_two_commands():
    opening = re.match(r"# nbflow\n\n([^\n`#]+(?:\n[^\n`#]+)*)\n\n```sh\n(.*?)\n```\n", README,
                       re.S)
    assert opening, "the README must open with a title, a pitch, then the two commands"
    pitch, lines = opening.group(1), opening.group(2).splitlines()
    assert pitch.count(". ") == 0 and pitch.endswith("."), "the pitch is one sentence"
    commands = [line.split("#")[0].strip() for line in lines]
    assert commands == ["./scripts/run-quickstart.sh", "./scripts/test.sh"]
    for command in commands:
        script = ROOT / command
        assert os.access(script, os.X_OK), f"{command} is not executable"
        assert "scripts/setup.sh" in script.read_text()


def test_ci_runs_the_readme_test_command():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    assert "./scripts/test.sh" in ci.read_text()


def test_the_python_api_snippet_runs_and_its_comments_are_true(tmp_path, monkeypatch):
    [code] = blocks("The Python API", "python")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    checked = 0
    for line in code.splitlines():
        expr, _, comment = line.partition("#")
        try:
            expected = ast.literal_eval(comment.strip())
        except (ValueError, SyntaxError):
            continue
        assert eval(expr, namespace) == expected, line
        checked += 1
    assert checked == 2
    assert namespace["run"].state == "succeeded"
    assert (tmp_path / ".nbflow" / "nbflow.db").exists()


def test_every_command_line_in_the_readme_parses():
    [usage] = blocks("From the command line", "sh")
    subcommands = parser()._subparsers._group_actions[0].choices
    lines = usage.splitlines()
    assert [line.split()[1] for line in lines] == ["run", "runs", "status", "prune", "du"]
    for line in lines:
        words = shlex.split(line.replace("[", " ").replace("]", " "))
        sub = subcommands[words[1]]
        options = {o for a in sub._actions for o in a.option_strings}
        assert {w for w in words if w.startswith("--")} <= options, line


@pytest.mark.kernel
def test_the_magics_snippet_runs_headless(tmp_path, nbflow_cli, notebook):
    cells = blocks("In a notebook: `%%task` and `%flow`", "python")
    nb = notebook(tmp_path / "magics.ipynb", *cells,
                  "assert orders == [orders_raw[0], orders_raw[2]], orders")
    result = nbflow_cli("run", str(nb), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # The magics' flow is named after the notebook, as in JupyterLab.
    done = re.search(r"^magics \S+ \[#+\] 2/2 succeeded: 2 succeeded$", result.stdout, re.M)
    assert done, result.stdout
