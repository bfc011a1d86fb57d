"""The IPython magics: ``%%task`` declares a cell as a task, ``%flow`` drives the flow.

State lives in one :class:`FlowMagics` per shell: the flow the magics use (by
default one named after the notebook, or the one ``%flow use VAR`` picked) and
the last run ``%flow run`` made.  Nothing runs when a ``%%task`` cell is
executed; the cell's source, its options and the user namespace it will run in
are handed to :meth:`nbflow.Flow.cell_task`.

``%flow`` dispatches on its first word through ``SUBCOMMANDS``, a table filled
by :func:`subcommand`, so later features add a subcommand without touching the
magic itself.  Bad arguments raise IPython's ``UsageError`` (one line, with the
usage); nbflow's own errors about the flow (a cycle, a variable assigned by two
task cells...) are shown as one line too, since a traceback through the magic
machinery would only hide the message.
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import display

from ..api import Flow, Run
from ..core.options import MODES, OPTIONS, flag_type
from ..core.policies import POLICIES
from ..core.text import NAME_LIMIT, storable
from ..errors import NbflowError
from ..readable import Levels
from ..simulation import Simulation
from .context import declaring_cell


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as a one-line ``UsageError``."""

    def __init__(self, prog: str, usage: str | None = None):
        super().__init__(prog=prog, usage=usage, add_help=False, allow_abbrev=False)

    def error(self, message: str):
        raise UsageError(f"{message}. {self.usage_line()}")

    def usage_line(self) -> str:
        """The usage on one line (argparse wraps long ones)."""
        return " ".join(self.format_usage().split()).replace("usage:", "Usage:", 1)

    def parse_line(self, line: str) -> argparse.Namespace:
        try:
            words = shlex.split(line)
        except ValueError as e:  # an unclosed quote
            self.error(str(e))
        try:
            return self.parse_args(words)
        except UsageError as e:
            # `--map {'a': 1, 'b': 2}` is split at its spaces like any argument.
            if "--map" in words and str(e).startswith("unrecognized arguments"):
                raise UsageError(f"{e} An ITEMS expression with spaces must be quoted "
                                 "(--map \"[a, b]\") or named in a variable first.") from None
            raise


def _number(kind: type, *, low: float, strict: bool = False) -> Callable[[str], Any]:
    """An argparse type: a ``kind`` at least ``low`` (greater if ``strict``)."""
    word = {int: "an integer", float: "a number"}[kind]
    bound = f"greater than {low:g}" if strict else f"at least {low:g}"

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {word}") from None
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    convert.__name__ = kind.__name__
    return convert


#: The ``%%task`` options that have a flag, in the table's order.
TASK_FLAGS = [o for o in OPTIONS.values() if o.flag and o.scope != "run"]


def _task_parser() -> _Parser:
    usage = " ".join(["%(prog)s NAME", *(f"[{o.flag} {o.metavar}]" for o in TASK_FLAGS),
                      "[--map ITEMS [--as VAR]]"])
    p = _Parser("%%task", usage=usage)
    p.add_argument("name", metavar="NAME")
    for o in TASK_FLAGS:
        # None is "not given": the flow's default applies.
        p.add_argument(o.flag, dest=o.name, type=flag_type(o.name), default=None,
                       metavar=o.metavar, help=o.help)
    # Not task options: they make one task per item (Flow.cell_map).
    p.add_argument("--map", dest="map_over", metavar="ITEMS", default=None,
                   help="a notebook expression (e.g. a variable) whose items get a task each")
    p.add_argument("--as", dest="bind", metavar="VAR", default=None,
                   help="the name the item has in the cell (default: item)")
    return p


TASK_PARSER = _task_parser()


@dataclass(frozen=True)
class Subcommand:
    """One ``%flow`` subcommand: its handler, its argument parser and a one-line summary."""

    name: str
    summary: str
    parser: _Parser
    handler: Callable[[FlowMagics, argparse.Namespace], None]


SUBCOMMANDS: dict[str, Subcommand] = {}


