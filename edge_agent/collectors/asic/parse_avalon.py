"""Canaan Avalon: `version` identity and the `MM ID0` key[value] strings of `estats`/`stats`."""

from __future__ import annotations

import re

from edge_agent.collectors.asic.parse_common import (
    GIGA,
    MinerInfo,
    Out,
    Replies,
    as_mac,
    as_non_negative,
    as_positive,
    as_temperature,
    as_text,
    counters,
    first_row,
    hashrates,
    read_pools,
    rows_of,
)
from edge_agent.collectors.asic.repair import number
from edge_agent.model import Reading

# --- Canaan Avalon -------------------------------------------------------------------------------

_MM_PAIR = re.compile(r"(\w+)\[([^\]]*)\]")


def parse_mm(text: str) -> dict[str, str]:
    """Avalon's `MM ID0` string of `Key[value ...]` pairs as a dict (first occurrence wins)."""
    out: dict[str, str] = {}
    for key, value in _MM_PAIR.findall(text):
        out.setdefault(key, value)
    return out


def _mm_numbers(value: str | None) -> list[float | None]:
    if not value:
        return []
    return [number(part) for part in value.split()]


def parse_avalon(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
    out = Out(miner)
    summary = first_row(replies, "summary", "SUMMARY")
    mm: dict[str, str] = {}
    for command in ("estats", "stats"):
        for row in rows_of(replies, command, "STATS"):
            for key in sorted(k for k in row if k.startswith("MM ID")):
                if isinstance(row[key], str):
                    mm = parse_mm(row[key])
                    break
            if mm:
                break
        if mm:
            break

    short = as_non_negative(mm.get("GHSspd"))
    average = as_non_negative(mm.get("GHSavg"))
    s_short, s_average = hashrates(summary)
    out.set_hashrate(short * GIGA if short is not None else s_short)
    out.add("asic_hashrate_average_hashes_per_second", average * GIGA if average is not None else s_average)
    counters(out, summary)
    if "Hardware Errors" not in summary:
        out.add("asic_hardware_errors_total", as_non_negative(mm.get("HW")))
    if "Elapsed" not in summary:
        out.add("asic_uptime_seconds", as_non_negative(mm.get("Elapsed")))

    for board, rate in enumerate(_mm_numbers(mm.get("MGHS"))):
        out.board("asic_board_hashrate_hashes_per_second", board, None if rate is None or rate < 0 else rate * GIGA)
    for board, temp in enumerate(_mm_numbers(mm.get("MTmax"))):
        out.board("asic_chip_temperature_celsius", board, as_temperature(temp))
    out.fans(number(mm.get(f"Fan{i}")) for i in range(1, 5))
    power = as_positive(mm.get("WALLPOWER"))
    if power is None:
        # PS[...]: the last field is the PSU's output power on the A12-A15 series.
        ps = _mm_numbers(mm.get("PS"))
        power = ps[-1] if ps and ps[-1] is not None and ps[-1] > 0 else None
    out.set_power(power)
    read_pools(out, replies)

    version = first_row(replies, "version", "VERSION")
    found = {"mac": as_mac(version.get("MAC"))}
    prod = as_text(version.get("PROD"))
    if prod:
        found["model"] = prod
    fw = as_text(version.get("VERSION")) or as_text(mm.get("Ver"))
    if fw:
        found["firmware"] = fw
    return base.merged(**found), out.finish()
