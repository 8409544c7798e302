"""MicroBT Whatsminer: btminer API v2 (cgminer-style, port 4028) and API v3 (port 4433)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_agent.collectors.asic.parse_common import (
    GIGA,
    TERA,
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

# --- MicroBT Whatsminer, btminer API v2 ---------------------------------------------------------


def _btminer_msg(replies: Replies, command: str) -> Mapping[str, Any]:
    """btminer's `get_*`/`status` replies carry an object in `Msg` (STATUS is a string)."""
    reply = replies.get(command)
    if isinstance(reply, Mapping):
        msg = reply.get("Msg")
        if isinstance(msg, Mapping):
            return msg
    return {}


def _strip_quotes(value: object) -> str:
    # btminer wraps its firmware version in single quotes: "'20201202.22.REL'".
    return as_text(value).strip("'")


def btminer_off(replies: Replies) -> bool:
    """True when btminer's `status` says the mining process is stopped."""
    return as_text(_btminer_msg(replies, "status").get("btmineroff")).lower() == "true"


def parse_whatsminer(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
    out = Out(miner)
    summary = first_row(replies, "summary", "SUMMARY")
    found: dict[str, str] = {}
    if btminer_off(replies):
        # Stopped btminer answers only `status`: up, not hashing.
        out.set_hashrate(0.0)
        found["firmware"] = _strip_quotes(_btminer_msg(replies, "status").get("Firmware Version"))
    short, average = hashrates(summary)
    out.set_hashrate(short)
    out.add("asic_hashrate_average_hashes_per_second", average)
    factory = as_positive(summary.get("Factory GHS"))
    out.add("asic_nominal_hashrate_hashes_per_second", None if factory is None else factory * GIGA)
    power = as_positive(summary.get("Power"))
    out.set_power(power if power is not None else as_positive(summary.get("Power_RT")))
    counters(out, summary)
    out.fans((number(summary.get("Fan Speed In")), number(summary.get("Fan Speed Out"))))

    devs = rows_of(replies, "edevs", "DEVS") or rows_of(replies, "devs", "DEVS")
    slots = [number(d.get("Slot", d.get("ASC"))) for d in devs]
    use_slot = all(s is not None and s >= 0 and s == int(s) for s in slots) and len(set(slots)) == len(slots)
    for rank, dev in enumerate(devs):
        slot = slots[rank]
        board = int(slot) if use_slot and slot is not None else rank
        dev_short, dev_average = hashrates(dev)
        rate = dev_short if dev_short is not None else dev_average
        out.board("asic_board_hashrate_hashes_per_second", board, rate)
        out.board("asic_board_chips", board, as_positive(dev.get("Effective Chips")))
        out.board("asic_chip_temperature_celsius", board, as_temperature(dev.get("Chip Temp Max")))
        out.board("asic_board_temperature_celsius", board, as_temperature(dev.get("Temperature")))

    read_pools(out, replies)
    version = _btminer_msg(replies, "get_version")
    info_msg = _btminer_msg(replies, "get_miner_info")
    details = first_row(replies, "devdetails", "DEVDETAILS")
    fw = _strip_quotes(summary.get("Firmware Version")) or as_text(version.get("fw_ver"))
    if fw:
        found["firmware"] = fw
    found["mac"] = as_mac(summary.get("MAC")) or as_mac(info_msg.get("mac"))
    found["serial"] = as_text(info_msg.get("minersn"))
    model = as_text(details.get("Model"))
    if model:
        found["model"] = model if model.lower().startswith("whatsminer") else f"Whatsminer {model}"
    return base.merged(**found), out.finish()


# --- MicroBT Whatsminer, API v3 (port 4433) ---------------------------------------------------------


def _v3_msg(replies: Replies, command: str) -> Mapping[str, Any]:
    reply = replies.get(command)
    msg = reply.get("msg") if isinstance(reply, Mapping) else None
    return msg if isinstance(msg, Mapping) else {}


def _v3_section(msg: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    section = msg.get(key)
    return section if isinstance(section, Mapping) else {}


def parse_whatsminer_v3(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
    """`get.miner.status` (summary) and `get.device.info`: hashrates in TH/s.

    Only the documented summary fields are read: per-board temperatures come
    from `board-temperature[]`; v3's pools and edevs layouts are not documented
    well enough to trust, so shares, pools and per-board rates stay absent.
    """
    out = Out(miner)
    summary = _v3_section(_v3_msg(replies, "get.miner.status"), "summary")
    info = _v3_msg(replies, "get.device.info")
    realtime = as_non_negative(summary.get("hash-realtime"))
    out.set_hashrate(None if realtime is None else realtime * TERA)
    average = as_non_negative(summary.get("hash-average"))
    out.add("asic_hashrate_average_hashes_per_second", None if average is None else average * TERA)
    factory = as_positive(summary.get("factory-hash"))
    out.add("asic_nominal_hashrate_hashes_per_second", None if factory is None else factory * TERA)
    out.set_power(as_positive(summary.get("power-realtime")))
    out.add("asic_uptime_seconds", as_non_negative(summary.get("elapsed")))
    out.fans((number(summary.get("fan-speed-in")), number(summary.get("fan-speed-out"))))
    temps = summary.get("board-temperature")
    if isinstance(temps, list):
        for board, temp in enumerate(temps):
            out.board("asic_board_temperature_celsius", board, as_temperature(temp))

    found: dict[str, str] = {}
    hardware = _v3_section(info, "miner")
    kind = as_text(hardware.get("type"))
    if kind:
        found["model"] = kind if kind.lower().startswith("whatsminer") else f"Whatsminer {kind}"
    found["serial"] = as_text(hardware.get("miner-sn"))
    found["firmware"] = as_text(_v3_section(info, "system").get("fwversion"))
    found["mac"] = as_mac(_v3_section(info, "network").get("mac"))
    return base.merged(**found), out.finish()
