"""CPU per miner poll: the agent's code path against raw-socket baselines, in the same run.

    PYTHONPATH=$PWD python bench/poll.py [--miners 10000] [--runs 5] [--concurrency 256] [--quick]

A simulated fleet of Antminer S19 miners running VNish (stock API) runs in a child process
(bench/simproc.py), so only the polling process's CPU is counted
(`time.process_time`). Each pass polls every miner once, `--concurrency` at a
time, with:

  raw asyncio + json      open_connection, send `summary+pools+stats`, read to EOF,
                          json.loads: the floor for plain Python with the stdlib (to the
                          half of the S19s whose firmware refuses `+`, the three commands
                          one per connection, as the agent sends them);
  raw uvloop + orjson     the same on uvloop with orjson.loads;
  agent path (asyncio)    the agent's functions for one poll: miner.poll (allowlist,
                          one deadline, byte cap, repair-aware decode, split, parse to
                          readings), the fleet's snapshot, its Prometheus chunks
                          (exposition.render_readings) and its MQTT payload
                          (PayloadBuilder.snapshot);
  agent path (uvloop)     the same under uvloop, as `edge-agent run` runs it;
  agent fleet (uvloop)    the real AsicFleet scheduler polling every miner on a short
                          interval, its emitted snapshots rendered the same way:
                          CPU over whole cycles divided by the polls in them.

Prints the median of --runs passes of each (passes interleaved so drift hits
all alike), ms per poll, the ratio to the stdlib baseline and polls/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simproc import SimProcess

from edge_agent.collectors.asic import miner as miner_api
from edge_agent.collectors.asic.fleet import AsicFleet, device_id
from edge_agent.config import AsicConfig, AsicTarget
from edge_agent.model import Reading, Snapshot, Update
from edge_agent.sinks import exposition
from edge_agent.sinks.payload import PayloadBuilder

REQUEST = b'{"command":"summary+pools+stats"}'
# Antminer with VNish: the stock API (the same parser as stock S19) and `+` always accepted, so every
# poll is the one `summary+pools+stats` request the scale issue measures.
FIRMWARE = "vnish"

Addr = tuple[str, int]


async def _drive(addrs: list[Addr], concurrency: int, one: Callable[[str, int], Awaitable[object]]) -> int:
    """Poll every address once, `concurrency` at a time. Returns how many polls failed."""
    it = iter(addrs)
    failed = 0

    async def worker() -> None:
        nonlocal failed
        for host, port in it:
            try:
                await one(host, port)
            except Exception:
                failed += 1

    async with asyncio.TaskGroup() as tg:
        for _ in range(min(concurrency, len(addrs))):
            tg.create_task(worker())
    return failed


def raw_poller(
    requests: dict[Addr, tuple[bytes, ...]], loads: Callable[[bytes], object]
) -> Callable[[str, int], Awaitable[object]]:
    """The floor: for each request of the miner, connect, send it, read to EOF, parse the JSON."""

    async def one(host: str, port: int) -> object:
        out = []
        for request in requests[(host, port)]:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(request)
                data = await reader.read()
            finally:
                writer.close()
            out.append(loads(data.rstrip(b"\x00")))
        return out

    return one


class AgentPath:
    """One poll the way the fleet does it, plus what the two sinks render from the snapshot."""

    def __init__(self, profiles: dict[Addr, miner_api.FirmwareProfile]) -> None:
        self.profiles = profiles
        self.builder = PayloadBuilder()
        self.seq = 0
        self.bytes = 0

    async def __call__(self, host: str, port: int) -> object:
        start = time.monotonic()
        result = await miner_api.poll(host, port, self.profiles[(host, port)], timeout=5.0, max_bytes=1 << 20)
        # As the fleet does: keep what the poll learned (this firmware build refuses `+`).
        self.profiles[(host, port)] = result.profile
        key = device_id(host, port)
        labels = (("miner", key),)
        info = result.info
        head = (
            Reading("asic_up", 1.0, labels),
            Reading("asic_poll_duration_seconds", time.monotonic() - start, labels),
            Reading(
                "asic_info",
                1.0,
                (
                    ("miner", key),
                    ("make", info.make),
                    ("model", info.model),
                    ("firmware", info.firmware),
                    ("mac", info.mac),
                    ("serial", info.serial),
                ),
            ),
        )
        attrs = {"address": host, "port": str(port), "make": info.make, "model": info.model}
        snap = Snapshot("asic", key, time.time(), True, head + result.readings, attrs)
        return render_for_sinks(snap, self)


def render_for_sinks(snap: Snapshot, acc: Any) -> int:
    """What the sinks do with one snapshot: Prometheus chunks and the MQTT payload."""
    chunks = exposition.render_readings(snap.readings)
    acc.seq += 1
    payload = acc.builder.snapshot(snap, acc.seq)
    n = len(payload) + sum(len(c) for _, c in chunks)
    acc.bytes += n
    return n


def run_pass(
    loop_kind: str, addrs: list[Addr], concurrency: int, one: Callable[[str, int], Awaitable[object]]
) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, failures) for one pass over every address."""

    async def main() -> tuple[float, float, int]:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        failed = await _drive(addrs, concurrency, one)
        return time.process_time() - cpu0, time.perf_counter() - wall0, failed

    runner: Callable[[Any], tuple[float, float, int]] = uvloop.run if loop_kind == "uvloop" else asyncio.run
    return runner(main())


