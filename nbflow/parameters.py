"""Notebook parameters: ``nbflow run NB -p NAME VALUE -f FILE``, injected as papermill does.

The notebook's cell tagged ``parameters`` holds the defaults.  The values given
on the command line go into a new code cell tagged ``injected-parameters``
right after it (one a notebook saved by papermill or nbflow already has is
replaced); a notebook with no such cell gets the new cell first.  The cell
assigns each name the Python literal of its value (``repr``), so a value is
data and never code.

The same values travel to the kernel as JSON in ``NBFLOW_PARAMS``, and every run
the notebook starts records them (``Flow.run`` puts them in its params under
``notebook_params``; ``nbflow status`` shows them).
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import keyword
import math
import os
import re
from typing import Any

ENV = "NBFLOW_PARAMS"
TAG, INJECTED = "parameters", "injected-parameters"
MAX_VALUES = 100_000
#: Linux refuses an environment string longer than 128 KiB (MAX_ARG_STRLEN).
MAX_ENV = 120 * 1024


def parse_value(text: str) -> Any:
    """A ``-p`` value as papermill reads it: ``True``, ``False``, ``None``, an int, a float,
    else the text itself."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def check_name(name: str) -> str:
    """``name`` if a notebook can assign it, else a ValueError that says why."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"parameter name {name!r} is not a Python variable name (letters, "
                         "digits and _, not starting with a digit, not a keyword)")
    return name


def read_file(path: str) -> dict[str, Any]:
    """The parameters in a YAML or JSON file (a mapping of names to values).

    YAML dates and times become ISO texts, so that every value is plain data
    that JSON records.

    Raises
    ------
    ValueError
        no such file, not YAML/JSON, not a mapping, or a name that is not a variable name.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ValueError(f"there is no parameters file at {path!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the parameters file {path!r}: {exc}") from None
    try:
        if path.endswith(".json"):
            data = json.loads(text)
        else:
            import yaml
            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - every parser error is the file's fault
        where = " ".join(str(exc).split())
        raise ValueError(f"the parameters file {path!r} is not valid "
                         f"{'JSON' if path.endswith('.json') else 'YAML'}: {where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"the parameters file {path!r} must map names to values "
                         f"(name: value lines), not hold a {type(data).__name__}")
    for name in data:
        check_name(name if isinstance(name, str) else repr(name))
    budget = [MAX_VALUES]
    try:
        return {name: _plain(value, budget, ()) for name, value in data.items()}
    except _TooBig as exc:
        raise ValueError(f"the parameters file {path!r} {exc}; pass a path as a parameter "
                         "and read the data in the notebook instead") from None


class _TooBig(Exception):
    pass


def _plain(value: Any, budget: list[int], inside: tuple[int, ...]) -> Any:
    """``value`` as JSON-like data; ``budget`` counts the values left, because YAML
    aliases can make a small file mean a vast (or endless) value."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig(f"holds more than {MAX_VALUES:,} values (YAML aliases?)")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        if id(value) in inside:
            raise _TooBig("holds a value that contains itself (a YAML alias)")
        inside = (*inside, id(value))
        if isinstance(value, dict):
            return {_key(k): _plain(v, budget, inside) for k, v in value.items()}
        return [_plain(v, budget, inside) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _key(key: Any) -> Any:
    return key if isinstance(key, (str, int, float, bool)) or key is None else str(key)


def literal(value: Any) -> str:
    """Python source that evaluates to ``value`` (JSON-like data)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return repr(value)


def defined_names(source: str) -> list[str]:
    """The names a parameters cell assigns at its top level, in order."""
    # Magics and shell lines are not Python; they assign nothing anyway.
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return list(dict.fromkeys(re.findall(r"^([A-Za-z_]\w*)\s*(?::[^=\n]*)?=(?!=)", code,
                                             re.M)))
    names: list[str] = []
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign))
                   else [])
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name) and sub.id not in names:
                    names.append(sub.id)
    return names


def gather(files: list[str], pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The parameters of ``-f FILE`` options, in order, then of ``-p NAME VALUE`` ones: a
    later value of a name wins.

    Raises
    ------
    ValueError
        a file that cannot be used, or a name that is not a variable name.
    """
    params: dict[str, Any] = {}
    for path in files:
        params.update(read_file(path))
    for name, text in pairs:
        params[check_name(name)] = parse_value(text)
    size = len(encode(params))
    if size > MAX_ENV:
        raise ValueError(f"the parameters take {size // 1024} KiB as JSON, more than the "
                         f"{MAX_ENV // 1024} KiB an environment variable ({ENV}) can carry "
                         "to the kernel; pass a path as a parameter and read the data in the "
                         "notebook instead")
    return params


def encode(params: dict[str, Any]) -> str:
    """The JSON text of ``NBFLOW_PARAMS`` (ASCII: a lone surrogate stays an escape)."""
    return json.dumps(params)


def inject(nb, params: dict[str, Any]) -> list[str]:
    """Put the ``injected-parameters`` cell into the notebook ``nb`` (nbformat 4, changed
    in place); returns the warnings to show."""
    import nbformat
    cells = [c for c in nb.cells if INJECTED not in c.get("metadata", {}).get("tags", ())]
    tagged = next((i for i, c in enumerate(cells)
                   if c.cell_type == "code" and TAG in c.get("metadata", {}).get("tags", ())),
                  None)
    source = "# Parameters injected by nbflow run\n" + "".join(
        f"{name} = {literal(value)}\n" for name, value in params.items())
    cell = nbformat.v4.new_code_cell(source.rstrip("\n"), metadata={"tags": [INJECTED]})
    warnings = []
    if tagged is None:
        cells.insert(0, cell)
        warnings.append(f"the notebook has no code cell tagged {TAG!r}, so the parameters "
                        f"({', '.join(params)}) were put in a new first cell. Tag the cell "
                        f"that sets their defaults {TAG!r} (JupyterLab: the property "
                        "inspector, Common Tools > Cell Tags) to have them set after it.")
    else:
        cells.insert(tagged + 1, cell)
        known = defined_names(cells[tagged].source)
        unknown = [name for name in params if name not in known]
        if unknown:
            defines = ", ".join(known) if known else "nothing"
            warnings.append(
                f"parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                f"{'are' if len(unknown) > 1 else 'is'} not defined in the notebook's "
                f"{TAG!r} cell, which defines: {defines}; set anyway (a typo?).")
    nb.cells = cells
    return warnings


def notebook_params() -> dict[str, Any] | None:
    """The parameters ``nbflow run`` gave the notebook this kernel runs, or None.

    Raises
    ------
    ValueError
        ``NBFLOW_PARAMS`` is set to something that is not a JSON object.
    """
    text = os.environ.get(ENV)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ValueError(f"{ENV} must be a JSON object of the notebook's parameters (nbflow "
                         f"run -p sets it), got {text[:80]!r}. Fix or unset the environment "
                         "variable.")
    return value
