"""Braiins OS+ (bosminer) parsed from recorded replies."""

from __future__ import annotations

import pytest

from edge_agent.collectors.asic.parse import PARSERS, MinerInfo

from .helpers import fixture_replies, reading_map

parse = PARSERS["braiins"]
COMMANDS = ("summary", "pools", "devs", "devdetails", "temps", "fans", "tunerstatus")


def board(n: int) -> tuple[tuple[str, str], ...]:
    return (("board", str(n)),)


def test_s9_braiins_all_commands() -> None:
    info, readings = parse(fixture_replies("antminer-s9_braiins", *COMMANDS), "m", MinerInfo())
    got = reading_map(readings)
    assert info == MinerInfo("Bitmain", "Antminer S9", "BOSminer+ 0.2.0-36c56a9363", "", "")
    assert got["asic_hashrate_hashes_per_second", ()] == pytest.approx(14183286.64e6)
    assert got["asic_hashrate_average_hashes_per_second", ()] == pytest.approx(14041117.26e6)
    # Nominal is per board in devs; the miner's is their sum.
    assert got["asic_nominal_hashrate_hashes_per_second", ()] == pytest.approx(3 * 4720000.0e6)
    assert got["asic_power_watts", ()] == 1283  # tunerstatus ApproximateMinerPowerConsumption
    assert got["asic_efficiency_joules_per_terahash", ()] == pytest.approx(1283 / 14.18328664)
    # bosminer IDs 6, 7, 8 are boards 0, 1, 2.
    assert got["asic_board_hashrate_hashes_per_second", board(0)] == pytest.approx(4737128.38e6)
    assert [got["asic_board_chips", board(i)] for i in range(3)] == [63, 63, 62]
    assert [got["asic_board_temperature_celsius", board(i)] for i in range(3)] == [75, 63, 70]
    # "Chip": 0.0 means no reading on this firmware.
    assert not [k for k in got if k[0] == "asic_chip_temperature_celsius"]
    # Fans reporting 0 rpm are empty slots.
    assert sorted(v for k, v in got.items() if k[0] == "asic_fan_speed_rpm") == [4080, 4320]
    assert got["asic_uptime_seconds", ()] == 6120
    assert got["asic_hardware_errors_total", ()] == 34


def test_missing_commands_leave_their_readings_absent() -> None:
    _, readings = parse(fixture_replies("antminer-s9_braiins", "summary"), "m", MinerInfo())
    keys = {r.key for r in readings}
    assert "asic_power_watts" not in keys
    assert not any(k.startswith("asic_board") for k in keys)
    assert "asic_hashrate_hashes_per_second" in keys
