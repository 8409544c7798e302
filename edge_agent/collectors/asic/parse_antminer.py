"""Bitmain Antminer stock firmware (bmminer/cgminer, S9- and S19-class), and LuxOS and VNish,
which keep its API."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from edge_agent.collectors.asic.parse_common import (
    GIGA,
    UNIT,
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
    hottest_dash,
    read_pools,
    rows_of,
)
from edge_agent.collectors.asic.repair import number
from edge_agent.model import Reading

# --- Bitmain Antminer stock, and firmware built on its API (LuxOS, VNish) -------------------------

# A chain is present when it reports chips or a rate: chain_acnN / chain_rateN. Fans are fanN.
_STATS_KEY = re.compile(r"(?:chain_acn|chain_rate|(fan))(\d+)")


class _ChainKeys(NamedTuple):
    n: int
    acn: str
    rate: str
    temp_chip: str
    temp2: str
    temp_pcb: str
    temp: str


class _Layout(NamedTuple):
    chains: tuple[_ChainKeys, ...]  # every chain slot the row names, in slot order
    fans: tuple[str, ...]  # fan keys in slot order


# The stats row has about 70 keys and the firmware sends the same ones every poll: which are
# chains and fans is worked out once per distinct key list. Bounded, like the rate layouts.
@lru_cache(maxsize=256)
def _layout(keys: tuple[str, ...]) -> _Layout:
    chains: set[int] = set()
    fans: list[int] = []
    for match in map(_STATS_KEY.fullmatch, keys):
        if match:
            fan, n = match.groups()
            if fan:
                fans.append(int(n))
            else:
                chains.add(int(n))
    return _Layout(
        tuple(
            _ChainKeys(n, f"chain_acn{n}", f"chain_rate{n}", f"temp_chip{n}", f"temp2_{n}", f"temp_pcb{n}", f"temp{n}")
            for n in sorted(chains)
        ),
        tuple(f"fan{n}" for n in sorted(fans)),
    )


_TYPE_FIRMWARE = re.compile(r"^(?P<model>.*?)\s*\((?P<fw>[^)]*)\)\s*$")


def _chain_base(present: list[int]) -> int:
    """The number the firmware gives its first chain slot.

    Stock S19/S21 numbers chains 1..4; S9-era bmminer numbers them 6..8 and some
    firmware 11..13 (with the lower slots listed empty). Boards are numbered
    from the slot base so that a dead board keeps the others' numbers.
    """
    low = min(present)
    if low <= 5:
        return 1
    if low <= 10:
        return 6
    return 11


def _antminer_model(replies: Replies) -> tuple[str, str]:
    """(model, firmware-from-Type) from `Type`, e.g. "Antminer S17 Pro (vnish 2.0.4)"."""
    for command, key in (("version", "VERSION"), ("stats", "STATS")):
        for row in rows_of(replies, command, key):
            kind = as_text(row.get("Type"))
            if kind:
                match = _TYPE_FIRMWARE.match(kind)
                if match:
                    return match.group("model"), match.group("fw")
                return kind, ""
    return "", ""


def parse_antminer(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
    out = Out(miner)
    summary = first_row(replies, "summary", "SUMMARY")
    stats_rows = rows_of(replies, "stats", "STATS")
    data: Mapping[str, Any] = {}
    for row in stats_rows:
        if any(key.startswith(("chain_", "GHS", "MHS", "fan")) for key in row):
            data = row
            break
    # Sleep mode on stock Antminer (bitmain-work-mode 1): stats answers with no rows.
    sleeping = "stats" in replies and not data and not any(k.endswith(" 5s") for k in summary)

    short, average = hashrates(data) if data else (None, None)
    if short is None:
        short, s_average = hashrates(summary)
        average = average if average is not None else s_average
    elif average is None:
        average = hashrates(summary)[1]
    out.set_hashrate(0.0 if sleeping else short)
    out.add("asic_hashrate_average_hashes_per_second", average)

    unit = UNIT.get(as_text(data.get("rate_unit"))[:1].upper(), GIGA) if data else GIGA
    ideal = as_positive(data.get("total_rateideal"))
    out.add("asic_nominal_hashrate_hashes_per_second", None if ideal is None else ideal * unit)

    counters(out, summary, uptime=data.get("Elapsed") if data else None)

    layout = _layout(tuple(data))
    present = [
        names
        for names in layout.chains
        if as_positive(data.get(names.acn)) is not None or as_non_negative(data.get(names.rate)) is not None
    ]
    if present:
        chain_base = _chain_base([names.n for names in present])
        for names in present:
            board = names.n - chain_base
            rate = as_non_negative(data.get(names.rate))
            out.board("asic_board_hashrate_hashes_per_second", board, None if rate is None else rate * unit)
            out.board("asic_board_chips", board, as_positive(data.get(names.acn)))
            chip = hottest_dash(data.get(names.temp_chip))
            if chip is None:
                chip = as_temperature(data.get(names.temp2))
            out.board("asic_chip_temperature_celsius", board, chip)
            pcb = hottest_dash(data.get(names.temp_pcb))
            if pcb is None:
                pcb = as_temperature(data.get(names.temp))
            out.board("asic_board_temperature_celsius", board, pcb)

    # Fans: fan1..fanN; S9 lists eight slots with zeros for the empty ones.
    out.fans(number(data[key]) for key in layout.fans)

    # LuxOS reports power through its `power` command; stock firmware reports none.
    power_row = first_row(replies, "power", "POWER")
    out.set_power(as_positive(power_row.get("Watts")))

    read_pools(out, replies)
    model, type_fw = _antminer_model(replies)
    found: dict[str, str] = {"model": model}
    # The stats header repeats the version fields; once identified, only `version` may change the firmware.
    header = first_row(replies, "version", "VERSION") or (stats_rows[0] if stats_rows and not base.firmware else {})
    if as_text(header.get("LUXminer")):
        found["firmware"] = f"LuxOS {as_text(header.get('LUXminer'))}"
    elif type_fw:
        # VNish names itself inside Type: "Antminer S17 Pro (vnish 2.0.4)".
        found["firmware"] = type_fw
    elif as_text(header.get("CompileTime")):
        # Stock firmware is identified by its build time, as Bitmain's web UI shows it.
        found["firmware"] = as_text(header.get("CompileTime"))
    config = first_row(replies, "config", "CONFIG")
    if config:
        found["mac"] = as_mac(config.get("MACAddr"))
    return base.merged(**found), out.finish()
