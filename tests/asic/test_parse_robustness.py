"""Parsers never crash on odd shapes: any decoded JSON in any field gives readings or nothing, never an exception."""

from __future__ import annotations

import copy
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.collectors.asic.parse import PARSERS, MinerInfo
from edge_agent.metrics import METRICS

from .helpers import fixture_replies

# Field names the parsers look at, so generated replies hit the interesting paths.
KEYS = [
    "STATUS", "SUMMARY", "STATS", "POOLS", "DEVS", "DEVDETAILS", "TEMPS", "FANS", "TUNERSTATUS", "POWER",
    "VERSION", "CONFIG", "Msg", "msg", "summary", "code", "GHS 5s", "GHS av", "MHS 5s", "MHS av", "MHS 20s",
    "rate_unit", "total_rateideal", "chain_rate1", "chain_acn1", "chain_rate6", "chain_acn6", "temp_chip1",
    "temp_pcb1", "temp2_6", "temp6", "fan1", "fan3", "fan_num", "Elapsed", "Accepted", "Rejected", "Stale",
    "Hardware Errors", "POOL", "URL", "User", "Status", "Slot", "Temperature", "Chip Temp Max",
    "Effective Chips", "Factory GHS", "Power", "Power_RT", "Fan Speed In", "Fan Speed Out", "ID", "Chips",
    "Board", "Chip", "RPM", "ApproximateMinerPowerConsumption", "Nominal MHS", "Model", "Type", "MM ID0",
    "PROD", "MAC", "Watts", "MACAddr", "HBs", "Index", "Hashrate", "Session", "Uptime", "Fans Rpm",
    "Power Supply Stats", "Input Power", "Stratum", "Current Pool", "btmineroff", "hash-realtime",
    "board-temperature", "get.miner.status", "Description", "Firmware Version",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**15)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", "0-0-0-0", "2--1-20-22", "  5.0000", "inf", "nan", "-273", "Alive", "GH", "TH", "x[1 2]"])
    | st.text(max_size=12)
)
mm_strings = st.lists(
    st.tuples(
        st.sampled_from(["GHSspd", "GHSavg", "MGHS", "MTmax", "Fan1", "Fan2", "WALLPOWER", "PS", "HW", "Elapsed"]),
        st.lists(st.sampled_from(["1", "-273", "30132.73", "", "x", "nan", "0"]), max_size=4).map(" ".join),
    ),
    max_size=8,
).map(lambda pairs: " ".join(f"{k}[{v}]" for k, v in pairs))
leaf = scalars | mm_strings | st.lists(scalars, max_size=4)
row = st.dictionaries(
    st.sampled_from(KEYS), leaf | st.dictionaries(st.sampled_from(KEYS), leaf, max_size=4), max_size=12
)
section = st.lists(row, max_size=4) | row | scalars
COMMANDS = [
    "summary", "stats", "estats", "pools", "devs", "edevs", "devdetails", "temps", "fans", "tunerstatus",
    "power", "config", "version", "status", "get_version", "get_miner_info", "http:/summary",
    "http:/capabilities", "get.miner.status", "get.device.info",
]  # fmt: skip
replies = st.dictionaries(st.sampled_from(COMMANDS), st.dictionaries(st.sampled_from(KEYS), section, max_size=6))


@settings(max_examples=300, deadline=None)
@given(replies)
def test_every_parser_survives_any_shape(data: dict[str, dict[str, object]]) -> None:
    for name, parser in PARSERS.items():
        info, readings = parser(data, "m", MinerInfo())
        assert isinstance(info, MinerInfo), name
        seen = set()
        for reading in readings:
            row = METRICS[reading.key]
            assert tuple(k for k, _ in reading.labels) == row.labels, (name, reading)
            assert isinstance(reading.value, float) and math.isfinite(reading.value), (name, reading)
            assert (reading.key, reading.labels) not in seen, (name, reading)
            seen.add((reading.key, reading.labels))


CASES = [
    ("antminer", "antminer-s9_bmminer", ("version", "summary", "pools", "stats")),
    ("antminer", "antminer-s19pro_stock", ("version", "summary", "pools", "stats")),
    ("antminer", "antminer-s19jpro_luxos", ("version", "summary+pools+stats+power", "config")),
    ("whatsminer", "whatsminer-m31s_btminer", ("summary", "pools", "edevs", "get_version", "get_miner_info")),
    ("braiins", "antminer-s9_braiins", ("summary", "pools", "devs", "devdetails", "temps", "fans", "tunerstatus")),
    ("avalon", "avalon-1246_cgminer", ("version", "summary", "pools", "estats")),
    ("epic", "epic-s19jpro_powerplay", ("http:/summary", "http:/capabilities")),
    ("cgminer", "antminer-d3_cgminer", ("version", "summary")),
]
_LOADED = {directory: fixture_replies(directory, *commands) for _, directory, commands in CASES}


def _slots(node: object, out: list[tuple[object, object]]) -> list[tuple[object, object]]:
    """Every (container, key) in a decoded JSON tree, depth first."""
    if isinstance(node, dict):
        for key in list(node):
            out.append((node, key))
            _slots(node[key], out)
    elif isinstance(node, list):
        for index in range(len(node)):
            out.append((node, index))
            _slots(node[index], out)
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(CASES),
    st.lists(st.tuples(st.integers(min_value=0), scalars | st.lists(scalars, max_size=3) | st.just({})), max_size=6),
)
def test_every_parser_survives_mutated_real_replies(case, mutations) -> None:
    """Real recorded replies with random fields replaced by values of any type."""
    name, directory, _ = case
    data = copy.deepcopy(_LOADED[directory])
    for position, value in mutations:
        # Below the reply objects: the client guarantees each reply is a JSON object.
        slots = [slot for reply in data.values() for slot in _slots(reply, [])]
        if not slots:
            break
        container, key = slots[position % len(slots)]
        container[key] = value  # type: ignore[index]
    for parser_name in {name, "cgminer"}:
        info, readings = PARSERS[parser_name](data, "m", MinerInfo())
        assert isinstance(info, MinerInfo)
        for reading in readings:
            assert tuple(k for k, _ in reading.labels) == METRICS[reading.key].labels
            assert isinstance(reading.value, float) and math.isfinite(reading.value)
