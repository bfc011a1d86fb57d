"""Task options: flow-wide defaults, per-task values, and their validation.

Validated when a task is declared, so a bad value fails in the cell that wrote
it, with the task named, rather than when the run starts.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from .core.triggers import RULES


class Option(NamedTuple):
    """One per-task option: its default, how a value is checked, how ``%%task`` reads it.

    ``check(value, fail)`` returns the normalised value or calls
    ``fail(what it must be)``; ``flag(text)`` turns the ``%%task --NAME TEXT``
    argument into a value (raising ValueError with the reason).
    """

    name: str
    default: Any
    check: Callable[[Any, Callable[[str], Exception]], Any]
    flag: Callable[[str], Any]
    metavar: str
    help: str


def _expected(v: Any, fail) -> Any:
    if v is not None and not (_number(v) and math.isfinite(v)):
        raise fail("a number of seconds >= 0, or None")
    return v


def _deadline(v: Any, fail) -> Any:
    if v is None or isinstance(v, datetime):
        return v
    if not (_number(v) and math.isfinite(v) and v > 0):
        raise fail("seconds after the run starts (> 0) or a datetime")
    return v


def _resources(v: Any, fail) -> dict[str, int]:
    want = "a dict of pool name to slots, e.g. {'db': 1}"
    if not isinstance(v, dict):
        raise fail(want)
    for pool, n in v.items():
        if not isinstance(pool, str) or not pool:
            raise fail(want + " (pool names are non-empty strings)")
        if not (_whole(n) and n >= 1):
            raise fail(want + f" (slots are whole numbers >= 1; {pool!r} has {n!r})")
    return dict(v)


def check_group(v: Any, fail) -> Any:
    """A group path: ``None`` or non-empty names joined by ``/``, printable."""
    if v is None:
        return v
    if (not isinstance(v, str) or not all(part.strip() for part in v.split("/"))
            or not v.isprintable()):
        raise fail("a non-empty name, or names joined by '/' (e.g. 'extract/api'), "
                   "of printable characters")
    return v


def _flag_resources(text: str) -> dict[str, int]:
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        pool, _, n = item.partition("=")
        if not (n or "1").strip().isdigit():
            raise ValueError(f"{item!r}: write POOL=SLOTS, e.g. db=1")
        out[pool.strip()] = int(n or 1)
    return out


def _flag_deadline(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is neither seconds nor an ISO date and time") from None


#: Scheduling options (``docs/scheduling.md``), one row each: the row drives the
#: defaults, the validation, ``Flow.task``'s keywords and the ``%%task`` flags.
SCHEDULING = (
    Option("expected", None, _expected, float, "S",
           "seconds the task usually takes (sjf, edf and critical_path read it)"),
    Option("deadline", None, _deadline, _flag_deadline, "S|ISO",
           "seconds after the run starts, or a date and time, by which it should end"),
    Option("resources", {}, _resources, _flag_resources, "POOL=N,...",
           "slots of resource pools the task holds while it runs"),
    Option("group", None, check_group, str, "PATH",
           "the group it belongs to, for roll-ups: 'extract' or 'extract/api'"),
)

# Options a Flow can set for all its tasks; a task's own value wins.
FLOW_DEFAULTS = {"retries": 0, "retry_delay": 0.0, "backoff": 1.0, "max_delay": None,
                 "jitter": 0.0, "retry_on": (Exception,), "timeout": None}
TASK_ONLY = {"priority": 0, "tags": (), "trigger": "all_success", "run_if": None,
             "compensate": None, "cache": False,
             **{o.name: o.default for o in SCHEDULING}, "phase": None}
OPTIONS = tuple(FLOW_DEFAULTS) + tuple(TASK_ONLY)


def task_options(defaults: dict[str, Any], given: dict[str, Any], task: str) -> dict[str, Any]:
    """Merge ``given`` (None means unset) over ``defaults``; validate every value.

    Raises
    ------
    TypeError, ValueError
        naming the task, the option and what it accepts.
    """
    out = {**FLOW_DEFAULTS, **defaults, **TASK_ONLY}
    for key, value in given.items():
        if key not in out:
            raise TypeError(f"task {task!r}: unknown option {key!r}; the options are: "
                            f"{', '.join(OPTIONS)}")
        if value is not None:
            out[key] = value
    return validate(out, f"task {task!r}")


def validate(opts: dict[str, Any], who: str) -> dict[str, Any]:
    """Check and normalise option values (``who`` starts each message)."""
    def bad(key: str, want: str) -> ValueError:
        return ValueError(f"{who}: {key} must be {want}, got {opts[key]!r}")

    if "retries" in opts and not _whole(opts["retries"]):
        raise bad("retries", "a whole number >= 0")
    for key in ("retry_delay", "backoff"):
        if key in opts and not _number(opts[key]):
            raise bad(key, "a number >= 0")
    for key in ("max_delay", "timeout"):
        if opts.get(key) is not None and not (_number(opts[key]) and opts[key] > 0):
            raise bad(key, "a number of seconds > 0, or None")
    if "jitter" in opts and not (_number(opts["jitter"]) and opts["jitter"] <= 1):
        raise bad("jitter", "a fraction between 0 and 1")
    if "retry_on" in opts:
        retry_on = opts["retry_on"]
        retry_on = (retry_on,) if isinstance(retry_on, type) else _items(retry_on)
        if retry_on is None or not all(isinstance(t, type) and issubclass(t, BaseException)
                                       for t in retry_on):
            raise bad("retry_on", "an exception class or a tuple of them")
        opts["retry_on"] = retry_on
    if "trigger" in opts and opts["trigger"] not in RULES:
        raise bad("trigger", "one of " + ", ".join(repr(r) for r in RULES))
    for key in ("run_if", "compensate"):
        if opts.get(key) is not None and not callable(opts[key]):
            raise bad(key, "a callable")
    if "priority" in opts and not isinstance(opts["priority"], numbers.Integral):
        raise bad("priority", "a whole number")
    if "tags" in opts:
        tags = opts["tags"]
        tags = (tags,) if isinstance(tags, str) else _items(tags)
        if tags is None or not all(isinstance(t, str) for t in tags):
            raise bad("tags", "a string or a list of strings")
        opts["tags"] = tags
    if "cache" in opts:
        opts["cache"] = bool(opts["cache"])
    for option in SCHEDULING:
        if option.name in opts:
            opts[option.name] = option.check(opts[option.name],
                                             lambda want, key=option.name: bad(key, want))
    return opts


def _whole(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0


def _number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and v >= 0


def _items(value: Any) -> tuple | None:
    """``value`` as a tuple, or None when it is not iterable."""
    try:
        return tuple(value)
    except TypeError:
        return None
