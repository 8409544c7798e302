"""AsicFleet against a real simulated fleet over TCP on loopback: discovery, faults, backoff, limits."""

from __future__ import annotations

import asyncio
import resource

import pytest

from edge_agent.collectors.asic.fleet import AsicFleet
from edge_agent.metrics import asic as asic_metrics
from edge_agent.sim import firmwares
from edge_agent.sim.server import SimFleet

from .conftest import MakeSim, Recorder, asic_config, running, value, wait_for

# What a miner with each fault looks like to the agent once it has been polled.
DOWN_REASONS = {
    "refused": {"refused"},
    "blackhole": {"timeout"},
    "garbage": {"malformed"},
    "endless": {"too_large", "timeout"},
    "slow": {"timeout"},
}


def expected_hashrate(sim: SimFleet, key: str) -> float:
    return float(sim.state_of(key).hashrate)


def assert_healthy(rec: Recorder, sim: SimFleet, key: str) -> None:
    """The latest snapshot of `key` is up and carries exactly what the simulated miner serves."""
    snap = rec.latest[key]
    assert snap.up, (key, snap)
    assert value(snap, "asic_up") == 1.0
    duration = value(snap, "asic_poll_duration_seconds")
    assert duration is not None and duration >= 0
    state = sim.state_of(key)
    want = {(r.key, r.labels): r.value for r in firmwares.expected_readings(state, key)}
    own = ("asic_up", "asic_poll_duration_seconds", "asic_info")
    got = {(r.key, r.labels): r.value for r in snap.readings if r.key not in own}
    assert set(got) == set(want), (key, state.firmware, set(got) ^ set(want))
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9), (key, state.firmware, k)
    info = firmwares.expected_info(state)
    assert snap.attrs["address"] == sim.miner(key).address
    assert snap.attrs["port"] == "4028"
    for name in ("make", "model", "firmware", "mac", "serial"):
        assert snap.attrs.get(name, "") == getattr(info, name), (key, name)
    [info_reading] = [r for r in snap.readings if r.key == "asic_info"]
    assert info_reading.value == 1.0
    assert dict(info_reading.labels) == {
        "miner": key,
        "make": info.make,
        "model": info.model,
        "firmware": info.firmware,
        "mac": info.mac,
        "serial": info.serial,
    }


def assert_no_privileged(sim: SimFleet) -> None:
    assert not sim.recorder.privileged, sim.recorder.privileged


def all_readings_in_table(rec: Recorder) -> None:
    for snap in rec.miners().values():
        for r in snap.readings:
            row = asic_metrics.METRICS[r.key]
            assert tuple(name for name, _ in r.labels) == row.labels, r


async def test_scan_finds_every_miner_and_reports_what_it_serves(make_sim: MakeSim) -> None:
    sim = await make_sim(24, seed=5)
    rec = Recorder()
    fleet = AsicFleet(asic_config(str(sim.network)))
    async with running(fleet, rec):
        keys = {m.key for m in sim.miners}
        await wait_for(lambda: keys <= set(rec.miners()), what="every miner reported")
        await wait_for(lambda: any(s.source == "agent" for s in rec.latest.values()), what="collector stats")
    for key in keys:
        assert_healthy(rec, sim, key)
    # Only the miners exist: the rest of the /27... are empty addresses and not reported.
    assert set(rec.miners()) == keys
    assert {s.attrs.get("firmware", "") for s in rec.miners().values()} != {""}
    stats = rec.latest["collector:asic"]
    assert value(stats, "edge_agent_collector_up", collector="asic") == 1.0
    all_readings_in_table(rec)
    assert_no_privileged(sim)
    # Updates are batched: far fewer updates than snapshots.
    snaps = sum(len(u.snapshots) for u in rec.updates)
    assert len(rec.updates) * 4 <= snaps
    assert all(u.snapshots or u.events or u.removed for u in rec.updates)
    assert max(m.max_open for m in sim.miners) == 1


