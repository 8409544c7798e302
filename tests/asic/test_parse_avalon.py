"""Canaan Avalon parsed from recorded replies."""

from __future__ import annotations

import pytest

from edge_agent.collectors.asic.parse import PARSERS, MinerInfo, parse_mm

from .helpers import fixture_replies, reading_map

parse = PARSERS["avalon"]
G = 1e9


def board(n: int) -> tuple[tuple[str, str], ...]:
    return (("board", str(n)),)


def test_avalon_1246_estats_mm_string() -> None:
    replies = fixture_replies("avalon-1246_cgminer", "version", "summary", "pools", "estats")
    info, readings = parse(replies, "m", MinerInfo(make="Canaan"))
    got = reading_map(readings)
    assert info == MinerInfo("Canaan", "AvalonMiner 1246", "21042001_4ec6bb0_61407fa", "B4:A2:EB:4D:0C:0B", "")
    assert got["asic_hashrate_hashes_per_second", ()] == pytest.approx(90158.75 * G)  # GHSspd
    assert got["asic_hashrate_average_hashes_per_second", ()] == pytest.approx(89007.00 * G)  # GHSavg
    assert got["asic_power_watts", ()] == 3431  # WALLPOWER
    # MGHS[30132.73 -273 29874.27], MTmax[83 -273 82]: board 1 has no data, boards keep their slots.
    assert got["asic_board_hashrate_hashes_per_second", board(0)] == pytest.approx(30132.73 * G)
    assert got["asic_board_hashrate_hashes_per_second", board(2)] == pytest.approx(29874.27 * G)
    assert got["asic_chip_temperature_celsius", board(0)] == 83
    assert got["asic_chip_temperature_celsius", board(2)] == 82
    assert not [k for k in got if k[1] == board(1)]
    # Fan4[0] is an empty slot.
    assert sorted(v for k, v in got.items() if k[0] == "asic_fan_speed_rpm") == [6000, 6060, 6120]
    assert got["asic_shares_total", (("result", "stale"),)] == 1
    assert ("asic_nominal_hashrate_hashes_per_second", ()) not in got


def test_power_falls_back_to_the_last_ps_field() -> None:
    stats = {"STATS": [{"MM ID0": "GHSspd[100.00] PS[0 1209 1187 297 3526 1188 3400]"}]}
    got = reading_map(parse({"estats": stats}, "m", MinerInfo())[1])
    assert got["asic_power_watts", ()] == 3400


def test_mm_string_pairs() -> None:
    mm = parse_mm("Ver[1.0] SYSTEMSTATU[Work: In Work, Hash Board: 3 ] MGHS[1 2 3] FanR[49%]")
    assert mm["SYSTEMSTATU"] == "Work: In Work, Hash Board: 3 "
    assert mm["MGHS"] == "1 2 3"
    assert mm["FanR"] == "49%"
