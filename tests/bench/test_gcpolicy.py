"""The garbage-collection policy: survivors of a full collection are frozen, and unfrozen now and then."""

from __future__ import annotations

import gc
import time

from edge_agent import gcpolicy


def test_full_collection_freezes_survivors_and_the_periodic_sweep_unfreezes() -> None:
    gcpolicy.uninstall()
    try:
        gcpolicy.install()
        gcpolicy.install()  # idempotent
        assert sum(1 for cb in gc.callbacks if isinstance(cb, gcpolicy._Policy)) == 1
        keep = [[i] for i in range(1000)]  # tracked objects that survive
        gc.unfreeze()
        gc.collect()
        assert gc.get_freeze_count() >= len(keep)
        # When the sweep is due, the survivors go back to the collector's view.
        policy = gcpolicy._installed[0]
        policy.next_full = time.monotonic() - 1
        gc.collect()
        assert gc.get_freeze_count() == 0
        assert policy.next_full > time.monotonic()
        # A cycle that became garbage while frozen is collected by the sweep that follows.
        gc.collect()
        cycle: list[object] = []
        cycle.append(cycle)
        gc.collect()  # frozen with the other survivors
        del cycle
        policy.next_full = time.monotonic() - 1
        gc.collect()  # unfreezes
        assert gc.collect() >= 1
    finally:
        gcpolicy.uninstall()
    assert not any(isinstance(cb, gcpolicy._Policy) for cb in gc.callbacks)
    assert gc.get_freeze_count() == 0