async def test_every_fault_kind_shows_down_while_the_rest_stays_correct(make_sim: MakeSim) -> None:
    sim = await make_sim(18, seed=2, slow_delay=5.0)
    rec = Recorder()
    fleet = AsicFleet(asic_config(str(sim.network), backoff_max=1.0))
    faulty = {kind: sim.miners[i].key for i, kind in enumerate(["refused", "blackhole", "garbage", "endless", "slow"])}
    sleeper = sim.miners[5].key
    async with running(fleet, rec):
        keys = {m.key for m in sim.miners}
        await wait_for(lambda: keys <= set(rec.miners()), what="every miner reported")
        for kind, key in faulty.items():
            sim.set_fault(key, kind)
        sim.set_fault(sleeper, "sleeping")

        def settled() -> bool:
            if not all(key in rec.latest and not rec.latest[key].up for key in faulty.values()):
                return False
            snap = rec.latest.get(sleeper)
            return snap is not None and value(snap, "asic_hashrate_hashes_per_second") == 0.0

        await wait_for(settled, what="faulty miners down, the sleeper at 0 H/s")
        n_before = dict(rec.counts)
        # The healthy rest keeps being polled while the faulty ones burn their timeouts.
        healthy = keys - set(faulty.values()) - {sleeper}
        await wait_for(lambda: all(rec.counts[k] >= n_before[k] + 2 for k in healthy), what="two more polls each")
        for key in healthy:
            assert_healthy(rec, sim, key)
        for kind, key in faulty.items():
            snap = rec.latest[key]
            assert value(snap, "asic_up") == 0.0 and value(snap, "asic_poll_duration_seconds") is not None
            assert value(snap, "asic_hashrate_hashes_per_second") is None
            # Still known by name while down.
            assert value(snap, "asic_info") == 1.0 and snap.attrs.get("firmware")
            downs = [e for e in rec.events_of(key) if e.kind == "miner_down"]
            assert len(downs) == 1, (kind, rec.events_of(key))
            assert downs[0].detail["reason"] in DOWN_REASONS[kind], (kind, downs[0].detail)
        sleeping = rec.latest[sleeper]
        assert sleeping.up and value(sleeping, "asic_up") == 1.0
        assert not rec.events_of(sleeper)

        # Faults cleared: each comes back once, logged and evented once.
        for key in faulty.values():
            sim.set_fault(key, None)
        await wait_for(lambda: all(rec.latest[k].up for k in faulty.values()), timeout=20, what="recovery")
        for key in faulty.values():
            assert [e.kind for e in rec.events_of(key)] == ["miner_down", "miner_up"]
            assert_healthy(rec, sim, key)
    assert_no_privileged(sim)
    assert max(m.max_open for m in sim.miners) == 1


async def test_faulty_from_the_start_listening_ones_are_reported_down(make_sim: MakeSim) -> None:
    kinds = {0: "refused", 1: "garbage", 2: "endless", 3: "sleeping", 4: "blackhole", 5: "slow"}
    # cgminer-port firmware only: for a Whatsminer on API v3 the agent reports the refusal of 4028,
    # not the fault on 4433 (identify's fallback), which this test is not about.
    sim = await make_sim(10, fault_map=kinds, seed=4, slow_delay=5.0, firmware_names=firmwares.FIRMWARES)
    rec = Recorder()
    fleet = AsicFleet(asic_config(str(sim.network)))
    async with running(fleet, rec):
        present = {m.key for m in sim.miners if m.fault != "refused"}
        await wait_for(lambda: present <= set(rec.miners()), what="every listening miner reported")
        await wait_for(lambda: fleet.scans_completed >= 1, what="scan done")
    # Nothing listens at a refused address: to a scan that is an empty address, not a miner.
    assert sim.miners[0].key not in rec.miners()
    # Listening but not answering the API (hung, garbage, endless, too slow): down, with the reason.
    for index, reason in ((1, "malformed"), (2, "too_large"), (4, "timeout"), (5, "timeout")):
        key = sim.miners[index].key
        assert rec.latest[key].up is False, key
        assert value(rec.latest[key], "asic_up") == 0.0
        assert [e.detail["reason"] for e in rec.events_of(key)] == [reason], key
    assert rec.latest[sim.miners[3].key].up is True
    assert value(rec.latest[sim.miners[3].key], "asic_hashrate_hashes_per_second") == 0.0
    for m in sim.miners[6:]:
        assert_healthy(rec, sim, m.key)
    assert_no_privileged(sim)


