"""The whole agent against a large faulty fleet: CPU, memory, coverage and scrape time.

    PYTHONPATH=$PWD python bench/fleet.py [--miners 10000] [--duration 240] [--interval 30] [--quick]

An hour, as the scale issue asks for "no growth over an hour": `--duration 3600`.

First, on its own, it times the raw asyncio + json poll of bench/poll.py against 2,000
simulated miners: this machine's speed, to scale the CPU share to the machine the issue's
targets were set on. Then it starts, each in its own process:
  - a simulated fleet of `--miners` miners (bench/simproc.py), `--faults` of them
    faulty, spread over refused, blackhole, garbage, endless and slow (a slow miner
    answers after `--slow-delay` s, under the agent's 5 s timeout: slow but up);
  - a mosquitto on a free loopback port (unless --no-mqtt), so the MQTT sink and
    its durable outbox run as in production;
  - `python -m edge_agent run` with a config that scans the fleet's range, polls
    every `--interval` s, serves /metrics and publishes to the broker.

After a warm-up (the first scan and every healthy miner reported up), it
measures for `--duration` s: the agent's CPU (utime+stime from /proc/<pid>/stat)
as a percentage of one core, its RSS (VmRSS) at start, end, max and the slope of
a least-squares line through the samples, the wall time of /metrics scrapes
taken while it polls (gzip every --scrape-every seconds as Prometheus does, and
a plain one every fourth time), and, from the simulator's side, whether
every healthy miner was polled in every interval (the longest gap between two
polls of each miner, and the polls in the window).
"""

from __future__ import annotations

import argparse
import gzip
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import poll
from mqtt_outbox import Broker, free_port
from simproc import SimProcess, proc_cpu_seconds, proc_rss_bytes

ROOT = Path(__file__).resolve().parent.parent
FAULTS = ("refused", "blackhole", "garbage", "endless", "slow")


def scrape(port: int, *, gzipped: bool = False) -> tuple[float, bytes]:
    headers = {"Accept-Encoding": "gzip"} if gzipped else {}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = resp.read()
    elapsed = time.perf_counter() - t0
    return elapsed, gzip.decompress(body) if gzipped else body


def up_count(body: bytes) -> int:
    return sum(1 for line in body.split(b"\n") if line.startswith(b"asic_up{") and line.endswith(b" 1"))


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 3:
        return 0.0
    ts = [t for t, _ in samples]
    vs = [v for _, v in samples]
    mt, mv = statistics.fmean(ts), statistics.fmean(vs)
    den = sum((t - mt) ** 2 for t in ts)
    return 0.0 if den == 0 else sum((t - mt) * (v - mv) for t, v in zip(ts, vs, strict=True)) / den * 3600


def quarter_medians(samples: list[tuple[float, float]]) -> list[float]:
    """The median RSS of each quarter of the window: growth shows as a rising sequence, noise does not."""
    vs = [v for _, v in samples]
    if len(vs) < 4:
        return vs
    q = len(vs) / 4
    return [statistics.median(vs[int(i * q) : int((i + 1) * q)]) for i in range(4)]


