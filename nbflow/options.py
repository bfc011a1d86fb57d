"""Task options: flow-wide defaults, per-task values, and their validation.

Validated when a task is declared, so a bad value fails in the cell that wrote
it, with the task named, rather than when the run starts.
"""

from __future__ import annotations

import numbers
from typing import Any

from .core.triggers import RULES

# Options a Flow can set for all its tasks; a task's own value wins.
FLOW_DEFAULTS = {"retries": 0, "retry_delay": 0.0, "backoff": 1.0, "max_delay": None,
                 "jitter": 0.0, "retry_on": (Exception,), "timeout": None}
TASK_ONLY = {"priority": 0, "tags": (), "trigger": "all_success", "run_if": None,
             "compensate": None, "cache": False}
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
