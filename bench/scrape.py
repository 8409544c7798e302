"""Scrape cost over a large fleet: our endpoint against prometheus_client on the same data.

    PYTHONPATH=$PWD python bench/scrape.py [--miners 10000] [--runs 5] [--quick]

Builds snapshots shaped like real miner polls (32 samples each), then measures, in
CPU milliseconds (median of --runs):
  - prometheus_client's generate_latest over a custom collector of the same snapshots;
  - our scrape (the join of per-miner chunks rendered at submit) after every miner
    changed, after half changed (steady state with a 30 s poll interval and a 15 s
    scrape interval) and with nothing changed (cached);
  - the rendering done at submit for every miner (spread over the poll interval in
    production, so it is not scrape time; listed so nothing is hidden);
  - gzip of the body at level 1 (what the endpoint uses) and level 9;
  - the event loop's longest stall while the real endpoint serves scrapes over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import statistics
import sys
import time
from collections.abc import Callable

import uvloop
from prometheus_client import generate_latest

from edge_agent import gcpolicy
from edge_agent.config import PrometheusConfig
from edge_agent.model import Reading, Snapshot, Update
from edge_agent.sinks.promclient import registry_for
from edge_agent.sinks.prometheus import MetricStore, PrometheusSink


def miner_snapshot(i: int, generation: int) -> Snapshot:
    m = f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:4028"
    ml = (("miner", m),)
    h = 110e12 + i + generation
    r = [
        Reading("asic_up", 1.0, ml),
        Reading(
            "asic_info",
            1.0,
            (
                ("miner", m),
                ("make", "Bitmain"),
                ("model", "Antminer S19 Pro"),
                ("firmware", "bmminer 1.0.0"),
                ("mac", f"02:00:00:{i % 256:02x}:00:01"),
                ("serial", f"SN{i:08d}"),
            ),
        ),
        Reading("asic_hashrate_hashes_per_second", h, ml),
        Reading("asic_hashrate_average_hashes_per_second", h * 0.99, ml),
        Reading("asic_nominal_hashrate_hashes_per_second", 110e12, ml),
        Reading("asic_power_watts", 3250.0 + generation, ml),
        Reading("asic_efficiency_joules_per_terahash", 29.5, ml),
        Reading("asic_hardware_errors_total", float(generation), ml),
        Reading("asic_uptime_seconds", 86400.0 + generation * 30, ml),
        Reading("asic_poll_duration_seconds", 0.012, ml),
    ]
    for b in range(3):
        bl = (("miner", m), ("board", str(b)))
        r += [
            Reading("asic_board_hashrate_hashes_per_second", h / 3, bl),
            Reading("asic_board_chips", 76.0, bl),
            Reading("asic_chip_temperature_celsius", 70.0 + b, bl),
            Reading("asic_board_temperature_celsius", 60.0 + b, bl),
        ]
    for f in range(4):
        r.append(Reading("asic_fan_speed_rpm", 5400.0 + f, (("miner", m), ("fan", str(f)))))
    for result, v in (("accepted", 1e5), ("rejected", 12.0), ("stale", 3.0)):
        r.append(Reading("asic_shares_total", v + generation, (("miner", m), ("result", result))))
    for p in range(3):
        url = f"stratum+tcp://pool{p}.example.com:3333"
        r.append(Reading("asic_pool_up", 1.0, (("miner", m), ("pool", str(p)), ("url", url), ("user", "acct.w1"))))
    return Snapshot("asic", m, time.time(), True, tuple(r))


def cpu_ms(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    times = []
    out: object = None
    for _ in range(runs):
        start = time.process_time()
        out = fn()
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times), out


def bench_render(n: int, runs: int) -> dict[str, float]:
    snaps = [miner_snapshot(i, 0) for i in range(n)]
    samples = sum(len(s.readings) for s in snaps)
    ref_ms, ref_body = cpu_ms(lambda: generate_latest(registry_for(lambda: snaps)), runs)

    def submit_all() -> MetricStore:
        store = MetricStore()
        store.apply(Update(snapshots=tuple(snaps)))
        return store

    # Every miner's snapshot rendered as it is submitted: spread over the poll interval in production.
    submit_ms, _ = cpu_ms(submit_all, runs)

    def cold() -> bytes:
        store = submit_all()
        start = time.process_time()
        parts = store.render(openmetrics=False, gzipped=False, extra=[])
        cold_times.append((time.process_time() - start) * 1000)
        return b"".join(parts)

    cold_times: list[float] = []
    body = b""
    for _ in range(runs):
        body = cold()
    cold_ms = statistics.median(cold_times)
    assert isinstance(body, bytes) and isinstance(ref_body, bytes)

    store = submit_all()
    store.render(openmetrics=False, gzipped=False, extra=[])
    gen = [1]

    def steady() -> bytes:
        half = tuple(miner_snapshot(i, gen[0]) for i in range(0, n, 2))
        gen[0] += 1
        store.apply(Update(snapshots=half))
        start = time.process_time()
        parts = store.render(openmetrics=False, gzipped=False, extra=[])
        steady_times.append((time.process_time() - start) * 1000)
        return b"".join(parts)

    steady_times: list[float] = []
    for _ in range(runs):
        steady()
    steady_ms = statistics.median(steady_times)
    cached_ms, _ = cpu_ms(lambda: store.render(openmetrics=False, gzipped=False, extra=[]), runs)
    gz1_ms, _ = cpu_ms(lambda: gzip.compress(body, 1), runs)
    gz9_ms, _ = cpu_ms(lambda: gzip.compress(body, 9), max(1, runs // 2))
    return {
        "miners": n,
        "samples": samples,
        "body_mb": len(body) / 1e6,
        "generate_latest_ms": ref_ms,
        "ours_submit_ms": submit_ms,
        "ours_cold_ms": cold_ms,
        "ours_steady_ms": steady_ms,
        "ours_cached_ms": cached_ms,
        "gzip1_ms": gz1_ms,
        "gzip9_ms": gz9_ms,
        "gzip1_bytes": len(gzip.compress(body, 1)),
    }


# The scraper, in its own process as Prometheus is: a thread in this one would compete for the GIL.
_SCRAPER = """
import gzip, json, sys, time, urllib.request
url, scrapes = sys.argv[1], int(sys.argv[2])
wall = []
for i in range(scrapes):
    # Prometheus asks for gzip; every other scrape plain, to serve both cached bodies.
    headers = {"Accept-Encoding": "gzip"} if i % 2 == 0 else {}
    start = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as resp:
        body = resp.read()
    wall.append(time.perf_counter() - start)
    if i % 2 == 0:
        gzip.decompress(body)