# The raw asyncio + json baseline's CPU per poll on the machine the scale issue's targets were set
# on (its table: ~0.13 ms). Absolute CPU shares move with the machine; this says by how much.
REFERENCE_RAW_MS = 0.13


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"miners": args.miners, "interval": args.interval, "duration": args.duration}
    # This machine's speed, measured first, on its own: the same raw poll bench/poll.py compares to.
    out["raw_ms"] = poll.raw_baseline(min(args.miners, 2000), runs=1 if args.quick else 3)
    with (
        tempfile.TemporaryDirectory() as tmp,
        SimProcess(
            args.miners,
            base=args.base,
            faults=args.faults,
            fault_kinds=FAULTS,
            slow_delay=args.slow_delay,
            seed=args.seed,
        ) as sim,
    ):
        work = Path(tmp)
        healthy = [m for m in sim.manifest if m["fault"] is None]
        out["healthy"] = len(healthy)
        out["faulty"] = {k: sum(1 for m in sim.manifest if m["fault"] == k) for k in FAULTS}
        broker = None
        mqtt = ""
        if not args.no_mqtt:
            broker = Broker(work)
            broker.start()
            mqtt = (
                f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\nqueue_path = "{work}/outbox.db"\n'
            )
        port = free_port()
        config = work / "agent.toml"
        config.write_text(
            f'[agent]\nsite = "bench"\nname = "fleet"\n[prometheus]\nlisten = "127.0.0.1:{port}"\n'
            "[gpu]\nenabled = false\n"
            f'[asic]\ntargets = ["{sim.network}"]\ninterval = {args.interval}\n'
            f"timeout = {min(5.0, args.interval / 2)}\n"
            f"concurrency = {args.concurrency}\nscan_timeout = 2\n" + mqtt
        )
        log = (work / "agent.log").open("wb")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        agent = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(ROOT),
        )
        try:
            t_start = time.monotonic()
            # Warm-up: the scan finds the fleet, every healthy miner is identified and reported up.
            deadline = t_start + args.warmup_max
            ups = 0
            while time.monotonic() < deadline:
                if agent.poll() is not None:
                    raise RuntimeError(f"the agent exited with {agent.returncode}: {(work / 'agent.log').read_text()}")
                time.sleep(1.0)
                try:
                    ups = up_count(scrape(port)[1])
                except OSError:
                    continue
                if ups >= len(healthy):
                    break
            out["warmup_s"] = time.monotonic() - t_start
            out["up_after_warmup"] = ups
            # One more interval so every miner is on its steady schedule, then measure.
            time.sleep(min(args.interval, max(args.duration / 4, 1.0)))
            sim.mark()
            cpu0, sim_cpu0, t0 = proc_cpu_seconds(agent.pid), sim.cpu_seconds(), time.monotonic()
            rss: list[tuple[float, float]] = [(0.0, proc_rss_bytes(agent.pid) / 1e6)]
            scrapes: list[float] = []
            gz_scrapes: list[float] = []
            body = b""
            next_sample = t0 + args.sample
            next_scrape = t0 + args.scrape_every / 2
            end = t0 + args.duration
            while (now := time.monotonic()) < end:
                if agent.poll() is not None:
                    raise RuntimeError(f"the agent exited with {agent.returncode}")
                if now >= next_sample:
                    rss.append((now - t0, proc_rss_bytes(agent.pid) / 1e6))
                    next_sample += args.sample
                if now >= next_scrape:
                    # As Prometheus scrapes: gzip every --scrape-every; a plain scrape every fourth
                    # time as well, to time the uncompressed body too.
                    took_gz, body = scrape(port, gzipped=True)
                    gz_scrapes.append(took_gz)
                    if len(gz_scrapes) % 4 == 1:
                        took, body = scrape(port)
                        scrapes.append(took)
                    next_scrape += args.scrape_every
                time.sleep(max(0.0, min(next_sample, next_scrape, end) - time.monotonic()))
            wall = time.monotonic() - t0
            cpu = proc_cpu_seconds(agent.pid) - cpu0
            sim_cpu = sim.cpu_seconds() - sim_cpu0
            rss.append((wall, proc_rss_bytes(agent.pid) / 1e6))
            cov = sim.coverage()
        finally:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(30)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
            log.close()
            if broker is not None:
                broker.stop()
        agent_log = (work / "agent.log").read_text(errors="replace")

    healthy_idx = [m["index"] for m in healthy]
    gaps = [cov["gaps"][i] for i in healthy_idx]
    # A miner polled every interval has gaps of about one interval; two intervals means a missed slot.
    missed = sum(1 for g in gaps if g > args.interval * 1.5)
    polls_total = sum(cov["polls"])
    out.update(
        {
            "window_s": wall,
            "cpu_pct": cpu / wall * 100,
            "sim_cpu_pct": sim_cpu / wall * 100,
            "ms_per_poll": cpu / max(polls_total, 1) * 1000,
            "raw_ratio": cpu / max(polls_total, 1) * 1000 / out["raw_ms"],
            "cpu_pct_at_reference": cpu / wall * 100 * REFERENCE_RAW_MS / out["raw_ms"],
            "polls_per_s": polls_total / wall,
            "healthy_missed": missed,
            "max_gap_s": max(gaps) if gaps else 0.0,
            "min_polls": min(cov["polls"][i] for i in healthy_idx) if healthy_idx else 0,
            "rss_start_mb": rss[0][1],
            "rss_end_mb": rss[-1][1],
            "rss_max_mb": max(v for _, v in rss),
            "rss_slope_mb_per_h": slope_per_hour(rss[1:]),
            "rss_quarters_mb": quarter_medians(rss[1:]),
            "scrape_ms_median": statistics.median(scrapes) * 1000 if scrapes else float("nan"),
            "scrape_ms_max": max(scrapes) * 1000 if scrapes else float("nan"),
            "scrape_gzip_ms_median": statistics.median(gz_scrapes) * 1000 if gz_scrapes else float("nan"),
            "scrapes": len(scrapes),
            "body_mb": len(body) / 1e6,
            "samples": sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#")),
            "errors_logged": sum(1 for line in agent_log.splitlines() if "ERROR" in line or "Traceback" in line),
        }
    )
    return out


