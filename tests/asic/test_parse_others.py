"""ePIC (HTTP) and generic cgminer parsed from recorded replies."""

from __future__ import annotations

import pytest

from edge_agent.collectors.asic.parse import PARSERS, MinerInfo

from .helpers import fixture_replies, reading_map

M = 1e6


def test_epic_summary_and_capabilities() -> None:
    replies = fixture_replies("epic-s19jpro_powerplay", "http:/summary", "http:/capabilities")
    info, readings = PARSERS["epic"](replies, "m", MinerInfo())
    got = reading_map(readings)
    assert info == MinerInfo("", "S19j Pro", "PowerPlay-BM v1.8.7", "9C:12:AB:00:11:22", "")
    boards = [33801234.5, 33712345.6, 33698765.4]
    assert got["asic_hashrate_hashes_per_second", ()] == pytest.approx(sum(boards) * M)
    for i, rate in enumerate(boards):
        assert got["asic_board_hashrate_hashes_per_second", (("board", str(i)),)] == pytest.approx(rate * M)
    assert [got["asic_board_temperature_celsius", (("board", str(i)),)] for i in range(3)] == [61, 64, 63]
    assert got["asic_power_watts", ()] == 3245
    assert got["asic_uptime_seconds", ()] == 5321
    assert got["asic_shares_total", (("result", "accepted"),)] == 3011
    assert [got["asic_fan_speed_rpm", (("fan", str(i)),)] for i in range(4)] == [4260, 4320, 4200, 4230]
    pool = (("pool", "0"), ("url", "stratum+tcp://btc.example.org:3333"), ("user", "site.epic1"))
    assert got["asic_pool_up", pool] == 1.0


def test_generic_cgminer_reads_padded_string_numbers() -> None:
    info, readings = PARSERS["cgminer"](fixture_replies("antminer-d3_cgminer", "version", "summary"), "m", MinerInfo())
    got = reading_map(readings)
    assert info.firmware == "cgminer 4.9.0"
    assert got == {
        ("asic_hashrate_hashes_per_second", ()): pytest.approx(19316.23 * M),
        ("asic_hashrate_average_hashes_per_second", ()): pytest.approx(19288.51 * M),
        ("asic_shares_total", (("result", "accepted"),)): 30012,
        ("asic_shares_total", (("result", "rejected"),)): 41,
        ("asic_shares_total", (("result", "stale"),)): 3,
        ("asic_hardware_errors_total", ()): 298,
        ("asic_uptime_seconds", ()): 40404,
    }


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"MHS 5s": 5.0, "MHS 20s": 7.0}, 5e6),  # the shortest window wins
        ({"MHS 20s": 7.0}, 7e6),  # cgminer's log interval is not always 5 s
        ({"GHS 5s": "1.5"}, 1.5e9),
        ({"KHS 5s": 2}, 2e3),
        ({"MHS 1m": 3.0, "MHS 30s": 4.0}, 4e6),
    ],
)
def test_shortest_window_hashrate_any_unit(row: dict[str, object], expected: float) -> None:
    got = reading_map(PARSERS["cgminer"]({"summary": {"SUMMARY": [row]}}, "m", MinerInfo())[1])
    assert got["asic_hashrate_hashes_per_second", ()] == pytest.approx(expected)


def test_nothing_readable_gives_no_readings_not_zeros() -> None:
    info, readings = PARSERS["cgminer"]({"summary": {"SUMMARY": [{"MHS 5s": "", "Accepted": None}]}}, "m", MinerInfo())
    assert readings == []
    assert info == MinerInfo()
