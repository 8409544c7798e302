"""Poll timing for the miner fleet: stable phase per miner, aligned slots, capped backoff.

Each miner gets an offset within the interval from a hash of its address, so
10,000 miners spread evenly over the interval and keep the same slot across
restarts. Deadlines are monotonic slot times `epoch + offset + k * interval`:
the next deadline is the next slot index, never "now + interval",
so a miner's polls do not drift and a late poll skips the slots it missed
instead of firing several in a row.
"""

from __future__ import annotations

import math
import zlib


def phase(key: str) -> float:
    """A stable fraction in [0, 1) for a miner id: where in the interval its polls land."""
    return zlib.crc32(key.encode()) / 4294967296.0


def slot_at_or_after(t: float, first: float, interval: float) -> int:
    """The index k of the first slot `first + k * interval` that is >= `t` (k >= 0).

    Slots are counted as integers so that "the slot after this one" is exact;
    adding intervals to a float deadline and rounding back could skip a slot.
    """
    if t <= first:
        return 0
    # The epsilon keeps t == first + k * interval (up to float error) on slot k, not k + 1.
    return max(0, math.ceil((t - first) / interval - 1e-9))


def backoff_slots(failures: int, interval: float, cap: float) -> int:
    """How many slots after a failed poll to try again: 1, doubled per further failure, capped.

    The first failure is retried at the next slot (one failed poll is often a
    transient), then 2, 4, 8... intervals, never more than `cap` (but never
    less than the interval either), rounded up to whole slots.
    """
    if failures <= 1:
        return 1
    # min() before the power keeps huge failure counts from overflowing.
    delay = min(cap, interval * 2.0 ** min(failures - 1, 62))
    return max(1, math.ceil(delay / interval - 1e-9))
