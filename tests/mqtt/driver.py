"""A small agent process for the crash and will tests: an MqttSink fed with synthetic updates.

    python tests/mqtt/driver.py '<json config>' --count N [--start I] [--per-update K]

Prints `committed <last seq>` whenever the outbox committed more, `published <n>`
as acknowledgements arrive, and `idle` once everything fed was committed. On
SIGTERM it closes the sink cleanly (explicit offline status) and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import AGENT, mqtt_config, update

from edge_agent.sinks.mqtt import MqttSink


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("config", help="JSON: port, queue and MqttConfig overrides")
    ap.add_argument("--count", type=int, default=0, help="updates to feed")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--per-update", type=int, default=5, help="miner snapshots per update")
    ap.add_argument("--interval", type=float, default=0.005, help="seconds between updates")
    args = ap.parse_args()
    raw = orjson.loads(args.config)
    port, queue = int(raw.pop("port")), Path(raw.pop("queue"))
    sink = MqttSink(mqtt_config(port, queue, **raw), AGENT)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    runner = asyncio.create_task(sink.run())

    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    await sink.flush()  # the outbox is open: last_seq is where this run starts
    say(f"start {sink.last_seq}")
    last_committed = last_published = -1
    fed = 0
    while not stop.is_set():
        if fed < args.count:
            sink.submit(update(args.start + fed, miners=args.per_update))
            fed += 1
            if fed == args.count:
                await sink.flush()
                say(f"committed {sink.last_seq}")
                say("idle")
        if sink.last_seq != last_committed:
            last_committed = sink.last_seq
            say(f"committed {last_committed}")
        if sink.published != last_published:
            last_published = sink.published
            say(f"published {last_published}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(args.interval):
                await stop.wait()
    await sink.aclose()
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    say("closed")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main()))
