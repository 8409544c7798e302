"""`edge-agent simulate`: run a simulated miner fleet on loopback addresses until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from typing import Any

import orjson

from edge_agent.sim.server import DEFAULT_PORT, FAULT_KINDS, SimFleet, fleet_summary

log = logging.getLogger(__name__)


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `simulate` subcommand. Its handler is `args.func(args) -> int` (exit code)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="run a simulated miner fleet on loopback addresses",
        description=(
            "Start COUNT simulated miners, one listener each on BASE, BASE+1, ... (port 4028), with a mix of "
            "firmwares and their real API quirks. Prints the CIDR range to point the agent at on the first line "
            "of stdout (or, with --json-manifest, one JSON line listing every miner), then serves until "
            "SIGINT or SIGTERM. Exit status: 0 when stopped, 1 if it cannot listen, 2 on bad arguments, "
            "3 if any non-read (privileged) command reached a simulated miner."
        ),
    )
    p.add_argument("--count", type=_count, default=100, help="number of miners (default 100)")
    p.add_argument("--base", type=_loopback, default="127.11.0.0", help="first address, in 127.0.0.0/8")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port every miner listens on (default {DEFAULT_PORT})"
    )
    p.add_argument("--seed", type=int, default=1, help="seed for the firmware mix, states and faults (default 1)")
    p.add_argument("--faults", type=_fraction, default=0.0, help="fraction of miners given a fault, 0 to 1 (default 0)")
    p.add_argument(
        "--fault-kinds",
        type=_kinds,
        default=FAULT_KINDS,
        help=f"comma-separated fault kinds to spread the faulty miners over (default {','.join(FAULT_KINDS)})",
    )
    p.add_argument(
        "--slow-delay",
        type=float,
        default=10.0,
        help="seconds a 'slow' miner waits before answering; below the agent's timeout it is slow but up (default 10)",
    )
    p.add_argument(
        "--evolve-interval",
        type=float,
        default=5.0,
        help="a miner's state changes at most this often in seconds; 0 freezes it (default 5)",
    )
    p.add_argument("--json-manifest", action="store_true", help="print one JSON line describing every miner")
    p.set_defaults(func=run_simulate)
    return p


def run_simulate(args: argparse.Namespace) -> int:
    try:
        fleet = SimFleet(
            args.count,
            base=args.base,
            port=args.port,
            seed=args.seed,
            faults=args.faults,
            fault_kinds=args.fault_kinds,
            slow_delay=args.slow_delay,
            evolve_interval=args.evolve_interval,
        )
    except ValueError as exc:
        print(f"edge-agent simulate: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    try:
        return int(runner(_serve(fleet, json_manifest=args.json_manifest)))
    except KeyboardInterrupt:
        return 0


async def _serve(fleet: SimFleet, *, json_manifest: bool) -> int:
    try:
        await fleet.start()
    except OSError as exc:
        print(f"edge-agent simulate: cannot listen: {exc}", file=sys.stderr)
        return 1
    try:
        if json_manifest:
            doc = {"network": str(fleet.network), "port": fleet.port, "miners": fleet.manifest()}
            sys.stdout.write(orjson.dumps(doc).decode() + "\n")
        else:
            sys.stdout.write(f"{fleet.network}\n")
        sys.stdout.flush()
        counts = ", ".join(f"{n} {k}" for k, n in sorted(fleet_summary(fleet).items()))
        print(
            f"simulating {len(fleet.miners)} miners on {fleet.network} port {fleet.port} ({counts}); "
            f'point the agent at targets = ["{fleet.network}"]. Ctrl-C stops.',
            file=sys.stderr,
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        blocked = fleet.recorder.privileged
        if blocked:
            # The agent is read-only by construction: say loudly if anything else ever arrived.
            listed = ", ".join(f"{cmd} x{n}" for cmd, n in blocked.most_common())
            print(f"edge-agent simulate: PRIVILEGED COMMANDS RECEIVED: {listed}", file=sys.stderr)
            return 3
    finally:
        await fleet.stop()
    return 0


def _count(text: str) -> int:
    n = int(text)
    if not 0 <= n <= 65536:
        raise argparse.ArgumentTypeError("must be from 0 to 65536")
    return n


def _fraction(text: str) -> float:
    x = float(text)
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError("must be a fraction from 0 to 1")
    return x


def _loopback(text: str) -> str:
    try:
        addr = ipaddress.IPv4Address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 address") from exc
    if not addr.is_loopback:
        raise argparse.ArgumentTypeError(f"{text} is not in 127.0.0.0/8; the simulator only binds loopback")
    return text


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    for k in kinds:
        if k not in FAULT_KINDS:
            raise argparse.ArgumentTypeError(f"unknown fault kind {k!r} (known: {', '.join(FAULT_KINDS)})")
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-agent")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