print(json.dumps(wall))
"""


async def bench_stall(n: int, scrapes: int) -> tuple[float, float]:
    """Longest event-loop stall (ms) while the real endpoint serves `scrapes` scrapes."""
    sink = PrometheusSink(PrometheusConfig(host="127.0.0.1", port=0))
    await sink.start()
    serve = asyncio.create_task(sink.run())
    url = f"http://127.0.0.1:{sink.port}/metrics"
    loop = asyncio.get_running_loop()
    worst = 0.0
    gen = 0
    sink.submit(Update(snapshots=tuple(miner_snapshot(i, gen) for i in range(n))))
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SCRAPER, url, str(scrapes), stdout=asyncio.subprocess.PIPE
    )
    out = asyncio.create_task(client.communicate())
    # Polls keep arriving while scrapes are served, as in production: a batch of 50
    # miners every 20 ms is 10,000 miners every 4 s, well above a 30 s interval's rate.
    # Every batch invalidates the cached body, so each scrape joins afresh.
    i = 0
    next_batch = loop.time()
    while not out.done():
        t0 = loop.time()
        await asyncio.sleep(0.001)
        worst = max(worst, loop.time() - t0 - 0.001)
        if t0 >= next_batch:
            next_batch = t0 + 0.02
            gen += 1
            batch = tuple(miner_snapshot((i + k) % n, gen) for k in range(50))
            i += 50
            sink.submit(Update(snapshots=batch))
    stdout, _ = await out
    wall = json.loads(stdout)
    # Let the last connection's handler finish: cancelling it inside wait_closed() makes
    # Python 3.11's streams log a spurious CancelledError traceback.
    deadline = loop.time() + 5
    while len(asyncio.all_tasks()) > 2 and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    await sink.aclose()
    serve.cancel()
    return worst * 1000, statistics.median(wall) * 1000


def run_stall(n: int, scrapes: int, loop_kind: str) -> tuple[float, float]:
    """`bench_stall` on the event loop and with the GC policy `edge-agent run` uses (or plain asyncio)."""
    if loop_kind == "asyncio":
        return asyncio.run(bench_stall(n, scrapes))
    gcpolicy.install()
    try:
        return uvloop.run(bench_stall(n, scrapes))
    finally:
        gcpolicy.uninstall()


def print_table(r: dict[str, float]) -> None:
    ref = r["generate_latest_ms"]
    print(f"scrape benchmark: {r['miners']:,} miners, {r['samples']:,} samples, body {r['body_mb']:.1f} MB")
    print(f"{'what':<42}{'CPU ms':>10}{'vs generate_latest':>22}")
    for label, key in (
        ("prometheus_client generate_latest", "generate_latest_ms"),
        ("ours, scrape after every miner changed", "ours_cold_ms"),
        ("ours, scrape after half changed (steady)", "ours_steady_ms"),
        ("ours, scrape with nothing changed (cached)", "ours_cached_ms"),
        ("ours, rendering at submit, all miners", "ours_submit_ms"),
    ):
        print(f"{label:<42}{r[key]:>10.1f}{ref / max(r[key], 1e-6):>21.1f}x")
    for label, key in (("gzip level 1 (endpoint)", "gzip1_ms"), ("gzip level 9", "gzip9_ms")):
        print(
            f"{label:<42}{r[key]:>10.1f}{r[key] / ref:>21.1%} of generate_latest "
            f"({r[key] / r['ours_steady_ms']:.0%} of our steady scrape)"
        )
    print(
        f"{'event loop max stall during scrapes':<42}{r['stall_ms']:>10.1f} ms "
        f"(uvloop, as the agent runs; plain asyncio: {r['stall_asyncio_ms']:.1f} ms; "
        f"median scrape wall {r['scrape_wall_ms']:.0f} ms)"
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--miners", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scrapes", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="tiny sizes for the smoke test (200 miners, 1 run)")
    args = ap.parse_args(argv)
    if args.quick:
        args.miners, args.runs, args.scrapes = min(args.miners, 200), 1, 2
    r = bench_render(args.miners, args.runs)
    r["stall_ms"], r["scrape_wall_ms"] = run_stall(args.miners, args.scrapes, "uvloop")
    r["stall_asyncio_ms"], _ = run_stall(args.miners, args.scrapes, "asyncio")
    print_table(r)
    return r


if __name__ == "__main__":
    main()
