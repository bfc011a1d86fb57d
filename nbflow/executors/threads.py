"""A pool of worker threads fed by one queue (the default executor).

Lighter than ``concurrent.futures``: no Future per attempt, the worker posts the
outcome straight to the engine's inbox.

While every worker is busy the engine queues up to ``lookahead`` more attempts
here, so a worker that finishes takes its next task at once instead of waiting
for the engine's turn (the round trip is most of the gap between two short
tasks: 0.2-0.3 ms here, against 0.03 ms for a queued one).  The queue is FIFO
and a worker takes the next attempt right after reporting an outcome, which is
how the engine knows when a queued attempt starts.

An abandoned attempt (timed out, or still running when a cancelled run gave up
waiting) keeps its thread until the function returns, since a thread cannot be
stopped.  The pool then may start one thread more, so the run keeps its
width (``replaces_abandoned``); the stuck thread ends when its attempt returns.
The cost: a thread, its stack and whatever the task holds, for as long as the
task runs on, which for a task that never returns is until the process ends.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.executor import Job, Report, Token
from ..core.options import check
from ..core.worker import TaskContext, execute

# Two queued attempts close the gaps between 10 ms tasks on 8 workers (one left
# a quarter of them; more gained nothing measurable: benchmarks/README.md), and
# commit the engine to as few choices as possible ahead of time.
LOOKAHEAD = 2


class ThreadExecutor:
    """Up to ``workers`` threads (default: CPU count + 4, capped at 32, as
    ThreadPoolExecutor), started when a task finds none waiting, plus one for
    each abandoned attempt whose thread is still inside it.

    ``initializer`` runs once in each worker thread before its first task; the
    notebook layer uses it to set the kernel's parent message in the thread.
    ``lookahead``: how many ready attempts may wait in the queue while every
    worker is busy (default LOOKAHEAD; 0 queues nothing, so a task that becomes
    ready later is never behind one chosen earlier).
    """

    replaces_abandoned = True

    def __init__(self, workers: int | None = None, initializer: Callable[[], None] | None = None,
                 lookahead: int | None = None):
        workers = check("workers", workers, "ThreadExecutor()")
        if lookahead is not None and lookahead < 0:
            raise ValueError(f"lookahead must be 0 or more, got {lookahead}")
        self.workers = workers or min(32, (os.cpu_count() or 1) + 4)
        self.lookahead = LOOKAHEAD if lookahead is None else lookahead
        self.initializer = initializer
        self._threads: list[threading.Thread] = []

    def start(self, report: Report) -> None:
        # Threads start on demand, as ThreadPoolExecutor's do: a chain of tasks
        # keeps passing the same thread its next task, instead of handing each
        # to the next of ``workers`` threads, which the OS wakes on whichever
        # core it last ran on (1,000 no-op tasks in a chain: a quarter faster).
        # A new queue per run: a thread an earlier run abandoned (still inside
        # a task) must not take this run's jobs, nor leave its stop signal here.
        self._report = report
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()   # None: stop
        # One entry per thread blocked waiting for a job, taken by the submit
        # that gives it one (deque appends and pops are atomic under the GIL).
        self._waiting: collections.deque[None] = collections.deque()
        # Attempts the engine gave up on (cancel()) whose threads may still be
        # inside them: each allows one thread more until its attempt returns.
        self._abandoned: set[Token] = set()

    def _work(self) -> None:
        if self.initializer is not None:
            self.initializer()
        report, jobs, waiting, abandoned = self._report, self._jobs, self._waiting, self._abandoned
        leaving = False
        while True:
            try:
                job = jobs.get_nowait()
            except queue.Empty:
                if leaving:
                    # Another thread took this one's place when its attempt was
                    # abandoned: it leaves once idle, so the pool shrinks back.
                    # (Idle, not at once: the engine counts on the thread that
                    # reports an outcome to take the next queued attempt.)
                    with contextlib.suppress(ValueError):   # gone already if the run ended
                        self._threads.remove(threading.current_thread())
                    return
                waiting.append(None)
                job = jobs.get()
            if job is None:
                return
            token, fn, kwargs, ctx = job
            report((token, execute(fn, kwargs, ctx)))
            if abandoned and token in abandoned:
                abandoned.discard(token)
                leaving = True

    def submit(self, token: Token, fn: Callable[..., Any], kwargs: dict[str, Any],
               ctx: TaskContext | None = None) -> None:
        self._jobs.put((token, fn, kwargs, ctx))
        # Only this thread pops, so a non-empty deque stays so until the pop; a
        # worker that starts waiting just after the check costs at most one
        # thread more than needed, as a pop that just missed it did.  (Catching
        # the IndexError instead: a raised exception per attempt while the
        # workers are busy, the usual case of a big run.)
        waiting = self._waiting
        if waiting:
            waiting.pop()
        else:
            self._grow()

    def _grow(self) -> None:
        """Start a thread, unless the pool has as many as it may."""
        if len(self._threads) < self.workers + len(self._abandoned):
            t = threading.Thread(target=self._work, daemon=True,
                                 name=f"nbflow-worker-{len(self._threads)}")
            t.start()
            self._threads.append(t)

    def cancel(self, token: Token) -> None:
        """Give up on ``token``: the engine discards its late result, and the pool may
        start another thread while this attempt's thread is still inside it.

        The replacement starts at once when attempts are queued: it takes the
        oldest, as the thread it replaces would have after an outcome.
        """
        self._abandoned.add(token)
        if not self._jobs.empty() and not self._waiting:
            self._grow()

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop the threads, waiting up to ``timeout`` seconds in all for them to end.

        Idle threads end at once; one still inside a task (abandoned after a
        timeout or a cancel) ends when the task returns, which a cooperative
        task does soon after its ``cancelled`` flag is set.
        """
        for _ in self._threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(deadline - time.monotonic(), 0))
        self._threads.clear()
