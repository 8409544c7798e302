"""Metric rows for the asic domain: one miner per `miner="<ip>:<port>"` label value.

Hashrates are in hashes per second whatever unit the firmware uses, boards are
numbered 0..n-1 in physical order whatever the firmware calls them, and a value
the firmware does not report (or reports as a sentinel such as -273) is absent,
never 0.
"""

from __future__ import annotations

from edge_agent.metrics.spec import Metric, table

_RESET = "Resets to 0 when the miner's mining software restarts."

METRICS: dict[str, Metric] = table(
    Metric("asic_up", "gauge", "1 if the miner answered its API this interval, 0 otherwise.", ("miner",)),
    Metric(
        "asic_info",
        "gauge",
        "Identity of the miner as reported by its firmware (always 1); empty labels are unknown.",
        ("miner", "make", "model", "firmware", "mac", "serial"),
    ),
    Metric(
        "asic_hashrate_hashes_per_second",
        "gauge",
        "Hashrate over the firmware's shortest window (usually 5 s); 0 while the miner is up but not hashing.",
        ("miner",),
    ),
    Metric(
        "asic_hashrate_average_hashes_per_second",
        "gauge",
        "Average hashrate as the firmware reports it (since start or over its longest window).",
        ("miner",),
    ),
    Metric(
        "asic_nominal_hashrate_hashes_per_second",
        "gauge",
        "Factory or ideal hashrate, where the firmware reports it.",
        ("miner",),
    ),
    Metric(
        "asic_board_hashrate_hashes_per_second",
        "gauge",
        "Hashrate of one hash board (boards numbered 0..n-1 in physical order).",
        ("miner", "board"),
        group="boards",
    ),
    Metric("asic_board_chips", "gauge", "ASIC chips detected on one hash board.", ("miner", "board"), group="boards"),
    Metric(
        "asic_chip_temperature_celsius",
        "gauge",
        "Temperature of the hottest chip on one hash board.",
        ("miner", "board"),
        unit="celsius",
        group="boards",
    ),
    Metric(
        "asic_board_temperature_celsius",
        "gauge",
        "Temperature of the hottest PCB sensor on one hash board.",
        ("miner", "board"),
        unit="celsius",
        group="boards",
    ),
    Metric(
        "asic_fan_speed_rpm",
        "gauge",
        "Fan speed in revolutions per minute (fans numbered 0..n-1).",
        ("miner", "fan"),
        group="fans",
    ),
    Metric(
        "asic_power_watts",
        "gauge",
        "Power drawn by the miner as its firmware reports it; absent where the firmware does not report power.",
        ("miner",),
        unit="watts",
    ),
    Metric(
        "asic_efficiency_joules_per_terahash",
        "gauge",
        "Power divided by hashrate in joules per terahash; present only when both are reported and above 0.",
        ("miner",),
    ),
    Metric(
        "asic_shares_total",
        "counter",
        f"Shares submitted to pools by result (accepted, rejected, stale). {_RESET}",
        ("miner", "result"),
        group="shares",
    ),
    Metric(
        "asic_hardware_errors_total",
        "counter",
        f"Hardware errors (bad nonces) counted by the firmware. {_RESET}",
        ("miner",),
    ),
    Metric(
        "asic_uptime_seconds",
        "gauge",
        "Seconds since the miner's mining software started (drops to 0 when it restarts).",
        ("miner",),
        unit="seconds",
    ),
    Metric(
        "asic_pool_up",
        "gauge",
        "1 if the firmware reports the pool alive, 0 otherwise (pools numbered 0..n-1 by priority).",
        ("miner", "pool", "url", "user"),
        group="pools",
    ),
    Metric(
        "asic_poll_duration_seconds",
        "gauge",
        "Wall time of the last poll of the miner, failed polls included.",
        ("miner",),
        unit="seconds",
    ),
)
