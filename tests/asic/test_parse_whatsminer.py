"""Whatsminer btminer API v2 parsed from recorded replies."""

from __future__ import annotations

import pytest

from edge_agent.collectors.asic.parse import PARSERS, MinerInfo

from .helpers import fixture_replies, reading_map

parse = PARSERS["whatsminer"]
M = 1e6


def board(n: int) -> tuple[tuple[str, str], ...]:
    return (("board", str(n)),)


def test_m31s_summary_edevs_pools_and_identity() -> None:
    replies = fixture_replies(
        "whatsminer-m31s_btminer", "summary", "pools", "edevs", "get_version", "get_miner_info", "devdetails"
    )
    info, readings = parse(replies, "m", MinerInfo(make="MicroBT"))
    got = reading_map(readings)
    assert info == MinerInfo(
        "MicroBT", "Whatsminer M31S+V40", "20201202.22.REL", "C6:06:12:00:2D:63", "ZYZX20A1B230823K40012"
    )
    assert got["asic_hashrate_hashes_per_second", ()] == pytest.approx(92768288.94 * M)
    assert got["asic_hashrate_average_hashes_per_second", ()] == pytest.approx(76718604.38 * M)
    assert got["asic_nominal_hashrate_hashes_per_second", ()] == pytest.approx(75697e9)
    assert got["asic_power_watts", ()] == 3553
    assert got["asic_efficiency_joules_per_terahash", ()] == pytest.approx(3553 / 92.76828894)
    assert got["asic_fan_speed_rpm", (("fan", "0"),)] == 5700
    assert got["asic_fan_speed_rpm", (("fan", "1"),)] == 5670
    assert got["asic_uptime_seconds", ()] == 33102  # btminer Elapsed, not system Uptime
    assert [got["asic_board_chips", board(i)] for i in range(3)] == [111, 111, 111]
    assert [got["asic_chip_temperature_celsius", board(i)] for i in range(3)] == [91, 93, 92]
    assert [got["asic_board_temperature_celsius", board(i)] for i in range(3)] == [71, 72, 70]
    assert got["asic_board_hashrate_hashes_per_second", board(1)] == pytest.approx(30956911.30 * M)
    # btminer numbers pools from 1; the agent from 0.
    pools = sorted(dict(k[1])["pool"] for k in got if k[0] == "asic_pool_up")
    assert pools == ["0", "1"]


def test_identity_without_summary_comes_from_get_commands() -> None:
    replies = fixture_replies("whatsminer-m31s_btminer", "get_version", "get_miner_info", "devdetails")
    info, readings = parse(replies, "m", MinerInfo(make="MicroBT"))
    assert info.firmware == "20201202.22.REL"
    assert info.mac == "C6:06:12:00:2D:63"
    assert readings == []


def test_stopped_btminer_is_up_and_not_hashing() -> None:
    info, readings = parse(fixture_replies("whatsminer-m31s_btminer-stopped", "status"), "m", MinerInfo())
    assert reading_map(readings) == {("asic_hashrate_hashes_per_second", ()): 0.0}
    assert info.firmware == "20210109.22.REL"


def test_zero_power_is_absent_not_zero() -> None:
    summary = {"SUMMARY": [{"MHS 5s": 1000.0, "Power": 0, "Power_RT": 0, "Fan Speed Out": 0, "Fan Speed In": 4000}]}
    got = reading_map(parse({"summary": summary}, "m", MinerInfo())[1])
    assert ("asic_power_watts", ()) not in got
    assert ("asic_efficiency_joules_per_terahash", ()) not in got
    assert got["asic_fan_speed_rpm", (("fan", "0"),)] == 4000
    assert ("asic_fan_speed_rpm", (("fan", "1"),)) not in got
