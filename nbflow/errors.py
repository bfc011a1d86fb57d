"""The few exception types nbflow raises, each named for the condition and carrying data."""

from __future__ import annotations


class NbflowError(Exception):
    """Base class of every error nbflow raises on purpose."""


class CycleError(NbflowError, ValueError):
    """The declared dependencies form a cycle.

    ``cycle`` lists the task names along it, first name repeated at the end,
    as graphlib's ``CycleError`` does.
    """

    def __init__(self, cycle: list[str]):
        self.cycle = list(cycle)
        chain = " -> ".join(self.cycle)
        super().__init__(
            f"the tasks form a cycle: {chain}. Remove one of these dependencies "
            "(an `after=`/`--after` entry or the parameter/variable that creates it)."
        )


class UnknownDependencyError(NbflowError, KeyError):
    """A task depends on a name that no task declares."""

    def __init__(self, task: str, missing: str, suggestions: list[str], how: str = "after"):
        self.task, self.missing, self.suggestions = task, missing, list(suggestions)
        hint = f" Did you mean {_either(self.suggestions)}?" if self.suggestions else ""
        if how == "inputs":
            fix = f"Declare it with @flow.task or %%task, or fix the `inputs=` of {task!r}."
            what = f"task {task!r} takes an input from {missing!r}, which is not a task."
        elif how == "parameter":
            fix = (f"Declare a task named {missing!r}, rename the parameter, "
                   "or give it a default value.")
            what = f"task {task!r} has a parameter {missing!r} that matches no task."
        else:
            fix = f"Declare it with @flow.task or %%task, or remove it from the `after` of {task!r}."
            what = f"task {task!r} depends on {missing!r}, which is not a task."
        super().__init__(f"{what}{hint} {fix}")

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return self.args[0]


class DuplicateTaskError(NbflowError, ValueError):
    """Two different declarations use one task name (or one cell variable)."""


class IllegalTransition(NbflowError, RuntimeError):
    """The engine asked the state table for a transition it does not allow."""

    def __init__(self, state: str, trigger: str, task: str | None = None):
        self.state, self.trigger, self.task = state, trigger, task
        who = f"task {task!r}: " if task else ""
        super().__init__(f"{who}no transition from state {state!r} on {trigger!r}")


class InvalidOption(NbflowError, ValueError, TypeError):
    """An option has a value it does not accept (``nbflow/core/options.py``).

    A ValueError and a TypeError, since a value of the wrong type is one too;
    ``option`` names it and ``value`` is what was given.
    """

    def __init__(self, message: str, option: str, value: object):
        super().__init__(message)
        self.option, self.value = option, value


class TaskFailedError(NbflowError):
    """Raised when asking for the result of a task that did not succeed."""


class TaskCancelled(NbflowError):
    """Raised inside a task by ``check_cancelled()`` once its run or attempt is cancelled.

    Let it propagate: the engine records the attempt as cancelled, not failed.
    """


class SkipTask(NbflowError):
    """Raise inside a task to end it as ``skipped`` (as a false ``run_if`` does)."""


class NoSuchTask(NbflowError, KeyError):
    """A name was asked for that the flow or run does not have."""

    def __str__(self) -> str:
        return self.args[0]


class NoSuchRun(NbflowError, KeyError):
    """A run id was asked for that the store does not have (or that belongs to another flow)."""

    def __str__(self) -> str:
        return self.args[0]


class StoreError(NbflowError):
    """The state store cannot be opened or written."""


class StoreVersionError(StoreError):
    """The database was written by a newer nbflow schema than this one understands."""


class StoreLockedError(StoreError):
    """Another process holds the database lock past the busy timeout."""


class StoreVersionConflict(StoreError):
    """A compare-and-set update lost a race: another process changed the row first."""


class LeaseHeldError(StoreError):
    """A run is still owned by a live engine (another kernel, or this one)."""


def _either(names: list[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
