"""The flow and the log the reliability tests share (a module of its own: test
modules import it by name, which a conftest cannot safely be)."""

from __future__ import annotations

import nbflow
from nbflow.results import INLINE_LIMIT


class Log:
    """The names of the tasks that ran, in order, across all runs of a test."""

    def __init__(self):
        self.calls: list[str] = []

    def __call__(self, name: str) -> None:
        self.calls.append(name)

    def take(self) -> list[str]:
        """What ran since the last take, sorted (the order of parallel tasks varies)."""
        out, self.calls = sorted(self.calls), []
        return out



def pipeline(flow: nbflow.Flow, log: Log, fail: set[str] | None = None, big: bool = False
             ) -> nbflow.Flow:
    """extract -> transform -> load, plus an independent side task returning None.

    A task whose name is in the set ``fail`` when it runs raises ValueError
    (a set, so changing it does not change the tasks' keys).  With ``big``,
    extract's result is too big to be stored with its event: it goes to a file.
    """
    fail = set() if fail is None else fail
    rows = [1, 2, 3] + [0] * (INLINE_LIMIT if big else 0)

    def check(name: str) -> None:
        log(name)
        if name in fail:
            raise ValueError(f"{name} broke")

    @flow.task
    def extract():
        check("extract")
        return rows

    @flow.task
    def transform(extract):
        check("transform")
        return [x * 10 for x in extract]

    @flow.task
    def load(transform):
        check("load")
        return sum(transform)

    @flow.task
    def side():
        check("side")

    return flow
