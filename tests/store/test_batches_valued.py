"""batches._split_valued: each result's pickle lands in its own event's row, whatever
the numbering of the batch."""

from nbflow.store.batches import Statements


def events(seqs):
    return [("r", s, f"t{s}", 1, "running", "succeeded", 1.0 + s, None) for s in seqs]


def rows_of(seqs, values):
    st = Statements("qmark", False)
    out = dict(st.build([("tasks", "r", [(f"t{s}", s, 0, "[]", "function", None)
                                          for s in seqs]),
                         ("valued_events", "r", (events(seqs), values))]))
    plain = [row[1] for row in out.get(st._sql_event, [])]
    valued = {row[1]: row[8] for row in out.get(st._sql_valued_event, [])}
    return plain, valued


def test_consecutive_batch():
    assert rows_of([5, 6, 7, 8], {6: b"x", 8: b"y"}) == ([5, 7], {6: b"x", 8: b"y"})


def test_a_batch_numbered_otherwise_is_matched_by_seq():
    # not consecutive (another producer), and out of order
    assert rows_of([3, 10, 4], {10: b"x", 4: b"y"}) == ([3], {10: b"x", 4: b"y"})
    assert rows_of([2, 9], {9: b"z"}) == ([2], {9: b"z"})
    # a seq whose place in a consecutive batch holds another event
    assert rows_of([3, 5, 4], {4: b"w"}) == ([3, 5], {4: b"w"})
