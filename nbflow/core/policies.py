"""Ready-queue policies: which ready task a free worker gets next.

The protocol
------------
A policy is one object with a ``name`` and one method::

    prepare(run: RunInfo) -> Callable[[], ReadyQueue]

called once per run with what a policy may need (the graph, the specs, the
clock, the expected durations from the history, the deadlines, the priorities
after inheritance).  It returns a factory of empty ready queues that share the
run's ranking; the scheduler makes one queue, or one per combination of pools
when the flow has pools, and compares their heads.  A :class:`ReadyQueue` has
``push(i)``, ``pop() -> i`` (the best), ``peek() -> i`` (the best, left
queued), ``head()`` (the rank of the best, a tuple, smaller is better,
comparable between queues of one run at one instant)
and ``final(i)``: True when no task that becomes ready later can rank above
``i`` (then queueing ``i`` ahead of a busy worker cannot break the policy's
order; see ``scheduler.py``; :class:`Future` answers it for fixed keys).
Policies are configuration: one object may serve many runs.

Adding a policy with a fixed key per task is one subclass of :class:`Keyed`
with a ``keys(run)`` method (smaller first); the keys become ranks once per
run and a :class:`RankQueue` orders them with nothing allocated per push.  A policy that reads expected
durations sets ``needs_history = True``, so the run loads them from the store.

Ties always break by ready order (first ready, first started), so a policy
whose keys are all equal is exactly fifo (and gets the fifo queue), and all of them are deterministic:
tasks that become ready together (the roots, or the dependents of one task)
become ready in declaration order.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import numbers
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Protocol, cast

from .clock import Clock
from .graph import Graph

if TYPE_CHECKING:   # spec.py takes its defaults from options.py, which names the policies
    from .spec import TaskSpec

#: Seconds assumed for a task with neither ``expected=`` nor a history.
DEFAULT_EXPECTED = 1.0

#: A queue's head: compared lexicographically, smaller first (keys are a policy's own).
Rank = tuple[Any, ...]
#: A heap entry of :class:`AgingHeapQueue`: ``(key, ready order, task)``.
HeapEntry = tuple[Any, int, int]
#: An entry of one of :class:`AgingQueue`'s heaps: ``(rank or time, seq, task)``, or
#: ``(seq, task)`` at the cap; the last two are always the seq and the task.
AgingEntry = tuple[float, int, int] | tuple[int, int]


class ReadyQueue(Protocol):
    def push(self, i: int) -> None: ...
    def pop(self) -> int: ...
    def head(self) -> Rank: ...
    def peek(self) -> int: ...
    def final(self, i: int) -> bool: ...
    def ranked(self) -> list[tuple[Rank, int]]: ...
    def __len__(self) -> int: ...


class Policy(Protocol):
    """See the module's docstring."""

    name: str

    def prepare(self, run: RunInfo) -> Callable[[], ReadyQueue]: ...


class RunInfo:
    """What a policy may read about a run, each part computed on first use (a
    fifo run reads none of it) and then kept for the run.

    ``expected[i]``: the task's ``expected=``, else the median of its last
    succeeded durations in ``history`` (same flow, task and code), else
    :data:`DEFAULT_EXPECTED`; ``source[i]`` says which.  ``deadlines[i]``: an
    absolute time (clock seconds) or None.  ``priorities[i]``: the declared
    priority, raised to that of any task waiting on it when ``inherit_priority``.
    """

    def __init__(self, graph: Graph, specs: Sequence[TaskSpec], clock: Clock,
                 history: Mapping[str, float] | None = None, inherit_priority: bool = False):
        self.graph, self.specs, self.clock = graph, specs, clock
        self.history = history or {}
        self.inherit_priority = inherit_priority
        self.start = clock.now()

    @functools.cached_property
    def expected(self) -> list[float]:
        history, default = self.history, DEFAULT_EXPECTED
        return [float(s.expected) if s.expected is not None else history.get(s.name, default)
                for s in self.specs]

    @functools.cached_property
    def source(self) -> list[str]:
        history = self.history
        return ["declared" if s.expected is not None else "history" if s.name in history
                else "default" for s in self.specs]

    @functools.cached_property
    def deadlines(self) -> list[float | None]:
        return [None if s.deadline is None else absolute(s.deadline, self.start)
                for s in self.specs]

    @functools.cached_property
    def priorities(self) -> list[int]:
        own = [s.priority for s in self.specs]
        return inherited(own, self.graph) if self.inherit_priority else own


