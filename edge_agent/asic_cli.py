"""`edge-agent scan RANGE...`: find and identify miners, then print a table or JSON."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, TextIO

import orjson

from edge_agent.collectors.asic.discovery import Found, count_addresses, scan
from edge_agent.collectors.asic.limits import raise_nofile_limit
from edge_agent.config import DEFAULT_MINER_PORT, AsicTarget, parse_target
from edge_agent.errors import ConfigError

_MAX_BYTES = 1 << 20


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `scan` subcommand. Its handler is `args.func(args) -> int` (exit code)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "scan",
        help="find and identify miners in address ranges",
        description=(
            "Probe every address of each RANGE (an address, a CIDR range such as 10.1.0.0/22, or address:port) "
            "with read-only API requests, identify what answers and print address, make, model, firmware, "
            "hashrate, power and hottest chip. Exit status 0 when the scan ran, 2 on bad arguments."
        ),
    )
    p.add_argument("ranges", nargs="+", metavar="RANGE", help="address, CIDR range or address:port")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--timeout", type=_positive, default=2.0, help="seconds per request (default 2)")
    p.add_argument("--concurrency", type=_concurrency, default=256, help="connections in flight at most (default 256)")
    p.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_MINER_PORT,
        help=f"port for ranges given without one (default {DEFAULT_MINER_PORT})",
    )
    p.set_defaults(func=run_scan)
    return p


def run_scan(args: argparse.Namespace) -> int:
    try:
        targets = parse_ranges(args.ranges, args.port)
    except ConfigError as exc:
        print(f"edge-agent scan: {exc.problem}", file=sys.stderr)
        return 2
    raise_nofile_limit(args.concurrency)
    show_progress = sys.stderr.isatty()
    found = asyncio.run(
        scan(
            targets,
            request_timeout=args.timeout,
            concurrency=args.concurrency,
            max_bytes=_MAX_BYTES,
            progress=_progress_bar(sys.stderr) if show_progress else None,
        )
    )
    if show_progress:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()
    if args.json:
        sys.stdout.write(render_json(found))
    else:
        sys.stdout.write(render_table(found))
        total = count_addresses(targets)
        print(f"{len(found)} miner(s) found in {total} address(es)", file=sys.stderr)
    sys.stdout.flush()
    return 0


def parse_ranges(texts: list[str], port: int) -> list[AsicTarget]:
    targets = []
    for i, text in enumerate(texts):
        target = parse_target(f"RANGE {i + 1}", text)
        has_port = "]:" in text or text.count(":") == 1
        if not has_port and port != target.port:
            target = AsicTarget(network=target.network, port=port, text=text)
        targets.append(target)
    return targets


def _progress_bar(out: TextIO) -> Any:
    width = 30
    last = [-1]

    def show(done: int, total: int, found: int) -> None:
        filled = width * done // total if total else width
        if filled == last[0] and done != total and done % 64:
            return
        last[0] = filled
        out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} addresses, {found} miner(s)")
        out.flush()

    return show


def _row(f: Found) -> dict[str, Any]:
    return {
        "miner": f.miner,
        "address": f.host,
        "port": f.port,
        "make": f.make or None,
        "model": f.model or None,
        "firmware": f.firmware or None,
        "mac": f.mac or None,
        "serial": f.serial or None,
        "hashrate_hashes_per_second": f.value("asic_hashrate_hashes_per_second"),
        "power_watts": f.value("asic_power_watts"),
        "chip_temperature_max_celsius": f.max_value("asic_chip_temperature_celsius"),
        "error": f.error or None,
    }


def render_json(found: list[Found]) -> str:
    """One JSON array; absent values are null (never 0), units are SI as everywhere else."""
    return orjson.dumps([_row(f) for f in found], option=orjson.OPT_INDENT_2).decode() + "\n"


def render_table(found: list[Found]) -> str:
    header = ("ADDRESS", "MAKE", "MODEL", "FIRMWARE", "HASHRATE", "POWER", "CHIP MAX")
    rows = [header]
    for f in found:
        hashrate = f.value("asic_hashrate_hashes_per_second")
        power = f.value("asic_power_watts")
        chip = f.max_value("asic_chip_temperature_celsius")
        rows.append(
            (
                f.miner,
                f.make or "-",
                f.model or "-",
                f.firmware or "-",
                f"{hashrate / 1e12:.2f} TH/s" if hashrate is not None else (f.error or "-"),
                f"{power:.0f} W" if power is not None else "-",
                f"{chip:.0f} °C" if chip is not None else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    right = {4, 5, 6}
    lines = []
    for r in rows:
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _positive(text: str) -> float:
    x = float(text)
    if not 0 < x <= 600:
        raise argparse.ArgumentTypeError("must be a number of seconds > 0 and <= 600")
    return x


def _concurrency(text: str) -> int:
    n = int(text)
    if not 1 <= n <= 16384:
        raise argparse.ArgumentTypeError("must be from 1 to 16384")
    return n


def _port(text: str) -> int:
    n = int(text)
    if not 1 <= n <= 65535:
        raise argparse.ArgumentTypeError("must be from 1 to 65535")
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-agent")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
