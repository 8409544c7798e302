"""Bitmain Antminer stock (S9-class bmminer, S19-class), LuxOS and VNish parsed from recorded replies."""

from __future__ import annotations

import pytest

from edge_agent.collectors.asic.parse import PARSERS, MinerInfo, parse_dash_temps

from .helpers import fixture_replies, reading_map

parse = PARSERS["antminer"]
G = 1e9


def board(n: int) -> tuple[tuple[str, str], ...]:
    return (("board", str(n)),)


def test_s9_bmminer_chains_6_to_8_become_boards_0_to_2() -> None:
    replies = fixture_replies("antminer-s9_bmminer", "version", "summary", "pools", "stats")
    info, readings = parse(replies, "m", MinerInfo(make="Bitmain"))
    got = reading_map(readings)
    assert info == MinerInfo("Bitmain", "Antminer S9", "Fri Nov 17 17:37:49 CST 2017", "", "")
    # "GHS 5s" is a string on S9 bmminer.
    assert got["asic_hashrate_hashes_per_second", ()] == pytest.approx(13628.52 * G)
    assert got["asic_hashrate_average_hashes_per_second", ()] == pytest.approx(13504.11 * G)
    assert got["asic_nominal_hashrate_hashes_per_second", ()] == pytest.approx(13501.14 * G)
    assert got["asic_board_hashrate_hashes_per_second", board(0)] == pytest.approx(4542.84 * G)
    assert got["asic_board_hashrate_hashes_per_second", board(1)] == pytest.approx(4486.59 * G)
    assert got["asic_board_hashrate_hashes_per_second", board(2)] == pytest.approx(4599.09 * G)
    assert [got["asic_board_chips", board(i)] for i in range(3)] == [63, 63, 63]
    # S9: temp2_N is the chip temperature, tempN the PCB.
    assert [got["asic_chip_temperature_celsius", board(i)] for i in range(3)] == [75, 78, 74]
    assert [got["asic_board_temperature_celsius", board(i)] for i in range(3)] == [60, 62, 59]
    # Eight fan slots, two fitted (fan3, fan6): empty slots are absent, not 0.
    assert got["asic_fan_speed_rpm", (("fan", "0"),)] == 5880
    assert got["asic_fan_speed_rpm", (("fan", "1"),)] == 4080
    assert ("asic_fan_speed_rpm", (("fan", "2"),)) not in got
    assert got["asic_shares_total", (("result", "accepted"),)] == 11702
    assert got["asic_shares_total", (("result", "rejected"),)] == 15
    assert got["asic_shares_total", (("result", "stale"),)] == 2
    assert got["asic_hardware_errors_total", ()] == 1387
    assert got["asic_uptime_seconds", ()] == 70937
    # Pool with an empty URL is not a pool.
    pools = {k[1]: v for k, v in got.items() if k[0] == "asic_pool_up"}
    assert pools == {
        (("pool", "0"), ("url", "stratum+tcp://stratum.example.com:3333"), ("user", "site.s9a")): 1.0,
        (("pool", "1"), ("url", "stratum+tcp://backup.example.com:443"), ("user", "site.s9a")): 0.0,
    }
    # Stock firmware reports no power: absent, and so no efficiency.
    assert ("asic_power_watts", ()) not in got
    assert ("asic_efficiency_joules_per_terahash", ()) not in got
    assert not any(k[0].startswith("asic_board") and k[1] == board(3) for k in got)


def test_s19_stock_dash_temperatures_rate_unit_and_empty_fourth_chain() -> None:
    replies = fixture_replies("antminer-s19pro_stock", "version", "summary", "pools", "stats")
    info, readings = parse(replies, "m", MinerInfo(make="Bitmain"))
    got = reading_map(readings)
    assert info.model == "Antminer S19 Pro"
    assert info.firmware == "Wed Oct 21 10:18:10 CST 2020"
    assert got["asic_hashrate_hashes_per_second", ()] == pytest.approx(110786.79 * G)
    assert got["asic_nominal_hashrate_hashes_per_second", ()] == pytest.approx(111859.0 * G)
    assert got["asic_board_hashrate_hashes_per_second", board(2)] == pytest.approx(34942.48 * G)
    # "temp_chip1": "7-4-25-27" -> hottest 27; "temp_pcb1": "2--1-20-22" (a -1 reading) -> 22.
    assert got["asic_chip_temperature_celsius", board(0)] == 27
    assert got["asic_board_temperature_celsius", board(0)] == 22
    assert [got["asic_board_chips", board(i)] for i in range(3)] == [114, 114, 114]
    # chain_rate4 "" / chain_acn4 0 / "0-0-0-0": no fourth board at all.
    assert not [k for k in got if k[1] == board(3)]
    assert [got["asic_fan_speed_rpm", (("fan", str(i)),)] for i in range(4)] == [5520, 5400, 5040, 5040]
    assert ("asic_power_watts", ()) not in got


