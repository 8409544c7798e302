"""Every benchmark in one run, summarised in one table against the scale issue's targets.

    PYTHONPATH=$PWD python bench/all.py [--quick] [--fleet-duration 240] [--miners 10000]

Runs bench/poll.py, bench/scrape.py, bench/mqtt_outbox.py and bench/fleet.py in
turn (each prints its own detailed table), then one summary: figures as ratios
to the baselines measured in the same run, and the target each is held to.
`--quick` runs tiny sizes in a few seconds each (what the smoke test runs); its
figures mean nothing. A full run takes about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fleet
import mqtt_outbox
import poll
import scrape


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def summary_rows(
    p: dict[str, Any], s: dict[str, float], m: dict[str, float], f: dict[str, Any]
) -> list[tuple[str, str, str, str]]:
    rows = p["rows"]
    raw = rows["raw asyncio + json"]["ms_per_poll"]
    raw_uv = rows["raw uvloop + orjson"]["ms_per_poll"]
    path = rows["agent path (uvloop)"]["ms_per_poll"]
    fl = rows["agent fleet (uvloop)"]["ms_per_poll"]
    ref = s["generate_latest_ms"]
    ok = "ok"
    miss = "MISSED"

    def verdict(good: bool) -> str:
        return ok if good else miss

    return [
        ("CPU per poll, raw asyncio + json (baseline)", f"{raw:.3f} ms", "", ""),
        ("CPU per poll, raw uvloop + orjson", f"{raw_uv:.3f} ms ({raw_uv / raw:.2f}x)", "", ""),
        (
            "CPU per poll, agent path (poll, parse, render)",
            f"{path:.3f} ms ({path / raw:.2f}x)",
            "<= 1.5x",
            verdict(path / raw <= 1.5),
        ),
        (
            "CPU per poll, agent AsicFleet (+ scheduler)",
            f"{fl:.3f} ms ({fl / raw:.2f}x)",
            "<= 1.5x",
            verdict(fl / raw <= 1.5),
        ),
        (
            "polls/s, agent path / raw asyncio",
            f"{rows['agent path (uvloop)']['polls_per_s']:,.0f} / {rows['raw asyncio + json']['polls_per_s']:,.0f}",
            "",
            "",
        ),
        ("/metrics, generate_latest (baseline)", f"{ref:.0f} ms CPU", "", ""),
        (
            "/metrics, ours after half the miners changed",
            f"{s['ours_steady_ms']:.1f} ms ({ref / s['ours_steady_ms']:.0f}x faster)",
            ">= 20x",
            verdict(ref / s["ours_steady_ms"] >= 20),
        ),
        (
            "/metrics, ours after every miner changed",
            f"{s['ours_cold_ms']:.1f} ms ({ref / s['ours_cold_ms']:.0f}x faster)",
            ">= 20x",
            verdict(ref / s["ours_cold_ms"] >= 20),
        ),
        ("rendering at submit, all miners (not scrape time)", f"{s['ours_submit_ms']:.0f} ms", "", ""),
        (
            "gzip level 1 of the body",
            f"{s['gzip1_ms']:.1f} ms ({s['gzip1_ms'] / ref:.1%} of generate_latest)",
            "< 10 %",
            verdict(s["gzip1_ms"] / ref < 0.10),
        ),
        (
            "event loop max stall during scrapes",
            f"{s['stall_ms']:.1f} ms (plain asyncio: {s['stall_asyncio_ms']:.1f} ms)",
            "<= 20 ms",
            verdict(s["stall_ms"] <= 20),
        ),
        (
            "MQTT QoS 1 live publish through the outbox",
            f"{m['live_rate']:,.0f} msg/s",
            ">= 5,000",
            verdict(m["live_rate"] >= 5000),
        ),
        (
            "MQTT baseline: bare aiomqtt pipelined / serial",
            f"{m['raw_pipelined_rate']:,.0f} / {m['raw_serial_rate']:,.0f} msg/s (issue: 18,000 / 7,000)",
            "",
            "",
        ),
        (
            "MQTT live publish at the issue machine's speed",
            f"{m['live_rate'] * 18_000 / m['raw_pipelined_rate']:,.0f} msg/s (x 18,000 / pipelined here)",
            ">= 5,000",
            verdict(m["live_rate"] * 18_000 / m["raw_pipelined_rate"] >= 5000),
        ),
        ("MQTT backlog drain with live data", f"{m['drain_rate']:,.0f} msg/s", "", ""),
        (
            "1.2 M message backlog drains in (projected)",
            f"{m['drain_1m2_s'] / 60:.1f} min",
            "<= 10 min",
            verdict(m["drain_1m2_s"] <= 600),
        ),
        ("fleet: agent CPU, % of one core, this machine", f"{f['cpu_pct']:.1f} %", "", ""),
        (
            "fleet: agent CPU per poll / raw poll",
            f"{f['raw_ratio']:.2f}x ({f['ms_per_poll']:.3f} / {f['raw_ms']:.3f} ms)",
            "",
            "",
        ),
        (
            "fleet: agent CPU at the issue machine's speed",
            f"{f['cpu_pct_at_reference']:.1f} % of one core",
            "<= 25 %",
            verdict(f["cpu_pct_at_reference"] <= 25),
        ),
        (
            "fleet: healthy miners missing an interval",
            f"{f['healthy_missed']} of {f['healthy']:,}",
            "0",
            verdict(f["healthy_missed"] == 0),
        ),
        (
            "fleet: RSS start / end / max",
            f"{f['rss_start_mb']:.0f} / {f['rss_end_mb']:.0f} / {f['rss_max_mb']:.0f} MB",
            "<= 250 MB",
            verdict(f["rss_max_mb"] <= 250),
        ),
        (
            "fleet: RSS slope over the window",
            f"{f['rss_slope_mb_per_h']:+.0f} MB/h over {f['window_s'] / 60:.0f} min",
            "no growth",
            "see note",
        ),
        (
            "fleet: RSS median per quarter of the window",
            " / ".join(f"{v:.0f}" for v in f["rss_quarters_mb"]) + " MB",
            "",
            "",
        ),
        ("fleet: /metrics gzip scrape wall, median", f"{f['scrape_gzip_ms_median']:.0f} ms", "", ""),
        (
            "fleet: /metrics plain scrape wall, median",
            f"{f['scrape_ms_median']:.0f} ms ({f['body_mb']:.1f} MB)",
            "",
            "",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds each (the smoke test)")
    ap.add_argument("--miners", type=int, default=10_000)
    ap.add_argument(
        "--fleet-duration", type=float, default=240.0, help="seconds the fleet run measures (an hour: 3600)"
    )
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    quick = ["--quick"] if args.quick else []
    n = ["--miners", str(args.miners)]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print("== bench/poll.py", flush=True)
    p = poll.main([*n, "--runs", str(args.runs), *quick])
    print("\n== bench/scrape.py", flush=True)
    s = scrape.main([*n, "--runs", str(args.runs), *quick])
    print("\n== bench/mqtt_outbox.py", flush=True)
    m = mqtt_outbox.main(["--miners", str(args.miners), *quick])
    print("\n== bench/fleet.py", flush=True)
    f = fleet.main([*n, "--duration", str(args.fleet_duration), *quick])
    print(f"\n== summary: {started}, {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}")
    print(f"{'what':<50}{'result':<40}{'target':<11}{''}")
    for what, result, target, verdict in summary_rows(p, s, m, f):
        print(f"{what:<50}{result:<40}{target:<11}{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
