"""Every option of a task and of a run, in one table, checked by one validator.

A row (:class:`Option`) says what an option is called, its default, where it
can be set, how a value is checked (and normalised), what it accepts, the fix
to suggest, its help text and the ``%%task`` flag that sets it.  Everything
else is derived from the table:

* ``TaskSpec``'s field defaults (``DEFAULTS``);
* :func:`task_options` and :func:`check`, which ``Flow()``, ``Flow.task``,
  ``Flow.cell_task``, ``Flow.run`` and the engine call;
* the ``%%task`` parser (``notebook/magics.py``), ``%flow run --workers`` and the
  CLI's ``--workers`` and ``--timeout``, which read a flag's text with
  :func:`flag_type` and check it with the same row;
* the tests that hold ``Flow.task``'s keywords and the docs to the table.

Scopes: ``flow`` options are task options that a ``Flow(...)`` can default
for all its tasks; ``task`` options are per task only; ``declare`` are the
name and dependencies given when a task is declared; ``cell`` options are
those of ``%%task`` cells only (``Flow.cell_task``); ``run`` options are
those of ``Flow.run`` (``workers``, ``executor`` and ``policy`` a ``Flow(...)``
can default too).

Numbers: a duration is finite and at most ``MAX_SECONDS`` (a year); ``inf``,
``nan`` and ``1e20`` cannot mean anything a timer can wait for, so they are
refused with the fix ("use None for no timeout").  ``bool`` is not a number
here, although Python says it is: ``workers=True`` is a mistake.

Standard library only (``core``): the executor names are listed here and
``executors/__init__.py`` builds its table from them.
"""

from __future__ import annotations

import argparse
import keyword
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from typing import Any

from ..errors import InvalidOption
from .policies import POLICIES
from .safe import safe_repr
from .triggers import RULES

MAX_SECONDS = 365 * 24 * 3600.0   # a year: the longest timeout, delay or back-off wait
MODES = ("eager", "levels")
ON_FAILURE = (None, "compensate")
EXECUTOR_NAMES = ("threads", "processes", "sync", "dask")


class Wrong(Exception):
    """Raised by a row's ``check``: the value is not one the row accepts."""


@dataclass(frozen=True)
class Option:
    """One option: see the module docstring."""

    name: str
    default: Any
    scope: str                          # "flow", "task", "declare", "cell" or "run"
    check: Callable[[Any], Any]         # value -> normalised value; raises Wrong
    accepts: str                        # "a whole number of at least 0"
    help: str
    fix: str = ""                       # the end of the message: how to put it right
    flag: str | None = None             # the %%task flag, e.g. "--retry-delay"
    metavar: str = ""                   # the flag's value in the usage line
    text: Callable[[str], Any] = str    # how the flag's text becomes a value

    def validate(self, value: Any, who: str) -> Any:
        """``value`` normalised, or :class:`InvalidOption` naming ``who``."""
        try:
            return self.check(value)
        except Wrong:
            pass
        fix = f"; {self.fix}" if self.fix else ""
        raise InvalidOption(f"{who}: {self.name} must be {self.accepts}, "
                            f"got {safe_repr(value)}{fix}.", option=self.name, value=value)


# -- checks (value -> normalised value, or Wrong) ---------------------------------------