async def test_dead_miner_is_retried_with_backoff(make_sim: MakeSim) -> None:
    sim = await make_sim(2, fault_map={0: "garbage"}, firmware_names=["antminer-s19", "braiins"])
    dead, alive = sim.miners[0], sim.miners[1]
    rec = Recorder()
    # Single addresses are polled directly (no scan); interval 0.1 s, backoff capped at 8 intervals.
    fleet = AsicFleet(asic_config(dead.key, alive.key, interval=0.1, timeout=0.1, backoff_max=0.8))
    async with running(fleet, rec):
        await wait_for(lambda: rec.counts.get(alive.key, 0) >= 40, timeout=30, what="40 polls of the live miner")
        attempts = rec.counts.get(dead.key, 0)
        accepted = dead.accepted
    # In 40 slots a miner failing every time is tried at slots 0, 1, 3, 7, 15, 23, 31, 39 at most.
    assert 3 <= attempts <= 9, attempts
    assert accepted <= attempts  # each attempt fails on its first request
    assert all(not s.up for s in [rec.latest[dead.key]])
    assert [e.kind for e in rec.events_of(dead.key)] == ["miner_down"]


async def test_identify_and_poll_together_are_capped_at_one_interval(make_sim: MakeSim) -> None:
    """Each request of a slow miner fits its own timeout, but identify + poll do not fit one interval:
    the miner shows down with a timeout instead of running into its next slot."""
    sim = await make_sim(2, fault_map={0: "slow"}, slow_delay=0.35, firmware_names=["antminer-s19", "braiins"])
    slow, alive = sim.miners[0], sim.miners[1]
    rec = Recorder()
    fleet = AsicFleet(asic_config(slow.key, alive.key, interval=0.6, timeout=0.5))
    async with running(fleet, rec):
        await wait_for(lambda: rec.events_of(slow.key), timeout=30, what="the slow miner reported down")
        await wait_for(lambda: rec.counts.get(alive.key, 0) >= 3, timeout=30, what="3 polls of the live miner")
    assert [e.detail["reason"] for e in rec.events_of(slow.key)][:1] == ["timeout"]
    assert not rec.latest[slow.key].up
    assert rec.latest[alive.key].up


async def test_gone_miner_is_removed_after_forget_after(make_sim: MakeSim) -> None:
    sim = await make_sim(3, seed=9)
    scanned, static, other = sim.miners
    rec = Recorder()
    fleet = AsicFleet(
        asic_config(
            str(sim.network),
            static.key,
            interval=0.1,
            timeout=0.1,
            backoff_max=0.2,
            forget_after=0.6,
            scan_interval=600.0,
        )
    )
    async with running(fleet, rec):
        await wait_for(lambda: {m.key for m in sim.miners} <= set(rec.miners()), what="all reported")
        sim.set_fault(scanned.key, "refused")
        sim.set_fault(static.key, "refused")
        await wait_for(lambda: {("asic", scanned.key), ("asic", static.key)} <= set(rec.removed), what="both removed")
        # Down, not vanished, until forgotten.
        assert any(not s.up for u in rec.updates for s in u.snapshots if s.device == scanned.key)
        assert scanned.key not in rec.latest and static.key not in rec.latest
        assert scanned.key not in fleet.miners  # scanned: dropped, a later scan finds it if it returns
        assert static.key in fleet.miners  # configured: still tried, with backoff
        removed_at = len(rec.updates)
        # A configured address that comes back reappears without a scan.
        sim.set_fault(static.key, None)
        await wait_for(lambda: static.key in rec.latest and rec.latest[static.key].up, what="static back")
        assert not any(s.device == scanned.key for u in rec.updates[removed_at:] for s in u.snapshots)
        assert rec.latest[other.key].up


async def test_rescan_finds_new_and_replaced_miners(make_sim: MakeSim) -> None:
    sim = await make_sim(4, seed=11)
    rec = Recorder()
    fleet = AsicFleet(asic_config(f"{sim.base}/28", interval=0.2, scan_interval=0.5))
    async with running(fleet, rec):
        await wait_for(lambda: {m.key for m in sim.miners} <= set(rec.miners()), what="first scan")
        new = sim.add_miner()
        await wait_for(lambda: new.key in rec.latest and rec.latest[new.key].up, what="new miner found")
        assert_healthy(rec, sim, new.key)

        target = sim.miners[0]
        old_attrs = dict(rec.latest[target.key].attrs)
        # Swapped for a Whatsminer on API v3: another firmware, another MAC, even another port (4433).
        new_firmware = "whatsminer-v3" if target.firmware != "whatsminer-v3" else "antminer-s19"
        sim.replace_miner(target.key, new_firmware)

        def replaced() -> bool:
            snap = rec.latest[target.key]
            return snap.attrs != old_attrs and value(snap, "asic_hashrate_hashes_per_second") == expected_hashrate(
                sim, target.key
            )

        await wait_for(replaced, what="replaced miner re-identified")
        assert rec.latest[target.key].up
    assert_no_privileged(sim)