def fleet_pass(addrs: list[Addr], concurrency: int, cycles: int) -> tuple[float, float, int, int]:
    """The real AsicFleet: (CPU s, wall s, polls, failures) over `cycles` whole intervals after the first."""
    n = len(addrs)
    # Short enough that the fleet is busy, long enough that it is not hopelessly late.
    interval = max(0.5, n / 2500)
    cfg = AsicConfig(
        enabled=True,
        targets=tuple(AsicTarget(ipaddress.ip_network(h), p, f"{h}:{p}") for h, p in addrs),
        interval=interval,
        timeout=5.0,
        concurrency=concurrency,
    )

    class Acc:
        builder = PayloadBuilder()
        seq = 0
        bytes = 0

    acc = Acc()
    counts = {"up": 0, "down": 0}

    def emit(update: Update) -> None:
        for snap in update.snapshots:
            if snap.source != "asic":
                continue
            counts["up" if snap.up else "down"] += 1
            render_for_sinks(snap, acc)

    async def main() -> tuple[float, float, int, int]:
        fleet = AsicFleet(cfg, flush_seconds=0.2)
        task = asyncio.create_task(fleet.run(emit))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60 + interval * (cycles + 2) * 3
        while counts["up"] + counts["down"] < n:  # the first cycle identifies every miner: not counted
            if loop.time() > deadline or task.done():
                raise RuntimeError("the fleet never finished its first cycle")
            await asyncio.sleep(0.05)
        polls0, down0 = counts["up"] + counts["down"], counts["down"]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while counts["up"] + counts["down"] < polls0 + n * cycles:
            if loop.time() > deadline or task.done():
                break
            await asyncio.sleep(0.01)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        polls = counts["up"] + counts["down"] - polls0
        await fleet.aclose()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return cpu, wall, polls, counts["down"] - down0

    return uvloop.run(main())


def identify_all(addrs: list[Addr], concurrency: int) -> dict[Addr, miner_api.FirmwareProfile]:
    profiles: dict[Addr, miner_api.FirmwareProfile] = {}

    async def one(host: str, port: int) -> None:
        profiles[(host, port)] = await miner_api.identify(host, port, timeout=5.0)

    failed = uvloop.run(_drive(addrs, concurrency, one))
    if failed:
        raise RuntimeError(f"{failed} simulated miners could not be identified")
    return profiles