def _finite(v: Any) -> float | None:
    """``v`` as a float if it is a finite real number (not a bool), else None; an
    int too large for a float is None too, not an OverflowError."""
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _whole(low: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= low:
            return int(v)
        raise Wrong
    return check


def _seconds(*, above_zero: bool) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        f = _finite(v)
        if f is not None and (f > 0 if above_zero else f >= 0) and f <= MAX_SECONDS:
            return f
        raise Wrong
    return check


def _or_none(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else check(v)


def _factor(v: Any) -> float:
    f = _finite(v)
    if f is not None and f >= 0:
        return f
    raise Wrong


def _fraction(v: Any) -> float:
    f = _finite(v)
    if f is not None and 0 <= f <= 1:
        return f
    raise Wrong


def _integer(v: Any) -> int:
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return int(v)
    raise Wrong


def _flag(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise Wrong


def _one_of(choices: Any) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        try:
            if v in choices and (v is None or isinstance(v, str)):
                return v
        except TypeError:   # unhashable
            pass
        raise Wrong
    return check


def _callable(v: Any) -> Any:
    if v is None or callable(v):
        return v
    raise Wrong


def _exception_types(v: Any) -> tuple[type[BaseException], ...]:
    kinds = (v,) if isinstance(v, type) else _items(v)
    if kinds and all(isinstance(t, type) and issubclass(t, BaseException) for t in kinds):
        return kinds
    raise Wrong


def _strings(v: Any) -> tuple[str, ...]:
    """A string or an iterable of strings, as a tuple (a lone string is one item)."""
    items = (v,) if isinstance(v, str) else _items(v)
    # map, not a generator: once per declaration (after=), so in C.
    if items is not None and all(map(isinstance, items, repeat(str))):
        return items
    raise Wrong


def _name(v: Any) -> str:
    if isinstance(v, str) and _is_name(v):
        return v
    raise Wrong


def _after(v: Any) -> tuple[str, ...]:
    items = _strings(v)
    if "" not in items:   # what _is_name refuses
        return items
    raise Wrong


def _inputs(v: Any) -> dict[str, str | tuple[str, ...]] | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise Wrong
    out: dict[str, str | tuple[str, ...]] = {}
    for param, source in v.items():
        if not isinstance(param, str):
            raise Wrong
        if isinstance(source, str):
            out[param] = source
        elif isinstance(source, (list, tuple)) and all(map(isinstance, source, repeat(str))):
            out[param] = tuple(source)
        else:
            raise Wrong
    return out


def _variables(v: Any) -> tuple[str, ...] | None:
    if v is None:
        return None
    items = _strings(v)
    if all(t.isidentifier() and not keyword.iskeyword(t) for t in items):
        return tuple(dict.fromkeys(items))
    raise Wrong


def _nonempty_text(v: Any) -> str:
    if isinstance(v, str) and v.strip() and v.isprintable():
        return v
    raise Wrong


def _is_name(v: str) -> bool:
    # Any other text is a name: the store keeps every string (tests/store).
    return v != ""


def _executor(v: Any) -> Any:
    if isinstance(v, str):
        if v in EXECUTOR_NAMES:
            return v
        raise Wrong
    if all(callable(getattr(v, m, None)) for m in ("start", "submit", "cancel", "shutdown")):
        return v
    raise Wrong


def _items(value: Any) -> tuple[Any, ...] | None:
    """``value`` as a tuple, or None when it is not iterable (or a mapping)."""
    if isinstance(value, (dict, bytes)) or value is None:
        return None
    try:
        return tuple(value)
    except Exception:  # noqa: BLE001 - not iterable, or its iteration raised
        return None


# -- text of flags ---------------------------------------------------------------------

def _deadline(v: Any) -> Any:
    if v is None or isinstance(v, datetime):
        return v
    f = _finite(v)
    if f is not None and 0 < f <= MAX_SECONDS:
        return f
    raise Wrong


def _resources(v: Any) -> dict[str, int]:
    if not isinstance(v, dict):
        raise Wrong
    for pool, n in v.items():
        if not isinstance(pool, str) or not pool:
            raise Wrong
        if not (isinstance(n, numbers.Integral) and not isinstance(n, bool) and int(n) >= 1):
            raise Wrong
    return dict(v)


def check_group(v: Any) -> str | None:
    """A group path: None, or non-empty printable names joined by ``/``."""
    if v is None:
        return v
    if (isinstance(v, str) and all(part.strip() for part in v.split("/"))
            and v.isprintable()):
        return v
    raise Wrong


def _policy(v: Any) -> Any:
    if isinstance(v, str):
        if v in POLICIES:
            return v
        raise Wrong
    if callable(getattr(v, "prepare", None)):   # a policy object (nbflow.policies)
        return v
    raise Wrong


def _resources_text(text: str) -> Any:
    """``"db=1, api=2"`` -> ``{"db": 1, "api": 2}`` (``POOL`` alone means one slot);
    anything else stays text (and is refused)."""
    out: dict[str, Any] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        pool, _, n = item.partition("=")
        n = (n or "1").strip()
        if not n.isdigit():
            return text
        out[pool.strip()] = int(n)
    return out


def _deadline_text(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return text


def _int_text(text: str) -> Any:
    """A whole number's text as an int; anything else stays text (and is refused)."""
    t = text.strip()
    return int(t) if t.isascii() and t.lstrip("+-").isdigit() else text


def _float_text(text: str) -> Any:
    try:
        return float(text) if text.isascii() else text
    except ValueError:
        return text


def _names_text(text: str) -> list[str]:
    """``"a, b"`` -> ``["a", "b"]``; an empty value is an empty list."""
    return [n.strip() for n in text.split(",") if n.strip()]


# -- the table ---------------------------------------------------------------------------

_SECONDS = f"a number of seconds above 0 and at most {MAX_SECONDS:.0f} (a year)"
_delay = _seconds(above_zero=False)

OPTIONS: dict[str, Option] = {o.name: o for o in (
    Option("name", None, "declare", _name, "a non-empty string",
           "the task's name (default: the function's name)", "e.g. name='load'"),
    Option("after", (), "declare", _after, "a task name or a list of task names",
           "tasks this one runs after without taking their results", flag="--after",
           metavar="A,B", text=_names_text),
    Option("inputs", None, "declare", _inputs,
           "a dict of parameter names to a task name or a list of task names",
           "which upstream results the parameters receive (a list: the list of results)",
           "e.g. inputs={'raw': 'fetch-3', 'parts': ['clean-1', 'clean-2']}"),
    # A cell that declares both is self-contained: its reads are sent to a worker
    # that does not share the notebook (executor='dask'), its assigns come back.
    Option("reads", None, "cell", _variables, "a list of variable names, or None",
           "the notebook variables the cell reads (sent with it to a Dask worker)",
           "e.g. --reads df,threshold (--reads \"\" for none)", flag="--reads",
           metavar="A,B", text=_names_text),
    Option("assigns", None, "cell", _variables, "a list of variable names, or None",
           "the variables the cell assigns that come back into the notebook (only those)",
           "e.g. --assigns summary (--assigns \"\" for none)", flag="--assigns",
           metavar="X,Y", text=_names_text),
    Option("retries", 0, "flow", _whole(0), "a whole number of at least 0",
           "how many times a failed attempt is retried", flag="--retries", metavar="N",
           text=_int_text),
    Option("retry_delay", 0.0, "flow", _delay,
           f"a number of seconds from 0 to {MAX_SECONDS:.0f} (a year)",
           "seconds to wait before the first retry", flag="--retry-delay", metavar="S",
           text=_float_text),
    Option("backoff", 1.0, "flow", _factor, "a finite number of at least 0",
           "the delay's multiplier per further retry (2 doubles it)", flag="--backoff",
           metavar="F", text=_float_text),
    Option("max_delay", None, "flow", _or_none(_seconds(above_zero=True)), _SECONDS + ", or None",
           "the longest wait between two attempts, jitter included", "use None for no cap",
           flag="--max-delay", metavar="S", text=_float_text),
    Option("jitter", 0.0, "flow", _fraction, "a fraction from 0 to 1",
           "spread each delay by up to this fraction of itself, either way",
           flag="--jitter", metavar="J", text=_float_text),
    Option("retry_on", (Exception,), "flow", _exception_types,
           "an exception class or a tuple of them", "the errors worth a retry",
           "e.g. retry_on=(ConnectionError, TimeoutError)"),
    Option("timeout", None, "flow", _or_none(_seconds(above_zero=True)), _SECONDS + ", or None",
           "seconds an attempt may run before it fails with TaskTimeout",
           "use None for no timeout", flag="--timeout", metavar="S", text=_float_text),
    Option("priority", 0, "task", _integer, "a whole number",
           "higher runs first among ready tasks", flag="--priority", metavar="P",
           text=_int_text),
    Option("tags", (), "task", _strings, "a string or a list of strings",
           "labels for filtering and display", flag="--tags", metavar="a,b", text=_names_text),
    Option("trigger", "all_success", "task", _one_of(RULES),
           "one of " + ", ".join(repr(r) for r in RULES),
           "when the task runs, given how its dependencies ended", flag="--trigger",
           metavar="RULE"),
    Option("run_if", None, "task", _callable, "a callable or None",
           "called with the task's arguments; a false value skips the task"),
    Option("compensate", None, "task", _callable, "a callable or None",
           "undoes the task's success when the run fails (on_failure='compensate')"),
    Option("cache", False, "task", _flag, "True or False",
           "reuse a stored result of any earlier run with the same code and inputs"),
    # Scheduling (docs/scheduling.md): policies read expected and deadline, the
    # scheduler's pools resources, roll-ups the group, phases the phase.
    Option("expected", None, "task", _or_none(_delay), f"a number of seconds from 0 to "
           f"{MAX_SECONDS:.0f}, or None", "seconds the task usually takes (sjf, edf and "
           "critical_path read it)", "use None to let the store's history tell",
           flag="--expected", metavar="S", text=_float_text),
    Option("deadline", None, "task", _deadline,
           "seconds after the run starts (above 0, at most a year), a datetime, or None",
           "when the task should have ended", flag="--deadline", metavar="S|ISO",
           text=_deadline_text),
    Option("resources", {}, "task", _resources,
           "a dict of pool name to slots, e.g. {'db': 1} (slots are whole numbers >= 1)",
           "slots of resource pools the task holds while it runs",
           "declare the pool with flow.pool(NAME, slots=N)", flag="--resources",
           metavar="POOL=N,...", text=_resources_text),
    Option("group", None, "task", check_group,
           "a name, or names joined by '/' (e.g. 'extract/api'), of printable characters",
           "the group the task belongs to, for roll-ups", flag="--group", metavar="PATH"),
    Option("phase", None, "task", _or_none(_nonempty_text), "a non-empty name, or None",
           "the phase the task belongs to (as inside `with flow.phase(...)`)",
           flag="--phase", metavar="NAME"),
    Option("inherit_priority", None, "run", _or_none(_flag), "True, False or None",
           "a task's priority is at least that of any task waiting on it",
           "None uses the flow's"),
    Option("workers", None, "run", _or_none(_whole(1)),
           "a whole number of at least 1, or None", "attempts run at once",
           "use None for the default (NBFLOW_WORKERS, else the executor's)", text=_int_text),
    Option("executor", "threads", "run", _executor,
           "one of " + ", ".join(repr(e) for e in EXECUTOR_NAMES) + ", or an executor object "
           "(with start, submit, cancel and shutdown)", "where attempts run"),
    Option("mode", "eager", "run", _one_of(MODES), "one of " + ", ".join(map(repr, MODES)),
           "eager: a task starts once its dependencies allow; levels: level by level"),
    Option("policy", "priority", "run", _policy,
           "one of " + ", ".join(repr(p) for p in sorted(POLICIES))
           + ", or a policy object such as nbflow.policies.Aging(rate=1.0)",
           "which ready task starts first"),
    Option("fail_fast", False, "run", _flag, "True or False",
           "cancel the run when a task fails for good"),
    Option("on_failure", None, "run", _one_of(ON_FAILURE), "None or 'compensate'",
           "'compensate': undo the succeeded tasks when the run fails or is cancelled"),
    Option("seed", None, "run", _or_none(_integer), "a whole number, or None",
           "seeds the retry jitter, so a run with the same failures repeats its delays",
           "use None for a new random seed", text=_int_text),
)}

DEFAULTS = {o.name: o.default for o in OPTIONS.values()}
FLOW_DEFAULTS = tuple(n for n, o in OPTIONS.items() if o.scope == "flow")
TASK_OPTIONS = tuple(n for n, o in OPTIONS.items() if o.scope in ("flow", "task"))
RUN_OPTIONS = tuple(n for n, o in OPTIONS.items() if o.scope == "run")
_TASK_SET = frozenset(TASK_OPTIONS)


def check(name: str, value: Any, who: str) -> Any:
    """``value`` of option ``name``, normalised; :class:`InvalidOption` names ``who``."""
    return OPTIONS[name].validate(value, who)


def check_all(values: dict[str, Any], who: str) -> dict[str, Any]:
    """Every ``name: value`` checked and normalised (a new dict)."""
    return {k: OPTIONS[k].validate(v, who) for k, v in values.items()}


def unknown(given: Any, allowed: tuple[str, ...], who: str) -> None:
    """Refuse option names not in ``allowed``, naming the ones that are."""
    stray = sorted(set(given) - set(allowed))
    if stray:
        raise InvalidOption(f"{who} got unknown option(s) {', '.join(stray)}; the options "
                            f"are: {', '.join(allowed)}.", option=stray[0], value=None)


def task_options(defaults: dict[str, Any], given: dict[str, Any], task: str) -> dict[str, Any]:
    """The options task ``task`` sets: ``given`` (None means unset) over the flow's
    ``defaults`` (already checked), every given value checked.  Options set by
    neither are left out: ``TaskSpec``'s fields default to the table's values.

    Once per declaration, so the common case (nothing given) costs a dict copy.
    """
    if not _TASK_SET.issuperset(given):
        unknown(given, TASK_OPTIONS, f"task {task!r}")
    out = dict(defaults)
    for key, value in given.items():
        if value is not None:
            out[key] = OPTIONS[key].validate(value, f"task {task!r}")
    return out


def flag_type(name: str) -> Callable[[str], Any]:
    """An argparse ``type=`` reading option ``name`` from a flag's text, checked by
    its row; a refused value reads ``argument --flag: must be ..., got 'text'``."""
    option = OPTIONS[name]

    def convert(text: str) -> Any:
        try:
            return option.check(option.text(text))
        except Wrong:
            raise argparse.ArgumentTypeError(
                f"must be {option.accepts.removesuffix(', or None')}, got {text!r}") from None

    convert.__name__ = name
    return convert