async def test_concurrency_limit_holds_across_scan_and_polls(make_sim: MakeSim) -> None:
    # A third of the fleet holds connections open until the timeout: the worst case for the limit.
    sim = await make_sim(30, faults=0.34, fault_kinds=["blackhole", "slow", "endless"], slow_delay=5.0)
    rec = Recorder()
    fleet = AsicFleet(asic_config(str(sim.network), concurrency=4, interval=0.5, timeout=0.2, scan_interval=1.0))
    async with running(fleet, rec):
        healthy = {m.key for m in sim.miners if m.fault is None}
        await wait_for(lambda: healthy <= set(rec.miners()), what="healthy miners found")
        await wait_for(lambda: fleet.scans_completed >= 2, timeout=30, what="two scans")
        assert fleet.in_flight <= 4
    assert 1 <= sim.peak_open <= 4, sim.peak_open
    assert max(m.max_open for m in sim.miners) == 1


async def test_endless_and_garbage_replies_cost_bounded_memory(make_sim: MakeSim) -> None:
    sim = await make_sim(12, fault_map={i: ("endless" if i % 2 else "garbage") for i in range(8)})
    rec = Recorder()
    fleet = AsicFleet(asic_config(str(sim.network), interval=0.2, timeout=1.0, backoff_max=0.2))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    async with running(fleet, rec):
        endless = [m for m in sim.miners if m.fault == "endless"]
        await wait_for(
            lambda: all(m.accepted >= 5 for m in endless), timeout=30, what="each endless miner read 5 times"
        )
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    # 20+ reads of a stream that never ends, each capped at 64 KiB: an uncapped reader would have
    # pulled hundreds of megabytes through the loopback in this time.
    assert grown_kib < 64 * 1024, grown_kib
    for m in endless:
        assert rec.latest[m.key].up is False
        assert {e.detail["reason"] for e in rec.events_of(m.key)} == {"too_large"}
    for m in sim.miners[8:]:
        assert_healthy(rec, sim, m.key)


async def test_overloaded_budget_is_reported_in_collector_health(
    make_sim: MakeSim, caplog: pytest.LogCaptureFixture
) -> None:
    # One connection for six miners that each hold it for the whole timeout: polls start late.
    sim = await make_sim(6, fault_map=dict.fromkeys(range(6), "blackhole"))
    rec = Recorder()
    targets = [m.key for m in sim.miners]
    fleet = AsicFleet(asic_config(*targets, concurrency=1, interval=0.3, timeout=0.25, backoff_max=0.3))
    caplog.set_level("WARNING", logger="edge_agent.collectors.asic.fleet")

    def unhealthy() -> bool:
        snap = rec.latest.get("collector:asic")
        return snap is not None and value(snap, "edge_agent_collector_up", collector="asic") == 0.0

    async with running(fleet, rec):
        await wait_for(unhealthy, timeout=30, what="collector reported unhealthy")
    assert sum("overloaded" in r.getMessage() for r in caplog.records) == 1
    assert sim.peak_open == 1


async def test_aclose_stops_run_and_closes_connections(make_sim: MakeSim) -> None:
    sim = await make_sim(4, fault_map={0: "blackhole"})
    rec = Recorder()
    fleet = AsicFleet(asic_config(str(sim.network), timeout=5.0, interval=5.0))
    task = asyncio.create_task(fleet.run(rec))
    await wait_for(lambda: sim.miners[0].open_now == 1, what="blackhole connection held")
    await fleet.aclose()
    await asyncio.wait_for(task, 5)
    await wait_for(lambda: sim.open_now == 0, what="every connection closed")
    assert fleet.in_flight == 0
