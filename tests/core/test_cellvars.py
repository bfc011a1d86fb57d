"""What a ``%%task`` cell reads from outside and what it assigns.

Cases are data: cell source in, ``(reads, assigns)`` out.  When in doubt the
analysis reports a read (a spurious dependency is visible and harmless; a
missed one runs a cell before the data it needs exists).
"""

from __future__ import annotations

import pytest

from nbflow.core.cellvars import analyse

CASES = [
    ("x = a + 1", {"a"}, ["x"]),
    ("df = load(path)\ndf2 = df.dropna()", {"load", "path"}, ["df", "df2"]),
    # builtins are not reads
    ("n = len(items)\nprint(n)", {"items"}, ["n"]),
    # a name used before the cell assigns it comes from outside
    ("print(x)\nx = 1", {"x"}, ["x"]),
    ("total += 1", {"total"}, ["total"]),
    ("y: int = 3", set(), ["y"]),
    ("a.b = c", {"a", "c"}, []),
    ("a[0] = 1", {"a"}, []),
    # an import binds a name without owning it (two cells may import pandas)...
    ("import numpy as np\nfrom os import path as p\nimport xml.dom\nnp.zeros(p)", set(), []),
    # ... unless the cell also assigns it
    ("import json\njson = None", set(), ["json"]),
    # functions and classes bind their names
    ("def f(x):\n    return x + y\nz = f(1)", {"y"}, ["f", "z"]),
    ("def f():\n    df = 1\n    return df", set(), ["f"]),
    ("class C:\n    attr = base", {"base"}, ["C"]),
    ("lambda q: q + w", {"w"}, []),
    ("[k for k in items]", {"items"}, []),
    ("{k: v for k, v in pairs.items() if v > limit}", {"pairs", "limit"}, []),
    ("if (m := compute()):\n    print(m)", {"compute"}, ["m"]),
    # names bound in top-level blocks land in the module namespace
    ("with open(f) as fh:\n    data = fh.read()", {"f"}, ["fh", "data"]),
    ("try:\n    import zz\nexcept ImportError:\n    zz = None", set(), ["zz"]),
    ("if flag:\n    x = data + 1\nelse:\n    x = 0", {"flag", "data"}, ["x"]),
    ("for i in range(n):\n    print(i)", {"n"}, ["i"]),
    ("while k < 3:\n    k = k + 1", {"k"}, ["k"]),
    # a block that reads a name before assigning it reads it from outside
    ("for r in rows:\n    acc = acc + [r]", {"rows", "acc"}, ["r", "acc"]),
    ("for i in range(3):\n    total += i", {"total"}, ["i", "total"]),
    ("if ready:\n    log.append(1)", {"ready", "log"}, []),
    # ... but not one it assigned first
    ("acc = []\nfor r in rows:\n    acc = acc + [r]", {"rows"}, ["acc", "r"]),
    # `except ... as e` binds e for the handler only (Python deletes it after), so
    # two cells handling errors as `e` do not both "assign" it
    ("try:\n    v = risky()\nexcept ValueError as e:\n    print(e)", {"risky"}, ["v"]),
    ("e = 1\ntry:\n    pass\nexcept OSError as e:\n    pass", set(), ["e"]),
]


@pytest.mark.parametrize("source, reads, assigns", CASES, ids=[c[0] for c in CASES])
def test_reads_and_assigns(source, reads, assigns):
    names = analyse(source)
    assert (set(names.reads), list(names.assigns)) == (reads, assigns)


def test_a_cell_that_is_not_python():
    with pytest.raises(SyntaxError):
        analyse("x = = 1")
