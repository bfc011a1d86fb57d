"""The one seam the engine asks "which ready tasks start now, given what is free".

The engine owns the run state; a :class:`Scheduler` owns the decision: the
policy's ready queue(s), the resource pools and their reservation.  Phases,
which change *when* a task becomes ready rather than which ready task goes
first, are :class:`Phases`, beside it.  A simulator drives the same engine and
so the same scheduler: nothing about scheduling is written twice.

Pools
-----
A task that declares ``resources={"db": 1, "api": 2}`` starts only when every
one of those slots is free, and takes them all at once (never a part, so two
tasks cannot each hold what the other waits for: no deadlock).  Its slots come
back when its attempt ends, however it ends (the engine calls :meth:`release`).

Reservation: ready tasks are considered in the policy's order; when one does not
fit, the pools it needs are closed to every task ranked below it until it
starts, so a task that needs many slots is not starved by a stream of small
ones.  Tasks that need none of those pools still go past it (backfilling), which
keeps workers busy without delaying it.

With pools the ready tasks are kept in one queue per combination of pools
(there are few), and the best head among the open ones is taken: the policy's
order is followed across them.

Lookahead
---------
An executor may take attempts ahead of a free worker (the thread pool's
``lookahead``).  An attempt queued there starts before any task that becomes
ready later, which would break the policy's order.  So :meth:`take` with
``ahead=True`` hands out a task only when the policy says it is *final*: no
task that becomes ready later can rank above it (always so for fifo; for the
others, a task with the best possible key).  Otherwise nothing is queued ahead
and the next task is chosen when a worker is free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter, methodcaller
from typing import Any

from .policies import Rank, RunInfo, make_policy
from .spec import TaskSpec

Need = tuple[tuple[str, int], ...]   # a task's (pool, slots), sorted by pool


def kinds(specs: Sequence[TaskSpec]) -> tuple[list[Need], list[int]]:
    """The distinct combinations of pools the tasks hold, and each task's by number.

    Per task only C-level steps (one tuple of its items and one look-up): the
    tasks of a big flow share a few combinations, whose checks and sorting are
    done once each.
    """
    raws = list(map(tuple, map(methodcaller("items"), map(attrgetter("resources"), specs))))
    number: dict[tuple[tuple[str, int], ...], int] = {}
    out: list[Need] = []
    for raw in dict.fromkeys(raws):
        need = tuple(sorted(raw))
        if need not in out:
            out.append(need)
        number[raw] = out.index(need)
    return out, list(map(number.__getitem__, raws))


def check_pools(specs: Sequence[TaskSpec], pools: Mapping[str, int],
                found: tuple[list[Need], list[int]] | None = None) -> None:
    """Every pool a task asks for exists and has enough slots (``found``: the
    specs' :func:`kinds`, when the caller has them).

    Raises
    ------
    ValueError
        naming the first such task, the pool and the pools there are.
    """
    if found is None:
        if not any(map(attrgetter("resources"), specs)):
            return
        found = kinds(specs)
    needs, of = found
    bad = [any(pool not in pools or n > pools[pool] for pool, n in need) for need in needs]
    if not any(bad):
        return
    spec = specs[next(i for i, k in enumerate(of) if bad[k])]
    known = ", ".join(f"{p} ({n} slots)" for p, n in pools.items()) or "none"
    for pool, n in spec.resources.items():
        if pool not in pools:
            raise ValueError(f"task {spec.name!r} asks for pool {pool!r}, which does not "
                             f"exist (pools: {known}); declare it with "
                             f"flow.pool({pool!r}, slots=N)")
        if n > pools[pool]:
            raise ValueError(f"task {spec.name!r} asks for {n} slots of pool {pool!r}, "
                             f"which has {pools[pool]}: it could never start. Ask for at "
                             f"most {pools[pool]}, or give the pool more slots")


class Scheduler:
    """Ready tasks, in the order of ``policy``, and the pools' free slots.

    Parameters
    ----------
    run
        what the policy may read (``policies.RunInfo``).
    policy
        a policy name or object (``policies.make_policy``).
    pools
        ``{pool: slots}``; every pool a task names must be here (``check_pools``).
    """

    def __init__(self, run: RunInfo, policy: Any, pools: Mapping[str, int] | None = None):
        pools = dict(pools or {})
        self.pooled = any(map(attrgetter("resources"), run.specs))
        found = kinds(run.specs) if self.pooled else None
        check_pools(run.specs, pools, found)
        self.run = run
        self.policy = make_policy(policy)
        factory = self.policy.prepare(run)
        self.free = pools
        if found is None:
            # The plain path: one queue, its methods bound (no per-task Python here).
            q = factory()
            self._q = q
            # Instance attributes over the methods: mypy forbids it, on purpose here.
            self.push = q.push   # type: ignore[method-assign]
            self.release = _nothing   # type: ignore[method-assign]
            return
        # One queue per combination of pools (there are few), made here, so a
        # push is one indexing and a fit check reads the combination, never a queue.
        needs, of = found
        self._queues = [factory() for _ in needs]
        self._kinds = needs
        self._pools_of = [frozenset(pool for pool, _ in need) for need in needs]
        self._push_of = list(map([q.push for q in self._queues].__getitem__, of))
        self._need = list(map(needs.__getitem__, of))
        # Tasks that hold no slot (they always fit), if there are any.
        self._free_anyway = self._queues[needs.index(())] if () in needs else None

    # -- the pooled path (the plain one binds these to its single queue) --------
    def push(self, i: int) -> None:
        """Task ``i`` is ready."""
        self._push_of[i](i)

    def release(self, i: int) -> None:
        """An attempt of task ``i`` ended: its slots are free again."""
        free = self.free
        for pool, n in self._need[i]:
            free[pool] += n

    def __len__(self) -> int:
        if not self.pooled:
            return len(self._q)
        return sum(map(len, self._queues))

    def ordered(self) -> list[int]:
        """The ready tasks in the policy's order, slots aside; nothing changes (for a
        stepped simulation's view of the queue)."""
        queues = self._queues if self.pooled else [self._q]
        return [i for _rank, i in sorted(p for q in queues for p in q.ranked())]

    def take(self, n: int, ahead: bool = False) -> list[int]:
        """Up to ``n`` ready tasks to start now, best first; their slots are taken.

        ``ahead``: for attempts queued ahead of busy workers, so only tasks the
        policy calls final (see the module docstring).
        """
        if not self.pooled:
            q = self._q
            n = min(n, len(q))
            if not ahead:
                pop = q.pop
                return [pop() for _ in range(n)]
            out: list[int] = []
            while len(out) < n and q.final(q.peek()):
                out.append(q.pop())
            return out
        free = self.free
        if not any(free.values()) and not (self._free_anyway and len(self._free_anyway)):
            return []   # every slot is held: only a task that needs none could start
        out, queues, pools_of = [], self._queues, self._pools_of
        closed: frozenset[str] = frozenset()   # reserved for a better task that does not fit
        while len(out) < n:
            best: Rank = ()
            k = -1
            for j, q in enumerate(queues):
                if len(q) and (not closed or closed.isdisjoint(pools_of[j])):
                    rank = q.head()
                    if k < 0 or rank < best:
                        best, k = rank, j
            if k < 0:
                break
            q = queues[k]
            if ahead and not q.final(q.peek()):
                break
            need = self._kinds[k]
            for pool, slots in need:
                if free[pool] < slots:
                    closed |= pools_of[k]
                    break
            else:
                for pool, slots in need:
                    free[pool] -= slots
                out.append(q.pop())
        return out


def _nothing(i: int) -> None:
    return None


class Phases:
    """Phases run one after another: every task of a phase ends before any task
    of the next starts.  One join point between two phases: each task of phase
    ``k+1`` counts the end of phase ``k`` as one more dependency, which ends

    * failed if a task of phase ``k`` ended failed, upstream_failed or cancelled,
    * skipped if every task of it was skipped,
    * succeeded otherwise,

    so the trigger rules decide what a failure in a phase does to the next (the
    default ``all_success`` makes it ``upstream_failed``).  Tasks outside every
    phase are not held.

    Raises
    ------
    ValueError
        a task depends on a task of a later phase, directly or through tasks
        outside the phases (it would wait for ever).
    """

    def __init__(self, specs: Sequence[TaskSpec], index: Mapping[str, int]):
        order = list(dict.fromkeys(s.phase for s in specs if s.phase is not None))
        number = {p: k for k, p in enumerate(order)}
        self.names = order
        self.of = [-1 if s.phase is None else number[s.phase] for s in specs]
        self.members: list[list[int]] = [[] for _ in order]
        for i, k in enumerate(self.of):
            if k >= 0:
                self.members[k].append(i)
        self.left = [len(m) for m in self.members]
        self.failed = [0] * len(order)
        self.skipped = [0] * len(order)
        self._check(specs, index)

    def waits(self, i: int) -> int:
        """Join points task ``i`` waits for before its dependencies count (0 or 1)."""
        return 1 if self.of[i] > 0 else 0

    def ended(self, i: int, failed: bool, skipped: bool) -> tuple[list[int], bool, bool] | None:
        """Task ``i`` ended; when that ends its phase, the next phase's tasks and how
        the phase ended: ``(tasks, ok, skipped)``."""
        k = self.of[i]
        if k < 0:
            return None
        self.left[k] -= 1
        self.failed[k] += failed
        self.skipped[k] += skipped
        if self.left[k] or k + 1 == len(self.members):
            return None
        bad, all_skipped = self.failed[k] > 0, self.skipped[k] == len(self.members[k])
        return self.members[k + 1], not bad and not all_skipped, all_skipped and not bad

    def _check(self, specs: Sequence[TaskSpec], index: Mapping[str, int]) -> None:
        # Kahn over the tasks plus one node per join point: a node never reached
        # waits, through some chain, for a later phase.
        n, njoins = len(specs), len(self.members) - 1
        succs: list[list[int]] = [[] for _ in range(n + max(njoins, 0))]
        indeg = [0] * len(succs)
        for i, s in enumerate(specs):
            for d in s.deps:
                succs[index[d]].append(i)
                indeg[i] += 1
            k = self.of[i]
            if 0 <= k < njoins:
                succs[i].append(n + k)
                indeg[n + k] += 1
            if k > 0:
                succs[n + k - 1].append(i)
                indeg[i] += 1
        frontier = [v for v, d in enumerate(indeg) if not d]
        reached = set(frontier)
        while frontier:
            v = frontier.pop()
            for w in succs[v]:
                indeg[w] -= 1
                if not indeg[w]:
                    reached.add(w)
                    frontier.append(w)
        stuck = [i for i in range(n) if i not in reached]
        if stuck:
            i = min(stuck, key=lambda j: (self.of[j], j))
            later = next((d for d in specs[i].deps if self.of[index[d]] > self.of[i]
                          or index[d] in stuck), None)
            raise ValueError(
                f"task {specs[i].name!r} (phase {self._label(i)}) waits for task {later!r} "
                f"(phase {self._label(index[later]) if later else '?'}), which cannot start "
                "before the earlier phase ends: phases run in order. Move one of them to "
                "another phase, or drop the dependency")

    def _label(self, i: int) -> str:
        k = self.of[i]
        return repr(self.names[k]) if k >= 0 else "none"
