"""Immutable values that flow from collectors, through the runtime, to sinks.

Collectors produce `Snapshot`s (what one device looked like at one moment) and
`Event`s (something happened). They travel together as an `Update`. Sinks only
ever read these values; nothing downstream mutates them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

Labels = tuple[tuple[str, str], ...]


class Reading(NamedTuple):
    """One sample: a metric from the table, its value in SI base units, its labels.

    A NamedTuple rather than a dataclass: 10,000 miners produce ~400,000 of these
    per interval and tuple construction is several times cheaper.
    """

    key: str
    value: float
    labels: Labels = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one collector read from one device in one collection.

    `source` is the collector family ("host", "asic", "gpu", "summary", "agent"),
    `device` identifies the device within it ("10.0.0.5:4028", a GPU UUID, the
    host name). `up` is False when the device could not be read; such a snapshot
    still carries whatever readings describe the failure (poll duration, up=0).
    """

    source: str
    device: str
    ts: float
    up: bool
    readings: tuple[Reading, ...]
    # Identity attributes that are not metrics (index, address, make, model...),
    # published over MQTT alongside the readings.
    attrs: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.device)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: a miner went down or came back, a GPU XID error."""

    kind: str
    device: str
    ts: float
    detail: Mapping[str, str | int | float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Update:
    """What one collection hands to the sinks.

    `removed` names devices (source, device) that no longer exist, so sinks drop
    their series instead of serving stale values.
    """

    snapshots: tuple[Snapshot, ...] = ()
    events: tuple[Event, ...] = ()
    removed: tuple[tuple[str, str], ...] = ()


Emit = Callable[[Update], None]


class Source(Protocol):
    """A collector that drives itself: it runs until cancelled and emits updates."""

    name: str

    async def run(self, emit: Emit) -> None: ...


class Collector(Protocol):
    """A collector the runtime calls on a schedule (see runtime.Periodic)."""

    name: str

    async def collect(self) -> Update: ...

    async def aclose(self) -> None: ...


class Sink(Protocol):
    """Consumes updates. `submit` never blocks and never raises."""

    name: str

    def submit(self, update: Update) -> None: ...

    async def run(self) -> None:
        """Serve (or connect) until cancelled."""

    async def aclose(self) -> None:
        """Flush what can be flushed and release resources."""


def now() -> float:
    return time.time()


SleepFn = Callable[[float], Awaitable[None]]
