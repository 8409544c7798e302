"""Garbage collection for a process that holds state for every miner.

At 10,000 miners the agent keeps hundreds of thousands of long-lived tracked
objects (per-miner fleet state, label tuples, cached renderings; until the
runtime stopped keeping whole snapshots, about 300,000 `Reading`s), and each
poll's replace the previous ones. CPython
never untracks a tuple subclass, and every snapshot lives long enough to reach
the oldest generation, so with the default settings a full collection ran every
4-5 s and traversed all of them: 150-260 ms each with the GIL held, about 5 % of
a core and event-loop stalls of a quarter of a second (bench/fleet.py with a
gc.callbacks probe, 2 cores, 2026-11).

The policy: after each collection of the oldest generation, move the survivors
to the permanent generation (`gc.freeze()`), so the next one traverses only what
was promoted since. Frozen objects are still freed by reference counting; only
a cycle that becomes garbage while frozen waits, so every `FULL_EVERY` seconds
the survivors are unfrozen and the next oldest-generation collection sweeps
everything once.
"""

from __future__ import annotations

import gc
import time
from typing import Any

FULL_EVERY = 600.0


class _Policy:
    __slots__ = ("next_full",)

    def __init__(self) -> None:
        self.next_full = time.monotonic() + FULL_EVERY

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != 2:
            return
        now = time.monotonic()
        if now >= self.next_full:
            self.next_full = now + FULL_EVERY
            gc.unfreeze()  # the next full collection sees every object again
        else:
            gc.freeze()


_installed: list[_Policy] = []


def install() -> None:
    """Apply the policy to this process (idempotent). Call once the agent has started up."""
    if _installed:
        return
    policy = _Policy()
    _installed.append(policy)
    gc.freeze()  # what start-up built (modules, tables, config) is never garbage
    gc.callbacks.append(policy)


def uninstall() -> None:
    """Remove the policy and unfreeze (for tests and embedding)."""
    while _installed:
        gc.callbacks.remove(_installed.pop())
    gc.unfreeze()