def inherited(priorities: Sequence[int], graph: Graph) -> list[int]:
    """Each task's priority raised to the highest of the tasks waiting on it,
    directly or not (reverse topological order: successors first)."""
    out, succs = list(priorities), graph.succs
    for level in reversed(graph.levels_idx):
        for i in level:
            for s in succs[i]:
                if out[s] > out[i]:
                    out[i] = out[s]
    return out


def absolute(deadline: float | datetime, start: float) -> float:
    """A ``deadline=`` as clock time: seconds after ``start``, or a datetime's timestamp."""
    return deadline.timestamp() if isinstance(deadline, datetime) else start + deadline


class FifoQueue:
    """First ready, first out (a deque: the cheapest queue, nbflow's hot path)."""

    def __init__(self, order: list[int], seq: Iterator[int]):
        self._q: deque[int] = deque()
        self._order, self._seq = order, seq
        self.pop = self._q.popleft

    def push(self, i: int) -> None:
        self._order[i] = next(self._seq)
        self._q.append(i)

    def head(self) -> Rank:
        return (self._order[self._q[0]],)

    def peek(self) -> int:
        return self._q[0]

    def ranked(self) -> list[tuple[Rank, int]]:
        """``(rank, task)`` of every queued task (a stepped simulation shows them)."""
        return [((self._order[i],), i) for i in self._q]

    def final(self, i: int) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._q)


class Fifo:
    """First ready, first started."""

    name = "fifo"

    def prepare(self, run: RunInfo) -> Callable[[], FifoQueue]:
        order, seq = [0] * len(run.specs), itertools.count()
        return lambda: FifoQueue(order, seq)


def ranks(keys: Sequence[Any]) -> tuple[list[int], list[int]] | None:
    """A run's fixed keys as dense ranks, or None when they are all equal.

    ``rank[i]`` is 0 for the smallest key, and equal keys share one rank;
    ``order`` is the tasks by rank, declaration order within one (the one sort
    of a run: a stable sort of task numbers, no ``(key, i)`` tuple per task).
    """
    if not keys or min(keys) == max(keys):
        return None
    order = sorted(range(len(keys)), key=keys.__getitem__)
    rank = [0] * len(keys)
    r, last = 0, keys[order[0]]
    for i in order:
        key = keys[i]
        if key != last:
            r, last = r + 1, key
        rank[i] = r
    return rank, order


class Future:
    """The ranks of the tasks that may still become ready: not queued yet, or
    queued but with retries (a retry comes back).

    Queues mark what they push in ``queued`` (a bytearray: no call on the hot
    path); ``final`` walks the tasks by rank once over the whole run.
    """

    def __init__(self, rank: list[int], order: list[int], specs: Sequence[TaskSpec]):
        self.rank, self._order = rank, order
        self.queued = bytearray(len(rank))
        self._retries = list(map(attrgetter("retries"), specs))
        self._next = 0

    def final(self, i: int) -> bool:
        """No task that becomes ready after ``i`` can rank above it."""
        order, queued, retries = self._order, self.queued, self._retries
        while self._next < len(order):
            j = order[self._next]
            if not queued[j] or retries[j]:
                return self.rank[i] <= self.rank[j]
            self._next += 1
        return True


