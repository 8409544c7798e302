"""Braiins OS / OS+ (bosminer, BOSer) through its cgminer-compatible API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_agent.collectors.asic.parse_common import (
    MEGA,
    MinerInfo,
    Out,
    Replies,
    as_positive,
    as_temperature,
    as_text,
    counters,
    first_row,
    hashrates,
    read_pools,
    rows_of,
    status_description,
)
from edge_agent.collectors.asic.repair import number
from edge_agent.model import Reading

# --- Braiins OS / OS+ (bosminer, BOSer) ----------------------------------------------------------


def parse_braiins(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
    out = Out(miner)
    summary = first_row(replies, "summary", "SUMMARY")
    short, average = hashrates(summary)
    out.set_hashrate(short)
    out.add("asic_hashrate_average_hashes_per_second", average)
    counters(out, summary)

    devs = rows_of(replies, "devs", "DEVS")
    details = rows_of(replies, "devdetails", "DEVDETAILS")
    temps = rows_of(replies, "temps", "TEMPS")
    # bosminer keeps the hardware's chain IDs (6..8 on S9); boards are their rank.
    ids = sorted(
        {int(n) for n in (number(row.get("ID")) for row in (*devs, *details, *temps)) if n is not None and n >= 0}
    )
    board_of = {chain: rank for rank, chain in enumerate(ids)}

    def board(row: Mapping[str, Any]) -> int | None:
        n = number(row.get("ID"))
        return None if n is None else board_of.get(int(n))

    nominal = 0.0
    for dev in devs:
        b = board(dev)
        nom = as_positive(dev.get("Nominal MHS"))
        if nom is not None:
            nominal += nom * MEGA
        if b is None:
            continue
        dev_short, dev_average = hashrates(dev)
        out.board("asic_board_hashrate_hashes_per_second", b, dev_short if dev_short is not None else dev_average)
    out.add("asic_nominal_hashrate_hashes_per_second", nominal or None)
    for row in details:
        b = board(row)
        if b is not None:
            out.board("asic_board_chips", b, as_positive(row.get("Chips")))
    for row in temps:
        b = board(row)
        if b is not None:
            # bosminer reports 0.0 for a sensor it cannot read.
            out.board("asic_chip_temperature_celsius", b, as_temperature(row.get("Chip")))
            out.board("asic_board_temperature_celsius", b, as_temperature(row.get("Board")))
    out.fans(number(row.get("RPM")) for row in rows_of(replies, "fans", "FANS"))
    tuner = first_row(replies, "tunerstatus", "TUNERSTATUS")
    out.set_power(as_positive(tuner.get("ApproximateMinerPowerConsumption")))
    read_pools(out, replies)

    found: dict[str, str] = {"firmware": status_description(replies, "summary", "devs", "version", "devdetails")}
    model = next((as_text(row.get("Model")) for row in details if as_text(row.get("Model"))), "")
    if model:
        found["model"] = model
    return base.merged(**found), out.finish()