def print_table(r: dict[str, Any]) -> None:
    faulty = ", ".join(f"{n} {k}" for k, n in r["faulty"].items())
    print(
        f"fleet benchmark: {r['miners']:,} miners ({r['healthy']:,} healthy; {faulty}), interval {r['interval']:g} s, "
        f"measured {r['window_s']:.0f} s after a {r['warmup_s']:.0f} s warm-up"
    )
    rows = [
        ("agent CPU, % of one core", f"{r['cpu_pct']:.1f} %", "<= 25 % (see next rows)"),
        ("agent CPU per poll (all miners, all costs)", f"{r['ms_per_poll']:.3f} ms", ""),
        ("baseline: raw asyncio + json poll, this machine", f"{r['raw_ms']:.3f} ms (issue's machine: 0.13)", ""),
        ("agent CPU per poll / raw poll", f"{r['raw_ratio']:.2f}x", ""),
        (
            "agent CPU at the issue's machine's speed",
            f"{r['cpu_pct_at_reference']:.1f} % of one core (x 0.13 / {r['raw_ms']:.3f})",
            "<= 25 %",
        ),
        ("polls/s (simulator's count)", f"{r['polls_per_s']:,.0f}", ""),
        (
            "healthy miners missing an interval",
            f"{r['healthy_missed']} of {r['healthy']:,} (max gap {r['max_gap_s']:.1f} s)",
            "0",
        ),
        (
            "RSS start / end / max",
            f"{r['rss_start_mb']:.0f} / {r['rss_end_mb']:.0f} / {r['rss_max_mb']:.0f} MB",
            "<= 250 MB",
        ),
        ("RSS slope", f"{r['rss_slope_mb_per_h']:+.1f} MB/h", "no growth"),
        ("RSS median per quarter of the window", " / ".join(f"{v:.0f}" for v in r["rss_quarters_mb"]) + " MB", ""),
        (
            "/metrics scrape wall, median / max",
            f"{r['scrape_ms_median']:.0f} / {r['scrape_ms_max']:.0f} ms "
            f"({r['samples']:,} samples, {r['body_mb']:.1f} MB)",
            "",
        ),
        ("/metrics gzip scrape wall, median", f"{r['scrape_gzip_ms_median']:.0f} ms", ""),
        ("simulator CPU (not counted), % of one core", f"{r['sim_cpu_pct']:.1f} %", ""),
        ("ERROR lines in the agent's log", str(r["errors_logged"]), "0"),
    ]
    print(f"{'what':<48}{'result':<52}{'target'}")
    for what, result, target in rows:
        print(f"{what:<48}{result:<52}{target}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--miners", type=int, default=10_000)
    ap.add_argument("--duration", type=float, default=240.0, help="seconds measured after warm-up (an hour: 3600)")
    ap.add_argument("--interval", type=float, default=30.0)
    ap.add_argument("--faults", type=float, default=0.1)
    ap.add_argument("--slow-delay", type=float, default=3.0)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--base", default="127.31.0.0")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    ap.add_argument("--scrape-every", type=float, default=15.0, help="seconds between scrapes (as Prometheus would)")
    ap.add_argument("--warmup-max", type=float, default=300.0)
    ap.add_argument("--no-mqtt", action="store_true", help="run without the MQTT sink and its broker")
    ap.add_argument("--quick", action="store_true", help="tiny sizes for the smoke test (100 miners, 4 s interval)")
    args = ap.parse_args(argv)
    if args.quick:
        args.miners, args.duration, args.interval = min(args.miners, 100), 8.0, 4.0
        args.sample, args.scrape_every, args.slow_delay, args.warmup_max = 1.0, 4.0, 1.0, 60.0
    r = run(args)
    print_table(r)
    return r


if __name__ == "__main__":
    main()
