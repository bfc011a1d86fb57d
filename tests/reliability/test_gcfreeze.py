"""frozen() hides existing objects from the collector, and makes young collections
rarer, while any run is inside it."""

import gc
import threading

from nbflow.core.gcfreeze import YOUNG, frozen


def test_nested_and_concurrent_blocks_unfreeze_once_the_last_ends():
    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    inside, leave = threading.Event(), threading.Event()

    def other_run():
        with frozen():
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other_run)
    with frozen():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG, *before[1:])
        t.start()
        inside.wait(10)
    assert gc.get_freeze_count() > 0      # the other run is still inside
    assert gc.get_threshold()[0] == YOUNG
    leave.set()
    t.join(10)
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
