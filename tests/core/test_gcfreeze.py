"""frozen() hides existing objects from the collector while any run is inside it."""

import gc
import threading

from nbflow.core.gcfreeze import frozen


def test_nested_and_concurrent_blocks_unfreeze_once_the_last_ends():
    assert gc.get_freeze_count() == 0
    inside, leave = threading.Event(), threading.Event()

    def other_run():
        with frozen():
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other_run)
    with frozen():
        frozen_now = gc.get_freeze_count()
        assert frozen_now > 0
        t.start()
        inside.wait(10)
    assert gc.get_freeze_count() > 0      # the other run is still inside
    leave.set()
    t.join(10)
    assert gc.get_freeze_count() == 0
