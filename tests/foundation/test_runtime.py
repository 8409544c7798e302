"""The scheduler: timeouts counted and cancelled, no pile-up, failures logged once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from edge_agent.errors import CollectorError
from edge_agent.model import Reading, Snapshot, Update
from edge_agent.runtime import Hub, Periodic
from edge_agent.summary import DeviceTotals


class ScriptedCollector:
    """Collector whose behaviour per call is scripted: "ok", "fail", "hang"."""

    name = "scripted"

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.calls = 0
        self.running = 0
        self.max_running = 0
        self.closed = False

    async def collect(self) -> Update:
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if step == "hang":
                await asyncio.sleep(3600)
            if step == "fail":
                raise CollectorError("device said no")
            snap = Snapshot("test", "dev", 0.0, True, (Reading("edge_agent_collector_up", 1.0, (("collector", "x"),)),))
            return Update(snapshots=(snap,))
        finally:
            self.running -= 1

    async def aclose(self) -> None:
        self.closed = True


async def run_for(periodic: Periodic, updates: list[Update], until: int) -> None:
    enough = asyncio.Event()

    def emit(update: Update) -> None:
        updates.append(update)
        if len(updates) >= until:
            enough.set()

    task = asyncio.create_task(periodic.run(emit))
    async with asyncio.timeout(10):
        await enough.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_timeout_is_cancelled_counted_and_never_piles_up(caplog: pytest.LogCaptureFixture) -> None:
    collector = ScriptedCollector(["ok", "hang", "hang", "hang", "ok"])
    periodic = Periodic(collector, interval=0.02, timeout=0.05, first_delay=0)
    updates: list[Update] = []
    with caplog.at_level(logging.INFO):
        await run_for(periodic, updates, 5)
    assert collector.max_running == 1
    assert periodic.stats.timeouts == 3 and periodic.stats.errors == 3
    assert collector.closed
    errors = [r for r in caplog.records if "failed" in r.getMessage()]
    recovered = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(errors) == 1 and "timed out" in errors[0].getMessage()
    assert len(recovered) == 1
    # A failed run withdraws what the last good run showed, so nothing stale is served.
    assert updates[1].removed == (("test", "dev"),)
    assert updates[4].snapshots[0].key == ("test", "dev")
    up = [r for r in updates[2].snapshots[-1].readings if r.key == "edge_agent_collector_up"]
    assert up[0].value == 0.0


async def test_failures_logged_once_until_recovery(caplog: pytest.LogCaptureFixture) -> None:
    collector = ScriptedCollector(["fail"] * 6 + ["ok"])
    periodic = Periodic(collector, interval=0.001, timeout=1, first_delay=0)
    updates: list[Update] = []
    with caplog.at_level(logging.INFO):
        await run_for(periodic, updates, 8)
    assert sum("failed" in r.getMessage() for r in caplog.records) == 1
    assert sum("recovered" in r.getMessage() for r in caplog.records) == 1
    assert periodic.stats.errors == 6


async def test_overrun_skips_missed_ticks() -> None:
    class Slow(ScriptedCollector):
        async def collect(self) -> Update:
            await asyncio.sleep(0.05)
            return await super().collect()

    collector = Slow(["ok"])
    periodic = Periodic(collector, interval=0.01, timeout=1, first_delay=0)
    updates: list[Update] = []
    await run_for(periodic, updates, 3)
    # Each run takes 5 intervals; skipped ticks are not made up in a burst.
    assert collector.calls <= 4


def test_hub_tracks_latest_and_removals() -> None:
    hub = Hub()
    seen: list[Update] = []

    class Sink:
        name = "s"

        def submit(self, update: Update) -> None:
            seen.append(update)

    class Broken:
        name = "broken"

        def submit(self, update: Update) -> None:
            raise RuntimeError("boom")

    hub.sinks = {"b": Broken(), "s": Sink()}  # type: ignore[dict-item]
    a = Snapshot("asic", "1", 0, True, (Reading("asic_hashrate_hashes_per_second", 5.0, (("miner", "1"),)),))
    hub.emit(Update(snapshots=(a,)))
    assert hub.totals[("asic", "1")] == DeviceTotals("asic", True, 5.0, None)
    hub.emit(Update(removed=(("asic", "1"),)))
    assert len(seen) == 2 and hub.totals == {}
