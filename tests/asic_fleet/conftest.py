"""Fixtures for fleet tests: a simulated fleet on its own loopback /24 per test, and an update recorder.

Each test gets a fresh 127.A.B.0/24: A is picked from the process id so that
test runs of other areas (which use other 127.x ranges) and parallel runs do not
collide, B counts up per test. A base whose addresses are taken is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from edge_agent.collectors.asic.fleet import AsicFleet
from edge_agent.config import AsicConfig, parse_target
from edge_agent.model import Event, Snapshot, Update
from edge_agent.sim.server import SimFleet

_OCTET = 150 + os.getpid() % 100
_NEXT = itertools.count(1)


class Recorder:
    """The sink side of `emit`: every update kept, plus the latest snapshot per device."""

    def __init__(self) -> None:
        self.updates: list[Update] = []
        self.latest: dict[str, Snapshot] = {}
        self.counts: dict[str, int] = {}
        self.events: list[Event] = []
        self.removed: list[tuple[str, str]] = []

    def __call__(self, update: Update) -> None:
        self.updates.append(update)
        for snap in update.snapshots:
            self.latest[snap.device] = snap
            self.counts[snap.device] = self.counts.get(snap.device, 0) + 1
        self.events.extend(update.events)
        for key in update.removed:
            self.removed.append(key)
            self.latest.pop(key[1], None)

    def miners(self) -> dict[str, Snapshot]:
        return {k: s for k, s in self.latest.items() if s.source == "asic"}

    def events_of(self, device: str) -> list[Event]:
        return [e for e in self.events if e.device == device]


def value(snap: Snapshot, key: str, **labels: str) -> float | None:
    """The reading `key` (with these labels, if given) in `snap`, or None."""
    for r in snap.readings:
        if r.key == key and all(dict(r.labels).get(k) == v for k, v in labels.items()):
            return r.value
    return None


async def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:  # noqa: ASYNC109
    """Wait until `predicate()` is true, checking every few milliseconds, failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def asic_config(*targets: str, **overrides: Any) -> AsicConfig:
    """An AsicConfig for tests: short interval and timeouts unless overridden."""
    base: dict[str, Any] = {
        "enabled": True,
        "targets": tuple(parse_target(f"asic.targets[{i}]", t) for i, t in enumerate(targets)),
        "interval": 0.5,
        "timeout": 0.4,
        "concurrency": 64,
        "scan_interval": 600.0,
        "scan_timeout": 0.4,
        "forget_after": 600.0,
        "backoff_max": 4.0,
        "max_response_bytes": 64 << 10,
    }
    base.update(overrides)
    return AsicConfig(**base)


MakeSim = Callable[..., Awaitable[SimFleet]]


@pytest.fixture
async def make_sim() -> AsyncIterator[MakeSim]:
    """`await make_sim(count, **SimFleet kwargs)` starts a fleet on a fresh /24; all are stopped after."""
    started: list[SimFleet] = []

    async def make(count: int, **kwargs: Any) -> SimFleet:
        kwargs.setdefault("evolve_interval", 0.0)
        for _ in range(20):
            base = f"127.{_OCTET}.{next(_NEXT) % 256}.0"
            sim = SimFleet(count, base=base, **kwargs)
            try:
                await sim.start()
            except OSError:
                continue
            started.append(sim)
            return sim
        raise RuntimeError("no free loopback /24 for the simulated fleet")

    yield make
    for sim in started:
        await sim.stop()


@contextlib.asynccontextmanager
async def running(fleet: AsicFleet, recorder: Recorder) -> AsyncIterator[AsicFleet]:
    """Run `fleet` in a task for the duration of the block, then cancel it cleanly."""
    task = asyncio.create_task(fleet.run(recorder), name="asic-fleet")
    try:
        yield fleet
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
