"""The shared field helpers, in particular the per-key-list caches behind them: a cached layout
must give what a fresh look at the row would, whatever the values."""

from __future__ import annotations

import pytest

from edge_agent.collectors.asic.parse import PARSERS, MinerInfo
from edge_agent.collectors.asic.parse_common import hashrates, hottest_dash

from .helpers import reading_map

G, M = 1e9, 1e6


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"MHS 5s": 5.0, "MHS 1m": 6.0, "MHS av": 7.0}, (5 * M, 7 * M)),
        # The shortest window wins wherever it sits; units differ per key.
        ({"GHS 1m": 2.0, "MHS 30s": 3.0, "GHS av": 4.0}, (3 * M, 4 * G)),
        # A window outside the common ones still counts.
        ({"GHS 900s": 1.0, "GHS 2h": 2.0}, (1 * G, None)),
        # The shortest has no number: the next one is taken.
        ({"GHS 5s": "", "GHS 15m": "1.5", "GHS av": "bad"}, (1.5 * G, None)),
        # Two averages side by side: the last in the row.
        ({"GHS av": 1.0, "MHS av": 2.0}, (None, 2 * M)),
        ({"Elapsed": 5, "XHS 5s": 1.0, "MHS 5x": 1.0, "GHS": 1.0}, (None, None)),
        ({}, (None, None)),
    ],
)
def test_hashrates(row: dict[str, object], expected: tuple[float | None, float | None]) -> None:
    assert hashrates(row) == expected


def test_hashrates_of_the_same_keys_follow_the_values() -> None:
    # Same key list twice, different values: the layout is cached, the values never are.
    assert hashrates({"GHS 5s": 1.0, "GHS av": 2.0}) == (1 * G, 2 * G)
    assert hashrates({"GHS 5s": 3.0, "GHS av": None}) == (3 * G, None)
    assert hashrates({"GHS 5s": -1, "GHS av": 4.0}) == (None, 4 * G)


@pytest.mark.parametrize(
    ("text", "hottest"),
    [("7-4-76-78", 78.0), ("0-0-0-0", None), ("", None), ("2--1-47-50", 50.0), ("-8--11", -8.0), (5, None)],
)
def test_hottest_dash(text: object, hottest: float | None) -> None:
    assert hottest_dash(text) == hottest
    assert hottest_dash(text) == hottest  # and again, from the cache


def stats_row(rates: list[str], fans: dict[str, int], *, extra: int = 0) -> dict[str, object]:
    row: dict[str, object] = {"STATS": 0, "ID": "BTM_SOC0", "GHS 5s": 100.0, "rate_unit": "GH"}
    for i, rate in enumerate(rates, start=1):
        row[f"chain_acn{i + extra}"] = 48 if rate else 0
        row[f"chain_rate{i + extra}"] = rate
    row.update(fans)
    return row


def test_antminer_layout_is_per_key_list_and_values_are_read_each_time() -> None:
    parse = PARSERS["antminer"]
    first = {"stats": {"STATS": [stats_row(["10", "20", ""], {"fan1": 100, "fan2": 200})]}}
    # The same keys with a third chain now hashing and the first fan stopped.
    second = {"stats": {"STATS": [stats_row(["10", "20", "30"], {"fan1": 0, "fan2": 250})]}}
    got1 = reading_map(parse(first, "m", MinerInfo())[1])
    got2 = reading_map(parse(second, "m", MinerInfo())[1])
    assert ("asic_board_hashrate_hashes_per_second", (("board", "2"),)) not in got1
    assert got2["asic_board_hashrate_hashes_per_second", (("board", "2"),)] == 30 * G
    assert got1["asic_fan_speed_rpm", (("fan", "1"),)] == 200
    assert got2["asic_fan_speed_rpm", (("fan", "0"),)] == 250
    assert ("asic_fan_speed_rpm", (("fan", "1"),)) not in got2


def test_antminer_chain_slots_numbered_from_11_and_a_high_fan_slot() -> None:
    row = stats_row(["10", "20"], {"fan70": 900}, extra=10)
    got = reading_map(PARSERS["antminer"]({"stats": {"STATS": [row]}}, "m", MinerInfo())[1])
    assert got["asic_board_hashrate_hashes_per_second", (("board", "0"),)] == 10 * G
    assert got["asic_board_hashrate_hashes_per_second", (("board", "1"),)] == 20 * G
    assert got["asic_fan_speed_rpm", (("fan", "0"),)] == 900


def test_merged_keeps_the_instance_when_nothing_changes() -> None:
    info = MinerInfo("Bitmain", "Antminer S19", "vnish 1.2.6", "AA:BB:CC:DD:EE:FF", "")
    assert info.merged(model="Antminer S19", firmware=" vnish 1.2.6 ", serial="") is info
    assert info.merged(model="Antminer S19j").model == "Antminer S19j"