class RankQueue:
    """Smallest rank first, ties by ready order, with nothing allocated per push.

    One FIFO per rank, linked through ``link`` (task -> the task queued after it
    in its rank; one array shared by a run's queues, since a task is in one
    queue at a time), and a heap of the ranks that have tasks queued: small ints
    that exist already, compared in C.  Few distinct keys (priorities) make a
    small heap; a push or pop then costs a few list indexings.
    """

    def __init__(self, future: Future, levels: int, link: list[int], order: list[int],
                 seq: Iterator[int]):
        self._rank, self._link, self._order, self._seq = future.rank, link, order, seq
        self._first, self._last = [-1] * levels, [-1] * levels
        self._ranks: list[int] = []
        self._queued = future.queued
        self.final = future.final
        self._n = 0

    def push(self, i: int) -> None:
        r = self._rank[i]
        self._queued[i] = 1
        self._order[i] = next(self._seq)
        first, last = self._first, self._last
        if first[r] < 0:
            first[r] = i
            heapq.heappush(self._ranks, r)
        else:
            self._link[last[r]] = i
        last[r] = i
        self._n += 1

    def pop(self) -> int:
        ranks, first = self._ranks, self._first
        r = ranks[0]
        i = first[r]
        if i == self._last[r]:
            heapq.heappop(ranks)
            first[r] = -1
        else:
            first[r] = self._link[i]
        self._n -= 1
        return i

    def head(self) -> Rank:
        i = self._first[self._ranks[0]]
        return (self._rank[i], self._order[i])

    def peek(self) -> int:
        return self._first[self._ranks[0]]

    def ranked(self) -> list[tuple[Rank, int]]:
        """``(rank, task)`` of every queued task, best first."""
        out, link, order = [], self._link, self._order
        for r in sorted(self._ranks):
            i = self._first[r]
            out.append(((r, order[i]), i))
            while i != self._last[r]:
                i = link[i]
                out.append(((r, order[i]), i))
        return out

    def __len__(self) -> int:
        return self._n


class Keyed:
    """A policy with one fixed key per task for the whole run (smaller first).

    The keys become dense ranks once per run (:func:`ranks`), queued in a
    :class:`RankQueue`; keys that are all equal order nothing, so the run gets
    the fifo queue itself.
    """

    name = ""

    def keys(self, run: RunInfo) -> list[Any]:
        raise NotImplementedError

    def prepare(self, run: RunInfo) -> Callable[[], RankQueue | FifoQueue]:
        ranked = ranks(self.keys(run))
        if ranked is None:
            return Fifo().prepare(run)
        rank, order = ranked
        future, levels = Future(rank, order, run.specs), rank[order[-1]] + 1
        link, ready_order, seq = [-1] * len(rank), [0] * len(rank), itertools.count()
        return lambda: RankQueue(future, levels, link, ready_order, seq)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Priority(Keyed):
    """Highest ``priority`` first (after inheritance, when the run asks for it)."""

    name = "priority"

    def keys(self, run: RunInfo) -> list[Any]:
        return [-p for p in run.priorities]


class ShortestJobFirst(Keyed):
    """Shortest expected duration first (``RunInfo.expected``)."""

    name = "sjf"
    needs_history = True   # RunInfo.expected from the store, for tasks without expected=

    def keys(self, run: RunInfo) -> list[Any]:
        return run.expected


class EarliestDeadlineFirst(Keyed):
    """Earliest effective deadline first; tasks without one after those with one.

    A task's effective deadline is the earliest of its own and, for each task
    waiting on it, that task's effective deadline minus its expected duration:
    the latest moment it may end for everything after it to make its deadline.
    """

    name = "edf"
    needs_history = True   # RunInfo.expected from the store, for tasks without expected=

    def keys(self, run: RunInfo) -> list[Any]:
        exp, succs = run.expected, run.graph.succs
        due = [math.inf if d is None else d for d in run.deadlines]
        for level in reversed(run.graph.levels_idx):
            for i in level:
                for s in succs[i]:
                    latest = due[s] - exp[s]
                    if latest < due[i]:
                        due[i] = latest
        return due


class CriticalPath(Keyed):
    """Highest upward rank first: own expected duration plus the largest rank
    among the tasks waiting on it (HEFT's rank), computed once per run."""

    name = "critical_path"
    needs_history = True   # RunInfo.expected from the store, for tasks without expected=

    def keys(self, run: RunInfo) -> list[Any]:
        exp, succs = run.expected, run.graph.succs
        rank = list(exp)
        of = rank.__getitem__
        for level in reversed(run.graph.levels_idx):
            for i in level:
                if succs[i]:
                    rank[i] = exp[i] + max(map(of, succs[i]))
        return [-r for r in rank]


