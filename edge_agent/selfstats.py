"""Per-collector health, reported as an "agent" snapshot like any other reading."""

from __future__ import annotations

import time
from dataclasses import dataclass

from edge_agent.model import Reading, Snapshot


@dataclass(slots=True)
class CollectorStats:
    """Mutable bookkeeping owned by whoever drives one collector (runtime or fleet)."""

    name: str
    up: bool = False
    duration: float = 0.0
    last_success: float = 0.0
    errors: int = 0
    timeouts: int = 0

    def success(self, duration: float) -> None:
        self.up = True
        self.duration = duration
        self.last_success = time.time()

    def failure(self, duration: float, *, timed_out: bool = False) -> None:
        self.up = False
        self.duration = duration
        self.errors += 1
        if timed_out:
            self.timeouts += 1

    def snapshot(self) -> Snapshot:
        lab = (("collector", self.name),)
        readings = [
            Reading("edge_agent_collector_up", 1.0 if self.up else 0.0, lab),
            Reading("edge_agent_collector_duration_seconds", self.duration, lab),
            Reading("edge_agent_collector_errors_total", float(self.errors), lab),
            Reading("edge_agent_collector_timeouts_total", float(self.timeouts), lab),
        ]
        if self.last_success:
            readings.append(Reading("edge_agent_collector_last_success_timestamp_seconds", self.last_success, lab))
        return Snapshot("agent", f"collector:{self.name}", time.time(), True, tuple(readings))
