"""MQTT through the durable outbox: write rate, publish rate, backlog drain.

Starts its own mosquitto on a free loopback port (never the shared one) and
prints a table. Usage:

    PYTHONPATH=$PWD python bench/mqtt_outbox.py [--messages 100000] [--backlog 300000] [--miners 10000] [--quick]

- outbox append: messages/s committed (render + insert, batches of one 30 s
  poll cycle's worth per transaction), no broker involved;
- live publish: messages/s submitted, committed, published with QoS 1 and
  deleted after PUBACK, end to end;
- baselines, same payloads, same kind of broker: bare aiomqtt QoS 1 publishes with 256 in
  flight, and one at a time (each awaits its PUBACK), no outbox;
- backlog drain: a backlog built while the broker is down drains after it
  comes up, while live data keeps arriving at the rate of `--miners` miners
  every 30 s; prints the drain rate and the time a 1.2 M backlog would take.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiomqtt

from edge_agent.config import AgentConfig, MqttConfig
from edge_agent.model import Reading, Snapshot, Update
from edge_agent.sinks.mqtt import MqttSink
from edge_agent.sinks.outbox import Outbox
from edge_agent.sinks.payload import PayloadBuilder, snapshot_topic

AGENT = AgentConfig(site="bench", name="edge")


def miner_snapshot(m: int, ts: float) -> Snapshot:
    """A miner-sized payload (~600 B): a dozen top-level readings and three boards."""
    top = tuple(Reading(f"asic_metric_{k}_watts", 1000.0 + k + m) for k in range(12))
    boards = tuple(
        Reading(f"asic_board_metric_{k}_celsius", 60.0 + b + k, (("board", str(b)),))
        for b in range(3)
        for k in range(4)
    )
    ip = f"10.{m // 62500}.{m // 250 % 250}.{m % 250 + 1}"
    return Snapshot("asic", f"{ip}:4028", ts, True, top + boards, {"ip": ip, "port": "4028", "make": "bench"})


async def until(condition: Callable[[], bool]) -> None:
    """Poll a plain-number condition (the sink's counters are not awaitable)."""
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.01)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nlog_type error\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def bench_append(path: Path, total: int, batch: int) -> float:
    box = Outbox(path, 1 << 40)
    box.open()
    builder = PayloadBuilder()
    prefix = "edge/bench/edge"
    snaps = [miner_snapshot(m, 1.7e9) for m in range(batch)]

    def render(s: Snapshot, seq: int) -> tuple[str, bytes]:
        return snapshot_topic(prefix, s), builder.snapshot(s, seq)

    t0 = time.perf_counter()
    done = 0
    while done < total:
        done += box.append(snaps, render)
    elapsed = time.perf_counter() - t0
    box.close()
    return done / elapsed


async def bench_live(workdir: Path, total: int) -> float:
    broker = Broker(workdir)
    broker.start()
    cfg = MqttConfig(enabled=True, host="127.0.0.1", port=broker.port, queue_path=workdir / "live.db", keepalive=15)
    sink = MqttSink(cfg, AGENT)
    runner = asyncio.create_task(sink.run())
    await until(lambda: sink.connected)
    t0 = time.perf_counter()
    per_update = 500
    for i in range(total // per_update):
        sink.submit(Update(snapshots=tuple(miner_snapshot(m, 1.7e9 + i) for m in range(per_update))))
        # Production faster than any real site; yield so the pump runs too.
        await asyncio.sleep(0)
        await until(lambda: sink.self_snapshot().readings[1].value <= 20_000)
    await until(lambda: sink.published >= total)
    elapsed = time.perf_counter() - t0
    await sink.aclose()
    await runner
    broker.stop()
    return total / elapsed


async def bench_raw(workdir: Path, total: int, inflight: int) -> float:
    """The baseline: bare aiomqtt QoS 1 publishes of the same payloads, no outbox, `inflight` at once
    (1: each publish awaits its PUBACK before the next)."""
    broker = Broker(workdir)
    broker.start()
    builder = PayloadBuilder()
    snaps = [miner_snapshot(m, 1.7e9) for m in range(1000)]
    messages = [(snapshot_topic("edge/bench/raw", s), builder.snapshot(s, i)) for i, s in enumerate(snaps)]
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, max_inflight_messages=max(inflight, 20)) as client:
            t0 = time.perf_counter()
            if inflight == 1:
                for i in range(total):
                    topic, payload = messages[i % len(messages)]
                    await client.publish(topic, payload, qos=1)
            else:
                window = asyncio.Semaphore(inflight)

                async def one(topic: str, payload: bytes) -> None:
                    try:
                        await client.publish(topic, payload, qos=1)
                    finally:
                        window.release()

                async with asyncio.TaskGroup() as tg:
                    for i in range(total):
                        await window.acquire()
                        tg.create_task(one(*messages[i % len(messages)]))
            elapsed = time.perf_counter() - t0
    finally:
        broker.stop()
    return total / elapsed