class AgingHeapQueue:
    """Aging without a cap: at one instant the order of ``priority + rate * (now -
    ready_at)`` is that of the fixed key ``rate * ready_at - priority``, so it is
    a plain heap whose key is made at push time (head ranks stay comparable
    between queues: the ``rate * now`` they leave out is common to all)."""

    def __init__(self, prio: Sequence[int], rate: float, clock: Clock, future: Future,
                 seq: Iterator[int]):
        self._heap: list[HeapEntry] = []
        self._prio, self._rate, self._now, self._seq = prio, rate, clock.now, seq
        self._queued = future.queued
        self.final = future.final

    def push(self, i: int) -> None:
        self._queued[i] = 1
        heapq.heappush(self._heap, (self._rate * self._now() - self._prio[i], next(self._seq), i))

    def pop(self) -> int:
        return heapq.heappop(self._heap)[2]

    def head(self) -> Rank:
        return self._heap[0][:2]

    def peek(self) -> int:
        return self._heap[0][2]

    def ranked(self) -> list[tuple[Rank, int]]:
        """``(rank, task)`` of every queued task (a stepped simulation shows them)."""
        return [(e[:2], e[2]) for e in self._heap]

    def __len__(self) -> int:
        return len(self._heap)


class AgingQueue:
    """Highest ``priority + rate * seconds ready`` first, at most ``cap``.

    At one instant the uncapped order is that of ``priority - rate * ready_at``
    (the ``+ rate * now`` is common to all), a fixed key, so it is one heap.  A
    task reaches the cap at a known time; from then on it ranks at the cap by
    ready order.  Three heaps: uncapped, at the cap, and above it (declared
    at or over the cap: those never age).  Entries leave lazily.
    """

    def __init__(self, prio: Sequence[int], rate: float, cap: float | None, clock: Clock,
                 future: Future, seq: Iterator[int]):
        self._prio, self._rate, self._cap, self._now = prio, rate, cap, clock.now
        self._seq = seq
        self._queued = future.queued
        self.final = future.final   # on -priority: the highest priority that may still come
        self._aging: list[tuple[float, int, int]] = []    # (-(p - rate * ready_at), seq, i)
        self._reach: list[tuple[float, int, int]] = []    # (time it reaches the cap, seq, i)
        self._capped: list[tuple[int, int]] = []          # (seq, i)
        self._fixed: list[tuple[float, int, int]] = []    # (-p, seq, i): p >= cap
        self._live: set[int] = set()      # seqs still queued
        self._at_cap: set[int] = set()    # seqs moved from _aging to _capped
        self._n = 0

    def push(self, i: int) -> None:
        p, t, k = self._prio[i], self._now(), next(self._seq)
        self._queued[i] = 1
        cap = self._cap
        self._n += 1
        self._live.add(k)
        if cap is not None and p >= cap:
            heapq.heappush(self._fixed, (-p, k, i))
            return
        heapq.heappush(self._aging, (-(p - self._rate * t), k, i))
        if cap is not None and self._rate > 0:
            heapq.heappush(self._reach, (t + (cap - p) / self._rate, k, i))

    def _best_heap(self) -> tuple[Rank, list[Any]]:
        now, live = self._now(), self._live
        while self._reach and self._reach[0][0] <= now:
            _, k, i = heapq.heappop(self._reach)
            if k in live:
                self._at_cap.add(k)
                heapq.heappush(self._capped, (k, i))
        at_cap = self._at_cap
        # The three heaps' entries differ in shape (AgingEntry), which a list type
        # cannot say for one variable: the entries taken out are typed instead.
        found: list[tuple[Rank, list[Any]]] = []
        heap: list[Any]
        aging: list[Any] = self._aging
        rank: Callable[[Any], Rank]
        for heap, rank in ((aging, lambda e: (e[0] - self._rate * now, e[1])),
                           (self._capped, lambda e: (-cast(float, self._cap), e[0])),
                           (self._fixed, lambda e: (e[0], e[1]))):
            while heap and (heap[0][-2] not in live
                            or (heap is aging and heap[0][-2] in at_cap)):
                heapq.heappop(heap)
            if heap:
                found.append((rank(heap[0]), heap))
        return min(found, key=lambda f: f[0])

    def pop(self) -> int:
        _, heap = self._best_heap()
        entry: AgingEntry = heapq.heappop(heap)
        self._live.discard(entry[-2])
        self._at_cap.discard(entry[-2])
        self._n -= 1
        return entry[-1]

    def head(self) -> Rank:
        return self._best_heap()[0]

    def peek(self) -> int:
        entry: AgingEntry = self._best_heap()[1][0]
        return entry[-1]

    def ranked(self) -> list[tuple[Rank, int]]:
        """``(rank, task)`` of every queued task, ranked as :meth:`pop` would now."""
        if not self._n:
            return []
        self._best_heap()   # what pop does first: tasks that reached the cap move
        now, live, at_cap, rate = self._now(), self._live, self._at_cap, self._rate
        out = [((e[0] - rate * now, e[1]), e[2]) for e in self._aging
               if e[1] in live and e[1] not in at_cap]
        # Only a queue with a cap moves entries to _capped.
        out += [((-cast(float, self._cap), e[0]), e[1]) for e in self._capped if e[0] in live]
        out += [((e[0], e[1]), e[2]) for e in self._fixed if e[1] in live]
        return out

    def __len__(self) -> int:
        return self._n


