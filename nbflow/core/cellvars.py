"""Which names a cell reads and which it assigns (static analysis with ``ast``).

Used to infer the dependencies of ``%%task`` cells: a cell depends on the task
cells that assign the names it reads.  The analysis is deliberately simple and
errs toward reporting a read: a name used anywhere in the cell (also inside
functions it defines) counts, unless the cell assigned it at top level first.
"""

from __future__ import annotations

import ast
import builtins
from typing import NamedTuple

_BUILTINS = frozenset(dir(builtins))


class CellNames(NamedTuple):
    reads: frozenset[str]
    assigns: tuple[str, ...]  # in order of first assignment


def analyse(source: str) -> CellNames:
    """Names ``source`` reads from outside and names it binds at top level.

    Raises
    ------
    SyntaxError
        as ``compile`` would, for a cell that is not valid Python.
    """
    tree = ast.parse(source)
    assigns: dict[str, None] = {}
    reads: set[str] = set()
    for stmt in tree.body:
        loads, inner = set(), set()
        simple = isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr))
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Load):
                    loads.add(node.id)
                elif not simple:
                    inner.add(node.id)  # bound inside a loop, block or function body
            elif isinstance(node, ast.arg):
                inner.add(node.arg)
            elif isinstance(node, ast.comprehension):
                inner.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
        # An augmented assignment reads its target too.
        if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            loads.add(stmt.target.id)
        reads |= {n for n in loads - inner if n not in assigns}
        for n in _top_level_binds(stmt):
            assigns.setdefault(n, None)
    return CellNames(frozenset(reads - _BUILTINS), tuple(assigns))


def _top_level_binds(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"]
    targets: list[ast.AST] = []
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
        targets = [stmt.target]
    elif isinstance(stmt, (ast.For, ast.AsyncFor)):
        targets = [stmt.target]
    elif isinstance(stmt, (ast.With, ast.AsyncWith)):
        targets = [i.optional_vars for i in stmt.items if i.optional_vars is not None]
    names = [n.id for t in targets for n in ast.walk(t)
             if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
    # Walrus targets and bindings inside top-level if/for/while/try bodies also
    # reach the module namespace.
    for node in ast.walk(stmt):
        if isinstance(node, ast.NamedExpr):
            names.append(node.target.id)
    if isinstance(stmt, (ast.If, ast.For, ast.While, ast.Try, ast.With)):
        for child in ast.iter_child_nodes(stmt):
            if isinstance(child, ast.stmt):
                names.extend(_top_level_binds(child))
    return names
