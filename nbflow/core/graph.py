"""Task names and dependencies -> an indexed DAG with Kahn levels.

Tasks are numbered in declaration order; that number is the tie-break everywhere
(ready queues, level listings), so dashboards and logs read the same from run to
run whatever the hash seed.  Edges are stored twice, as predecessor and successor
tuples of ints, because the engine walks both directions on its hot path.

Validation happens here, once, before anything runs: duplicate names, unknown
dependencies (with close-name suggestions) and cycles (named as a chain).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence

from ..errors import CycleError, DuplicateTaskError, UnknownDependencyError


class Graph:
    """An immutable DAG over task names.

    Parameters
    ----------
    names
        Task names in declaration order.
    deps
        For each name, the names it depends on (same order as ``names``).

    Raises
    ------
    DuplicateTaskError, UnknownDependencyError, CycleError
    """

    __slots__ = ("index", "level", "levels_idx", "names", "preds", "succs")

    def __init__(self, names: Sequence[str], deps: Sequence[Iterable[str]]):
        self.names: list[str] = list(names)
        n = len(self.names)
        index = dict(zip(self.names, range(n)))
        if len(index) != n:
            seen: set[str] = set()
            for dup in self.names:   # stops at the first name seen before
                if dup in seen:
                    break
                seen.add(dup)
            raise DuplicateTaskError(
                f"two tasks are named {dup!r}. Task names must be unique in a flow: "
                "rename one of them.")
        self.index = index
        # An iterator of names (a generator) is read once here: the lookup below
        # may need a second pass to say which task named an unknown one.
        deps = [ds if type(ds) is tuple else tuple(ds) for ds in deps]
        if len(deps) != n:
            raise ValueError(f"{n} names but {len(deps)} dependency lists")
        # The common case in one comprehension (this is most of levelling's time at
        # 100,000 tasks); an unknown name is looked for again to say whose it is.
        get = index.__getitem__
        try:
            preds = [tuple(dict.fromkeys(map(get, ds))) if ds else () for ds in deps]
        except KeyError:
            for i, ds in enumerate(deps):
                for d in ds:
                    if d not in index:
                        raise UnknownDependencyError(
                            self.names[i], d, close_names(d, self.names)) from None
            raise
        succ_lists: list[list[int]] = [[] for _ in range(n)]
        for i, p in enumerate(preds):
            for j in p:
                succ_lists[j].append(i)
        self.preds = preds
        # Kept as built: turning 100,000 lists into tuples costs more than it guards.
        self.succs = succ_lists
        self.level, self.levels_idx = self._kahn()

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Iterable[str]]) -> Graph:
        """Build from ``{name: deps}``; a dependency that is not a key is an error."""
        return cls(list(mapping), list(mapping.values()))

    def __len__(self) -> int:
        return len(self.names)

    def _kahn(self) -> tuple[list[int], list[list[int]]]:
        # Each Kahn frontier is exactly one level, so levelling and the cycle check
        # are the same pass; nodes never reached are on or behind a cycle.
        n = len(self.names)
        indeg = [len(p) for p in self.preds]
        level = [-1] * n
        succs = self.succs
        frontier = [i for i in range(n) if not indeg[i]]
        levels: list[list[int]] = []
        depth = 0
        reached = 0
        while frontier:
            frontier.sort()
            levels.append(frontier)
            reached += len(frontier)
            nxt = []
            for i in frontier:
                level[i] = depth
                for s in succs[i]:
                    indeg[s] -= 1
                    if not indeg[s]:
                        nxt.append(s)
            frontier = nxt
            depth += 1
        if reached != n:
            raise CycleError([self.names[i] for i in self._find_cycle(level)])
        return level, levels

    def _find_cycle(self, level: list[int]) -> list[int]:
        # Every unlevelled node has an unlevelled predecessor (else Kahn would have
        # reached it), so walking predecessors must revisit a node: that is a cycle.
        start = next(i for i, lv in enumerate(level) if lv < 0)
        seen: dict[int, int] = {}
        path: list[int] = []
        node = start
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = next(p for p in self.preds[node] if level[p] < 0)
        cycle = path[seen[node]:]
        cycle.reverse()  # predecessor walk -> dependency order: a -> b means b needs a
        # Start at the task declared first, so the message reads the same whichever
        # node the walk happened to start from.
        first = cycle.index(min(cycle))
        cycle = cycle[first:] + cycle[:first]
        return [*cycle, cycle[0]]

    # -- queries ---------------------------------------------------------------
    def levels(self) -> list[list[str]]:
        """Kahn levels as lists of names, each in declaration order."""
        return [[self.names[i] for i in lv] for lv in self.levels_idx]

    def descendants(self, name: str) -> set[str]:
        """Every task that depends on ``name``, directly or not."""
        return {self.names[i] for i in self._reach(self.index[name], self.succs)}

    def ancestors(self, name: str) -> set[str]:
        """Every task ``name`` depends on, directly or not."""
        return {self.names[i] for i in self._reach(self.index[name], self.preds)}

    @staticmethod
    def _reach(start: int, edges: Sequence[Sequence[int]]) -> set[int]:
        seen: set[int] = set()
        stack = list(edges[start])
        while stack:
            i = stack.pop()
            if i not in seen:
                seen.add(i)
                stack.extend(edges[i])
        return seen

    def critical_path(self, durations: Mapping[str, float] | Sequence[float]) -> tuple[float, list[str]]:
        """Longest path by summed durations: ``(length, names along it)``.

        ``durations`` is a mapping by name or a sequence in declaration order.
        """
        dur = ([durations[n] for n in self.names] if isinstance(durations, Mapping)
               else list(durations))
        finish = [0.0] * len(self.names)
        via = [-1] * len(self.names)
        for lv in self.levels_idx:
            for i in lv:
                best = -1
                for p in self.preds[i]:
                    if best < 0 or finish[p] > finish[best]:
                        best = p
                via[i] = best
                finish[i] = dur[i] + (finish[best] if best >= 0 else 0.0)
        if not finish:
            return 0.0, []
        end = max(range(len(finish)), key=finish.__getitem__)
        path = []
        while end >= 0:
            path.append(self.names[end])
            end = via[end]
        path.reverse()
        return finish[self.index[path[-1]]], path


def close_names(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Candidate names close to ``word``, best first (for "did you mean" hints).

    Equally close names come in ``candidates`` order (declaration order), not in
    difflib's reverse-alphabetical one, and each name comes once.
    """
    matcher = difflib.SequenceMatcher(b=word)
    scored = []
    for k, name in enumerate(dict.fromkeys(candidates)):
        matcher.set_seq1(name)
        if matcher.real_quick_ratio() >= 0.6 and matcher.quick_ratio() >= 0.6:
            score = matcher.ratio()
            if score >= 0.6:
                scored.append((-score, k, name))
    return [name for _, _, name in sorted(scored)[:n]]