def test_s19_sleeping_is_up_with_zero_hashrate_and_nothing_else_invented() -> None:
    _, readings = parse(fixture_replies("antminer-s19pro_stock-sleeping", "stats"), "m", MinerInfo())
    assert reading_map(readings) == {("asic_hashrate_hashes_per_second", ()): 0.0}


def test_luxos_multicommand_reply_with_power() -> None:
    replies = fixture_replies("antminer-s19jpro_luxos", "version", "summary+pools+stats+power", "config")
    info, readings = parse(replies, "m", MinerInfo(make="Bitmain"))
    got = reading_map(readings)
    assert info == MinerInfo("Bitmain", "Antminer S19j Pro", "LuxOS 2023.10.5-162516", "C0:A8:01:0B:22:33", "")
    assert got["asic_power_watts", ()] == 3062
    assert got["asic_hashrate_hashes_per_second", ()] == pytest.approx(104312.55 * G)
    assert got["asic_efficiency_joules_per_terahash", ()] == pytest.approx(3062 / 104.31255)
    assert got["asic_chip_temperature_celsius", board(1)] == 76
    assert got["asic_board_temperature_celsius", board(2)] == 58


def test_vnish_firmware_and_model_come_from_type() -> None:
    info, readings = parse(fixture_replies("antminer-s17pro_vnish", "version"), "m", MinerInfo(make="Bitmain"))
    assert info == MinerInfo("Bitmain", "Antminer S17 Pro", "vnish 2.0.4", "", "")
    assert readings == []


def test_the_stats_header_never_overrides_an_identified_firmware() -> None:
    replies = fixture_replies("antminer-s19jpro_luxos", "summary+pools+stats+power")
    info, _ = parse(replies, "m", MinerInfo("Bitmain", "Antminer S19j Pro", "LuxOS 2023.10.5-162516"))
    assert info.firmware == "LuxOS 2023.10.5-162516"


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("7-4-25-27", [7, 4, 25, 27]),
        ("2--1-20-22", [2, -1, 20, 22]),
        ("-8--11-10-12", [-8, -11, 10, 12]),
        ("0-0-0-0", []),
        ("", []),
        ("45.5-60.25", [45.5, 60.25]),
    ],
)
def test_dash_joined_sensor_strings(text: str, values: list[float]) -> None:
    assert parse_dash_temps(text) == values


def test_rate_unit_th_scales_chain_rates() -> None:
    stats = {
        "STATS": [
            {"Type": "Antminer S21"},
            {"GHS 5s": 200000.0, "rate_unit": "TH", "chain_rate1": "66.5", "chain_acn1": 108, "total_rateideal": 200},
        ]
    }
    _, readings = parse({"stats": stats}, "m", MinerInfo())
    got = reading_map(readings)
    assert got["asic_board_hashrate_hashes_per_second", board(0)] == pytest.approx(66.5e12)
    assert got["asic_nominal_hashrate_hashes_per_second", ()] == pytest.approx(200e12)
    assert got["asic_hashrate_hashes_per_second", ()] == pytest.approx(200000.0 * G)


def test_a_dead_middle_chain_keeps_the_other_boards_numbers() -> None:
    data = {"GHS 5s": 1.0, "chain_acn1": 114, "chain_rate1": "100", "chain_acn2": 0, "chain_rate2": ""}
    data |= {"chain_acn3": 114, "chain_rate3": "100", "chain_acn4": 0, "chain_rate4": ""}
    _, readings = parse({"stats": {"STATS": [{"Type": "Antminer S19"}, data]}}, "m", MinerInfo())
    boards = sorted({dict(r.labels)["board"] for r in readings if r.key.startswith("asic_board")})
    assert boards == ["0", "2"]
