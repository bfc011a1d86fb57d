"""core/weakcache.py: answers for the object asked, never another's, and forgets it."""

import gc

from nbflow.core.weakcache import WeakCache


def make(n):
    def f():
        return n
    return f


def test_alternating_objects_get_their_own_values():
    cache, a, b = WeakCache(), make(1), make(2)
    cache.put(a, "a")
    cache.put(b, "b")
    assert [cache.get(x) for x in (a, b, a, a, b)] == ["a", "b", "a", "a", "b"]
    assert cache.get(make(3)) is None


def test_a_dropped_object_is_forgotten_and_its_id_not_confused():
    cache = WeakCache()
    f = make(1)
    cache.put(f, "first")
    assert cache.get(f) == "first"
    del f
    gc.collect()
    assert len(cache._map) == 0
    g = make(2)   # may reuse the dropped function's address
    assert cache.get(g) is None


def test_an_object_without_weak_references_is_not_cached():
    cache = WeakCache()
    cache.put(1, "one")
    assert cache.get(1) is None