def measure(miners: int, runs: int, concurrency: int, cycles: int) -> dict[str, Any]:
    with SimProcess(miners, base="127.21.0.0", firmware_names=[FIRMWARE], evolve_interval=0) as sim:
        addrs = [(m["key"].rsplit(":", 1)[0], sim.port) for m in sim.manifest]
        profiles = identify_all(addrs, concurrency)
        agent = AgentPath(profiles)
        # One pass to learn which miners refuse `+` (odd S19 builds do), then the raw baselines send
        # exactly what the agent sends: the multi-command, or the three commands one by one.
        run_pass("uvloop", addrs, concurrency, agent)
        requests = {
            a: (REQUEST,) if p.multicommand else tuple(b'{"command":"%s"}' % c.encode() for c in p.entry.poll)
            for a, p in agent.profiles.items()
        }
        variants: dict[str, tuple[str, Callable[[str, int], Awaitable[object]]]] = {
            "raw asyncio + json": ("asyncio", raw_poller(requests, json.loads)),
            "raw uvloop + orjson": ("uvloop", raw_poller(requests, orjson.loads)),
            "agent path (asyncio)": ("asyncio", agent),
            "agent path (uvloop)": ("uvloop", agent),
        }
        results: dict[str, list[tuple[float, float, int]]] = {k: [] for k in variants}
        results["agent fleet (uvloop)"] = []
        sim_cpu0 = sim.cpu_seconds()
        for _ in range(runs):
            for name, (kind, one) in variants.items():
                results[name].append(run_pass(kind, addrs, concurrency, one))
            cpu, wall, polls, down = fleet_pass(addrs, concurrency, cycles)
            # Normalised to one pass over the fleet so every row reads alike.
            scale = miners / max(polls, 1)
            results["agent fleet (uvloop)"].append((cpu * scale, wall * scale, down))
        sim_cpu = sim.cpu_seconds() - sim_cpu0
    out: dict[str, Any] = {"miners": miners, "runs": runs, "concurrency": concurrency, "rows": {}}
    for name, passes in results.items():
        ms = statistics.median(c / miners * 1000 for c, _, _ in passes)
        rate = statistics.median(miners / w for _, w, _ in passes)
        out["rows"][name] = {"ms_per_poll": ms, "polls_per_s": rate, "failed": max(f for _, _, f in passes)}
    out["sim_cpu_s"] = sim_cpu
    out["multicommand_share"] = sum(1 for r in requests.values() if len(r) == 1) / max(len(requests), 1)
    return out


def raw_baseline(miners: int = 2000, runs: int = 3, concurrency: int = 256) -> float:
    """CPU ms per poll of the raw asyncio + json baseline alone (median of `runs` passes): the
    yardstick other benchmarks use to say how fast this machine is."""
    with SimProcess(miners, base="127.22.0.0", firmware_names=[FIRMWARE], evolve_interval=0) as sim:
        addrs = [(m["key"].rsplit(":", 1)[0], sim.port) for m in sim.manifest]
        one = raw_poller(dict.fromkeys(addrs, (REQUEST,)), json.loads)
        passes = [run_pass("asyncio", addrs, concurrency, one) for _ in range(runs)]
    if any(failed for _, _, failed in passes):
        raise RuntimeError("the raw baseline failed to poll some simulated miners")
    return statistics.median(cpu / miners * 1000 for cpu, _, _ in passes)


def print_table(r: dict[str, Any]) -> None:
    base = r["rows"]["raw asyncio + json"]["ms_per_poll"]
    print(
        f"poll benchmark: {r['miners']:,} simulated {FIRMWARE} miners in a separate process, "
        f"concurrency {r['concurrency']}, median of {r['runs']} pass(es); "
        f"{r['multicommand_share']:.0%} answer `summary+pools+stats` in one request"
        + ("" if r["multicommand_share"] == 1 else ", the rest refuse `+` and get three requests")
    )
    print(f"{'what':<26}{'CPU ms/poll':>12}{'vs raw stdlib':>15}{'polls/s':>10}{'failed':>8}")
    for name, row in r["rows"].items():
        print(
            f"{name:<26}{row['ms_per_poll']:>12.3f}{row['ms_per_poll'] / base:>14.2f}x"
            f"{row['polls_per_s']:>10,.0f}{row['failed']:>8}"
        )


def quiet() -> None:
    # The fleet warns when a pass runs it flat out ("overloaded"): expected here, not news.
    logging.basicConfig(level=logging.ERROR)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--miners", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--cycles", type=int, default=2, help="fleet intervals measured per agent-fleet pass")
    ap.add_argument("--quick", action="store_true", help="tiny sizes for the smoke test (200 miners, 1 run)")
    args = ap.parse_args(argv)
    quiet()
    if args.quick:
        args.miners, args.runs, args.cycles = min(args.miners, 200), 1, 1
    r = measure(args.miners, args.runs, args.concurrency, args.cycles)
    print_table(r)
    return r


if __name__ == "__main__":
    main()
