"""ePIC (PowerPlay) firmware: HTTP JSON on the miner port."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_agent.collectors.asic.parse_common import (
    MEGA,
    MinerInfo,
    Out,
    Replies,
    as_mac,
    as_non_negative,
    as_positive,
    as_temperature,
    as_text,
)
from edge_agent.collectors.asic.repair import number
from edge_agent.model import Reading

# --- ePIC (HTTP JSON) ----------------------------------------------------------------------------


def _object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_epic(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
    out = Out(miner)
    summary = _object(replies.get("http:/summary"))
    caps = _object(replies.get("http:/capabilities"))
    session_field = summary.get("Session")
    session: Mapping[str, Any] = session_field if isinstance(session_field, Mapping) else {}
    hbs = summary.get("HBs")
    boards = [hb for hb in hbs if isinstance(hb, Mapping)] if isinstance(hbs, list) else []

    total = 0.0
    seen = False
    for rank, hb in enumerate(sorted(boards, key=lambda hb: number(hb.get("Index")) or 0.0)):
        rate_field = hb.get("Hashrate")
        rate = number(rate_field[0] if isinstance(rate_field, list) and rate_field else rate_field)
        if rate is not None and rate >= 0:
            total += rate * MEGA
            seen = True
            out.board("asic_board_hashrate_hashes_per_second", rank, rate * MEGA)
        out.board("asic_board_temperature_celsius", rank, as_temperature(hb.get("Temperature")))
    state = ""
    status = summary.get("Status")
    if isinstance(status, Mapping):
        state = as_text(status.get("Operating State")).lower()
    out.set_hashrate(total if seen else (0.0 if state and state != "mining" else None))
    average = as_non_negative(session.get("Average MHs"))
    out.add("asic_hashrate_average_hashes_per_second", None if average is None else average * MEGA)
    out.shares(number(session.get("Accepted")), number(session.get("Rejected")), None)
    out.add("asic_uptime_seconds", as_non_negative(session.get("Uptime")))
    fans = summary.get("Fans Rpm")
    if isinstance(fans, Mapping):
        out.fans(number(fans[k]) for k in sorted(fans))
    psu = summary.get("Power Supply Stats")
    if isinstance(psu, Mapping):
        out.set_power(as_positive(psu.get("Input Power")))
    stratum = summary.get("Stratum")
    if isinstance(stratum, Mapping) and as_text(stratum.get("Current Pool")):
        out.pool(
            0,
            as_text(stratum.get("Current Pool")),
            as_text(stratum.get("Current User")),
            stratum.get("IsPoolConnected") is True,
        )

    found: dict[str, str] = {"firmware": as_text(summary.get("Software"))}
    model = as_text(caps.get("Model"))
    if model:
        found["model"] = model
    network = summary.get("Network")
    if isinstance(network, Mapping):
        for iface in network.values():
            if isinstance(iface, Mapping) and as_mac(iface.get("mac_address")):
                found["mac"] = as_mac(iface.get("mac_address"))
                break
    return base.merged(**found), out.finish()