async def bench_drain(workdir: Path, backlog: int, miners: int) -> tuple[float, float, int]:
    broker = Broker(workdir)
    path = workdir / "drain.db"
    box = Outbox(path, 1 << 40)
    box.open()
    builder = PayloadBuilder()
    snaps = [miner_snapshot(m, 1.7e9) for m in range(1000)]

    def render(s: Snapshot, seq: int) -> tuple[str, bytes]:
        return snapshot_topic("edge/bench/edge", s), builder.snapshot(s, seq)

    while box.messages < backlog:
        box.append(snaps, render)
    queued = box.messages
    box.close()

    broker.start()
    cfg = MqttConfig(enabled=True, host="127.0.0.1", port=broker.port, queue_path=path, keepalive=15)
    sink = MqttSink(cfg, AGENT)
    runner = asyncio.create_task(sink.run())
    t0 = time.perf_counter()
    live = 0
    # Live data: `miners` snapshots every 30 s, submitted in 1 s slices.
    per_tick = max(1, miners // 30)
    next_tick = t0
    while sink.published < queued + live:
        now = time.perf_counter()
        if now >= next_tick:
            sink.submit(Update(snapshots=tuple(miner_snapshot(m, time.time()) for m in range(per_tick))))
            live += per_tick
            next_tick += 1.0
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - t0
    await sink.aclose()
    await runner
    broker.stop()
    return (queued + live) / elapsed, elapsed, live


async def measure(messages: int, backlog: int, miners: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        append_rate = bench_append(work / "append.db", messages, min(10_000, messages))
        live_rate = await bench_live(work, messages)
        raw_serial = await bench_raw(work, messages // 4, 1)
        raw_pipelined = await bench_raw(work, messages, 256)
        drain_rate, drain_s, live = await bench_drain(work, backlog, miners)
    net = drain_rate - miners / 30
    return {
        "messages": messages,
        "backlog": backlog,
        "miners": miners,
        "append_rate": append_rate,
        "live_rate": live_rate,
        "raw_serial_rate": raw_serial,
        "raw_pipelined_rate": raw_pipelined,
        "drain_rate": drain_rate,
        "drain_s": drain_s,
        "drain_live": live,
        "drain_1m2_s": 1_200_000 / net if net > 0 else float("inf"),
    }


def print_table(r: dict[str, float]) -> None:
    print(f"{'what':<48} {'result':>14}")
    print(f"{'outbox append (render + commit), msg/s':<48} {r['append_rate']:>14,.0f}")
    print(f"{'live publish QoS 1 through the outbox, msg/s':<48} {r['live_rate']:>14,.0f}")
    print(f"{'  baseline: bare aiomqtt, 256 in flight, msg/s':<48} {r['raw_pipelined_rate']:>14,.0f}")
    print(f"{'  baseline: bare aiomqtt, one at a time, msg/s':<48} {r['raw_serial_rate']:>14,.0f}")
    print(
        f"{'  ours / pipelined, ours / one at a time':<48} "
        f"{r['live_rate'] / r['raw_pipelined_rate']:>7.2f} / {r['live_rate'] / r['raw_serial_rate']:.2f}"
    )
    print(f"{'backlog drain incl. live data, msg/s':<48} {r['drain_rate']:>14,.0f}")
    print(f"{'  backlog / live messages / seconds':<48} {r['backlog']:>7,} / {r['drain_live']:,} / {r['drain_s']:.1f}")
    print(f"{'  1.2 M backlog drains in (projected), s':<48} {r['drain_1m2_s']:>14,.0f}")


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--backlog", type=int, default=300_000)
    ap.add_argument("--miners", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true", help="tiny sizes for the smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.messages, args.backlog, args.miners = 2_000, 5_000, 300
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    r = runner(measure(args.messages, args.backlog, args.miners))
    print_table(r)
    return r


if __name__ == "__main__":
    main()
