"""Which names a cell reads and which it assigns (static analysis with ``ast``).

Used to infer the dependencies of ``%%task`` cells: a cell depends on the task
cells that assign the names it reads.  The analysis is deliberately simple and
errs toward reporting a read: a name used anywhere in the cell (also inside
functions it defines) counts, unless the cell assigned it at top level first
(also inside a top-level if/for/while/with/try block, whose body runs at top level).
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
    assigns: dict[str, str | None] = {}   # name -> None, or "import" if only imported
    reads: set[str] = set()
    _scan(ast.parse(source).body, assigns, reads)
    owned = tuple(n for n, how in assigns.items() if how is None)
    return CellNames(frozenset(reads - _BUILTINS), owned)


def _scan(stmts: list[ast.stmt], assigns: dict[str, str | None], reads: set[str]) -> None:
    """Statements that run in the module namespace, in order."""
    for stmt in stmts:
        parts = _block_parts(stmt)
        if parts is None:
            _read(stmt, assigns, reads)
            # An import binds a name but does not make the cell its owner: two
            # task cells may both `import pandas as pd` (marked "import" here).
            how = "import" if isinstance(stmt, (ast.Import, ast.ImportFrom)) else None
            for n in _top_level_binds(stmt):
                if assigns.get(n, "import") == "import":
                    assigns[n] = how
            continue
        # A block's bodies run in the module namespace too, so they are scanned
        # like top-level code: `for r in rows: acc = acc + [r]` reads `acc`.
        for header, bound, body, scoped in parts:
            for expr in header:
                _read(expr, assigns, reads)
                for n in _walrus_targets(expr):
                    assigns.setdefault(n, None)
            for n in bound:
                assigns.setdefault(n, None)
            fresh = [n for n in scoped if n not in assigns]
            assigns.update(dict.fromkeys(fresh))
            _scan(body, assigns, reads)
            for n in fresh:  # Python unbinds `except ... as e` when the handler ends
                del assigns[n]


_Part = tuple[list[ast.expr], list[str], list[ast.stmt], list[str]]


def _block_parts(stmt: ast.stmt) -> list[_Part] | None:
    """``(header expressions, names bound, body, names bound for the body only)``
    of each part of a block in execution order, or None for a statement that is
    not an if/for/while/with/try block."""
    if isinstance(stmt, (ast.If, ast.While)):
        return [([stmt.test], [], stmt.body, []), ([], [], stmt.orelse, [])]
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        return [([stmt.iter], _stored(stmt.target), stmt.body, []), ([], [], stmt.orelse, [])]
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return [([i.context_expr for i in stmt.items],
                 [n for i in stmt.items if i.optional_vars for n in _stored(i.optional_vars)],
                 stmt.body, [])]
    if isinstance(stmt, _TRY):
        return [([], [], stmt.body, []),
                *(([h.type] if h.type else [], [], h.body, [h.name] if h.name else [])
                  for h in stmt.handlers),
                ([], [], stmt.orelse, []), ([], [], stmt.finalbody, [])]
    return None


_TRY = (ast.Try, ast.TryStar) if hasattr(ast, "TryStar") else (ast.Try,)


def _read(node: ast.AST, assigns: dict[str, str | None], reads: set[str]) -> None:
    """Add the names ``node`` reads that nothing bound before it."""
    loads, inner = set(), set()
    simple = isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.expr))
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            if isinstance(sub.ctx, ast.Load):
                loads.add(sub.id)
            elif not simple:
                inner.add(sub.id)  # bound inside a function or class body
        elif isinstance(sub, ast.arg):
            inner.add(sub.arg)
        elif isinstance(sub, ast.comprehension):
            inner.update(n.id for n in ast.walk(sub.target) if isinstance(n, ast.Name))
    # An augmented assignment reads its target too.
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
        loads.add(node.target.id)
    reads.update(n for n in loads - inner if n not in assigns)


def _stored(target: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(target)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]


def _walrus_targets(node: ast.AST) -> list[str]:
    return [n.target.id for n in ast.walk(node) if isinstance(n, ast.NamedExpr)]


def _top_level_binds(stmt: ast.stmt) -> list[str]:
    """Names a statement that is not a block binds in the module namespace."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"]
    targets: list[ast.AST] = []
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
        targets = [stmt.target]
    return [n for t in targets for n in _stored(t)] + _walrus_targets(stmt)
