"""Anything else that answers the cgminer API: read generically rather than rejected."""

from __future__ import annotations

from edge_agent.collectors.asic.parse_common import (
    MinerInfo,
    Out,
    Replies,
    as_text,
    counters,
    first_row,
    hashrates,
    read_pools,
    status_description,
)
from edge_agent.model import Reading

# --- anything else that speaks the cgminer API ---------------------------------------------------


def parse_cgminer(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
    out = Out(miner)
    summary = first_row(replies, "summary", "SUMMARY")
    short, average = hashrates(summary)
    out.set_hashrate(short if short is not None else average)
    out.add("asic_hashrate_average_hashes_per_second", average)
    counters(out, summary)
    read_pools(out, replies)
    found: dict[str, str] = {}
    version = first_row(replies, "version", "VERSION")
    model = as_text(version.get("Type")) or as_text(version.get("PROD"))
    if model:
        found["model"] = model
    if not base.firmware:
        found["firmware"] = status_description(replies, "summary", "version")
    return base.merged(**found), out.finish()