def arg(*flags: str, **options: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """An argument of a subcommand, as ``argparse.add_argument`` takes it."""
    return flags, options


def subcommand(name: str, summary: str, *arguments: tuple[tuple[str, ...], dict[str, Any]]):
    """Register the decorated ``handler(magics, args)`` as ``%flow NAME``.

    Parameters
    ----------
    name
        the word after ``%flow``.
    summary
        one line for the list of subcommands.
    arguments
        :func:`arg` entries, parsed from the rest of the line.
    """
    def register(handler: Callable[[FlowMagics, argparse.Namespace], None]):
        parser = _Parser(f"%flow {name}")
        for flags, options in arguments:
            parser.add_argument(*flags, **options)
        SUBCOMMANDS[name] = Subcommand(name, summary, parser, handler)
        return handler

    return register


def _flow_usage() -> str:
    return "Usage: %flow SUBCOMMAND [options], where SUBCOMMAND is one of: " + "; ".join(
        f"{c.name} ({c.summary})" for c in SUBCOMMANDS.values())


def _where(error: SyntaxError) -> str:
    """``msg (line N of the cell: 'text')``, counting the magic line as line 1."""
    if error.lineno is None:
        return error.msg
    text = f": {error.text.strip()!r}" if error.text else ""
    return f"{error.msg} (line {error.lineno + 1} of the cell{text})"


def _briefly(error: NbflowError) -> None:
    """Make IPython show ``error`` as one line instead of a traceback through the magics."""
    line = f"{type(error).__name__}: {error}"
    error._render_traceback_ = lambda: [line]  # type: ignore[attr-defined]


@magics_class
class FlowMagics(Magics):
    """``%%task`` and ``%flow``, bound to one flow at a time."""

    def __init__(self, shell: Any, flow: Flow):
        super().__init__(shell)
        self.flow = flow
        self.last_run: Run | None = None

    @cell_magic("task")
    def task_magic(self, line: str, cell: str) -> None:
        """Declare this cell as a task of the flow; it does not run it.

        Usage: ``%%task NAME [--after A,B] [--reads A,B] [--assigns X,Y]
        [--retries N] [--retry-delay S] [--backoff F] [--max-delay S] [--jitter J]
        [--timeout S] [--priority P] [--tags a,b] [--trigger RULE] [--expected S]
        [--deadline S|ISO] [--resources POOL=N,...] [--group PATH] [--phase NAME]
        [--map ITEMS [--as VAR]]``
        (the options of ``Flow.task``; an option not given takes the flow's default)

        Without ``--after`` the task depends on the task cells that assign the
        names this cell reads (``--after ""`` turns that off).  When the flow
        runs, the cell runs in the notebook's namespace, so what it assigns
        becomes ordinary variables.  Re-running the cell redeclares the task.

        ``--map ITEMS`` makes one task per item of the notebook expression ITEMS
        (evaluated now, like ``flow.map``'s ``over=``): ``NAME[k]`` runs the cell
        with the item as ``item`` (``--as VAR`` names it), and each variable the
        cell assigns becomes the list of the items' values, in order.

        ``--reads A,B --assigns X,Y`` declare the variables the cell reads and
        the ones that come back into the notebook (only those; ``""`` for none).
        A cell that declares both can run on a Dask worker (``executor='dask'``):
        its reads are sent there when it starts and its assigns come back when it
        ends.  On Dask a cell that does not is refused before anything is
        submitted, with the flags to add.
        """
        args = TASK_PARSER.parse_line(line)
        if args.name.startswith("-"):
            TASK_PARSER.error(f"a task name cannot start with '-': {args.name!r}")
        if args.bind is not None and args.map_over is None:
            TASK_PARSER.error("--as names the item of --map; give --map ITEMS too")
        # IPython syntax (%magics, !shell) inside the task becomes plain Python.
        source = self.shell.transform_cell(cell)
        options = {o.name: getattr(args, o.name) for o in TASK_FLAGS}
        try:
            if args.map_over is None:
                self.flow.cell_task(args.name, source, self.shell.user_ns,
                                    cell_id=declaring_cell(), **options)
            else:
                self._map(args, source, options)
        except NbflowError as e:
            _briefly(e)
            raise
        except SyntaxError as e:
            raise UsageError(f"task {args.name!r} is not valid Python: {_where(e)}") from None

    def _map(self, args: argparse.Namespace, source: str, options: dict[str, Any]) -> None:
        if options.pop("reads") is not None or options.pop("assigns") is not None:
            TASK_PARSER.error("--reads and --assigns declare one cell task for Dask; a --map "
                              "cell's items run in the kernel: leave them out")
        items = self._items(args.name, args.map_over)
        try:
            self.flow.cell_map(args.name, source, self.shell.user_ns, items,
                               bind=args.bind or "item", cell_id=declaring_cell(), **options)
        except NbflowError:
            raise
        except (TypeError, ValueError) as e:   # not a list of items, --as not a name
            raise UsageError(str(e)) from None

    def _items(self, name: str, expression: str) -> Any:
        """The value of ``--map``'s expression in the notebook's namespace."""
        try:
            return eval(expression, self.shell.user_ns)  # noqa: S307 - the user's own code
        except NameError as e:
            raise UsageError(
                f"task {name!r}: --map {expression}: {e}. The items must exist when the cell "
                "is declared: compute them in an ordinary cell first (task cells run only "
                "with %flow run)") from None
        except Exception as e:  # noqa: BLE001 - any error of the user's expression
            raise UsageError(f"task {name!r}: --map {expression} raised "
                             f"{type(e).__name__}: {e}") from None

    @line_magic("flow")
    def flow_magic(self, line: str) -> Any:
        """Drive the flow of the ``%%task`` cells.

        ``%flow run [--workers N] [--mode eager|levels] [--policy NAME] [--resume [RUN_ID]] [--fail-fast] [--seed N]``
            run every task, show the run
        ``%flow status [--by group]``   the task table of the last run, or its groups (a
            DataFrame: ``st = %flow status``)
        ``%flow levels``   the tasks level by level, what can run together (a list of lists)
        ``%flow graph``    draw the DAG
        ``%flow reset``    forget every task of the flow (runs stay in the store)
        ``%flow use VAR``  make the magics use the ``nbflow.Flow`` in variable VAR
        ``%flow dashboard [--collapse-above N]``  a live dashboard of the last run and the next
        ``%flow dlq [--all]``  dead letters; ``%flow dlq requeue [RUN_ID]`` runs them again
        ``%flow simulate [--workers N] [--policy NAME] [--history] [--default S] [--seed SEED]``
            simulate a run on a virtual clock (durations from the store with --history)
        """
        word, _, rest = line.strip().partition(" ")
        if not word:
            raise UsageError(f"%flow needs a subcommand. {_flow_usage()}")
        command = SUBCOMMANDS.get(word)
        if command is None:
            raise UsageError(f"%flow has no subcommand {word!r}. {_flow_usage()}")
        args = command.parser.parse_line(rest)
        try:
            return command.handler(self, args)
        except NbflowError as e:
            _briefly(e)
            raise


@subcommand("run", "run every task and show the run",
            arg("--workers", type=flag_type("workers"), metavar="N", default=None),
            arg("--mode", choices=MODES, default="eager"),
            arg("--policy", choices=sorted(POLICIES), default=None),
            arg("--resume", nargs="?", const=True, default=None, metavar="RUN_ID"),
            arg("--fail-fast", action="store_true"),
            arg("--seed", type=flag_type("seed"), metavar="N", default=None))
def _run(m: FlowMagics, args: argparse.Namespace) -> None:
    m.last_run = m.flow.run(workers=args.workers, mode=args.mode, resume=args.resume or False,
                            fail_fast=args.fail_fast, seed=args.seed, policy=args.policy)
    display(m.last_run)


@subcommand("status", "the task table of the last run (st = %flow status keeps it)",
            arg("--by", choices=["group"], default=None))
def _status(m: FlowMagics, args: argparse.Namespace) -> Any:
    return _require_run(m).status(by=args.by)


@subcommand("levels", "the tasks level by level (lv = %flow levels keeps them)")
def _levels(m: FlowMagics, args: argparse.Namespace) -> Levels:
    return Levels(m.flow.levels(), flow=m.flow.name)


@subcommand("graph", "draw the DAG")
def _graph(m: FlowMagics, args: argparse.Namespace) -> None:
    display(m.flow.graph())


@subcommand("reset", "forget every task of the flow")
def _reset(m: FlowMagics, args: argparse.Namespace) -> None:
    n = len(m.flow)
    m.flow.clear()
    print(f"forgot {n} task{'s' * (n != 1)} of flow {m.flow.name!r}; its runs stay in the store")


@subcommand("use", "make the magics use the Flow in a variable", arg("var", metavar="VAR"))
def _use(m: FlowMagics, args: argparse.Namespace) -> None:
    name = args.var
    if name not in m.shell.user_ns:
        raise UsageError(f"there is no variable {name!r}; create the flow first, e.g. "
                         f"{name} = nbflow.Flow({name!r}), then %flow use {name}")
    value = m.shell.user_ns[name]
    if not isinstance(value, Flow):
        raise UsageError(f"{name!r} holds an object of type {type(value).__name__}, not an "
                         "nbflow.Flow; %flow use needs a variable that holds a Flow")
    m.flow = value


@subcommand("dashboard", "a live dashboard: the last run, then each new run",
            arg("--collapse-above", type=_number(int, low=1), metavar="N", default=300))
def _dashboard(m: FlowMagics, args: argparse.Namespace) -> None:
    display(m.flow.dashboard(collapse_above=args.collapse_above))


@subcommand("dlq", "dead letters: tasks that failed for good; requeue runs them again",
            arg("action", nargs="?", choices=["requeue"], metavar="requeue"),
            arg("run_id", nargs="?", metavar="RUN_ID"),
            arg("--all", action="store_true"))
def _dlq(m: FlowMagics, args: argparse.Namespace) -> None:
    if args.action == "requeue":
        m.last_run = m.flow.requeue(args.run_id)
        display(m.last_run)
        return
    letters = m.flow.dead_letters(requeued=args.all)
    if letters.empty:
        print(f"flow {m.flow.name!r} has no dead letters"
              + ("" if args.all else " waiting to be requeued"))
    else:
        display(letters.drop(columns=["traceback", "inputs", "key"]))


@subcommand("simulate", "simulate a run on a virtual clock: no task runs, nothing sleeps",
            arg("--workers", type=_number(int, low=1), metavar="N", default=4),
            arg("--policy", metavar="NAME", default=None),
            arg("--history", action="store_true"),
            arg("--default", type=_number(float, low=0), metavar="S", default=1.0),
            arg("--seed", type=int, metavar="SEED", default=None))
def _simulate(m: FlowMagics, args: argparse.Namespace) -> Simulation:
    sim = m.flow.simulate(workers=args.workers, policy=args.policy, default=args.default,
                          durations="history" if args.history else None, seed=args.seed)
    print(f"simulated makespan {sim.makespan:g}s on {args.workers} workers "
          f"({sim.params['policy']}); mean wait {sim.mean_wait:g}s")
    return sim   # shown as its Gantt chart; `sim = %flow simulate` keeps it


def _require_run(m: FlowMagics) -> Run:
    if m.last_run is None:
        raise UsageError("no run yet in this kernel; start one with %flow run")
    return m.last_run


def default_flow_name(environ: Mapping[str, str] = os.environ) -> str:
    """The notebook's file name without extension (``JPY_SESSION_NAME``), else ``notebook``;
    a file name that is not UTF-8 or is very long is escaped and cut to make a flow name."""
    session = environ.get("JPY_SESSION_NAME", "")
    return storable(Path(session).stem)[:NAME_LIMIT] or "notebook"


def load(ipython: Any) -> None:
    """Register the magics on ``ipython`` (what ``%load_ext nbflow`` calls).

    The first load creates a flow named after the notebook, recorded in the
    default store; a reload keeps the flow and the last run.
    """
    old = ipython.magics_manager.registry.get(FlowMagics.__name__)
    magics = FlowMagics(ipython, old.flow if old else Flow(default_flow_name()))
    if old is not None:
        magics.last_run = old.last_run
    ipython.register_magics(magics)


def _magics() -> FlowMagics:
    from IPython import get_ipython
    shell = get_ipython()
    magics = shell.magics_manager.registry.get(FlowMagics.__name__) if shell else None
    if magics is None:
        raise NbflowError("the nbflow magics are not loaded here; run %load_ext nbflow first")
    return magics


def current_flow() -> Flow:
    """The flow ``%%task`` and ``%flow`` use in this kernel.

    Raises
    ------
    NbflowError
        the extension is not loaded (``%load_ext nbflow``).
    """
    return _magics().flow


def last_run() -> Run | None:
    """The run ``%flow run`` made last in this kernel, or None before the first.

    Raises
    ------
    NbflowError
        the extension is not loaded (``%load_ext nbflow``).
    """
    return _magics().last_run