class Aging:
    """Priority that grows while a task waits ready: ``priority + rate * seconds``
    since it became ready (waiting on dependencies does not count), never above
    ``cap`` (None: no cap).

    Bound: under a stream of tasks of priority at most ``P``, a ready task of
    priority ``p`` outranks every newcomer after ``(P - p) / rate`` seconds, so
    it starts at the first free worker after that (a cap below ``P`` voids this).

    Raises
    ------
    ValueError
        a negative or non-numeric ``rate`` or ``cap``.
    """

    name = "aging"

    def __init__(self, rate: float = 1.0, cap: float | None = None):
        for what, value, want in (("rate", rate, " >= 0 (priority points per second ready)"),
                                  ("cap", cap, "")):
            if value is None and what == "cap":
                continue
            if (not isinstance(value, numbers.Real) or isinstance(value, bool)
                    or not math.isfinite(value) or (what == "rate" and value < 0)):
                raise ValueError(f"Aging: {what} must be a finite number{want}, got {value!r}; "
                                 "e.g. nbflow.policies.Aging(rate=1.0, cap=10)")
        self.rate, self.cap = float(rate), cap

    def prepare(self, run: RunInfo) -> Callable[[], AgingQueue | AgingHeapQueue | FifoQueue]:
        prio, seq = run.priorities, itertools.count()
        ranked = ranks([-p for p in prio])
        if ranked is None:
            # Equal priorities age alike, so the oldest ranks first, capped or not.
            return Fifo().prepare(run)
        future = Future(*ranked, run.specs)
        if self.cap is None:
            return lambda: AgingHeapQueue(prio, self.rate, run.clock, future, seq)
        return lambda: AgingQueue(prio, self.rate, self.cap, run.clock, future, seq)

    def __repr__(self) -> str:
        return f"Aging(rate={self.rate:g}, cap={self.cap!r})"


POLICIES: dict[str, Callable[[], Policy]] = {cls.name: cls for cls in (
    Fifo, Priority, Aging, ShortestJobFirst, EarliestDeadlineFirst, CriticalPath)}


def make_policy(policy: Any) -> Policy:
    """A policy object from its name, or ``policy`` itself if it is one.

    Raises
    ------
    ValueError
        naming the known policies, if ``policy`` is an unknown name.
    TypeError
        ``policy`` is neither a name nor an object with ``prepare``.
    """
    if isinstance(policy, str):
        try:
            return POLICIES[policy]()
        except KeyError:
            raise ValueError(f"unknown policy {policy!r}; choose one of: "
                             f"{', '.join(sorted(POLICIES))} (or pass a policy object "
                             "from nbflow.policies)") from None
    if not callable(getattr(policy, "prepare", None)):
        raise TypeError(f"policy must be a name ({', '.join(sorted(POLICIES))}) or a policy "
                        f"object such as nbflow.policies.Aging(rate=1.0); got {policy!r:.80}")
    return cast(Policy, policy)   # an object with prepare(): a policy by duck typing


def policy_name(policy: Any) -> str:
    """How a run records its policy: the name, or the object's repr (its parameters)."""
    return policy if isinstance(policy, str) else repr(policy)
