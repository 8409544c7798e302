"""Snapshot and event payloads: shape derived from the metric table, valid against schemas/."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson
import pytest

from edge_agent.metrics import METRICS, Metric
from edge_agent.model import Event, Reading, Snapshot
from edge_agent.sinks.payload import PayloadBuilder, snapshot_topic, status_payload, topic_level

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"

# A stand-in table with the shapes the real one uses (the domain tables are
# filled by the collectors; the payload code must not depend on which rows exist).
TABLE: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("asic_hashrate_hashes_per_second", "gauge", "h", unit="hashes_per_second"),
        Metric("asic_power_watts", "gauge", "p", unit="watts"),
        Metric("asic_board_hashrate_hashes_per_second", "gauge", "h", ("board",), group="boards"),
        Metric("asic_board_chip_temperature_celsius", "gauge", "t", ("board",), unit="celsius", group="boards"),
        Metric("asic_fan_speed_rpm", "gauge", "f", ("fan",), group="fans"),
        Metric("asic_pool_accepted_shares_total", "counter", "a", ("pool", "url"), group="pools"),
        Metric("gpu_power_watts", "gauge", "p", unit="watts"),
        Metric("gpu_process_memory_bytes", "gauge", "m", ("pid", "name"), unit="bytes"),
        Metric("site_hashrate_hashes_per_second", "gauge", "h"),
    )
}


def schema(name: str) -> dict[str, object]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())  # type: ignore[no-any-return]


def validate(name: str, payload: bytes) -> dict[str, object]:
    doc = orjson.loads(payload)
    jsonschema.Draft202012Validator(schema(name)).validate(doc)
    return doc  # type: ignore[no-any-return]


def miner() -> Snapshot:
    b0, b1 = (("board", "0"),), (("board", "1"),)
    return Snapshot(
        "asic",
        "10.0.0.5:4028",
        1_700_000_000.5,
        True,
        (
            Reading("asic_hashrate_hashes_per_second", 1.1e14),
            Reading("asic_power_watts", 3250.0),
            Reading("asic_board_hashrate_hashes_per_second", 3.6e13, b0),
            Reading("asic_board_chip_temperature_celsius", 71.5, b0),
            Reading("asic_board_hashrate_hashes_per_second", 3.7e13, b1),
            Reading("asic_board_chip_temperature_celsius", 69.0, b1),
            Reading("asic_fan_speed_rpm", 4200.0, (("fan", "0"),)),
            Reading("asic_pool_accepted_shares_total", 10.0, (("pool", "0"), ("url", "stratum+tcp://a:3333"))),
        ),
        {"ip": "10.0.0.5", "port": "4028", "make": "Antminer", "model": "S19"},
    )


def test_asic_payload_groups_labelled_readings() -> None:
    doc = validate("asic", PayloadBuilder(TABLE).snapshot(miner(), 42))
    assert doc == {
        "ts": 1_700_000_000.5,
        "seq": 42,
        "device": "10.0.0.5:4028",
        "up": True,
        "ip": "10.0.0.5",
        "port": "4028",
        "make": "Antminer",
        "model": "S19",
        "hashrate_hashes_per_second": 1.1e14,
        "power_watts": 3250.0,
        "boards": [
            {"board": "0", "hashrate_hashes_per_second": 3.6e13, "chip_temperature_celsius": 71.5},
            {"board": "1", "hashrate_hashes_per_second": 3.7e13, "chip_temperature_celsius": 69.0},
        ],
        "fans": [{"fan": "0", "speed_rpm": 4200.0}],
        "pools": [{"pool": "0", "url": "stratum+tcp://a:3333", "accepted_shares_total": 10.0}],
    }


def test_down_device_and_ungrouped_labels() -> None:
    down = Snapshot("asic", "10.0.0.6:4028", 1.0, False, ())
    assert validate("asic", PayloadBuilder(TABLE).snapshot(down, 1)) == {
        "ts": 1.0,
        "seq": 1,
        "device": "10.0.0.6:4028",
        "up": False,
    }
    gpu = Snapshot(
        "gpu",
        "GPU-1234",
        2.0,
        True,
        (Reading("gpu_power_watts", 300.0), Reading("gpu_process_memory_bytes", 1e9, (("pid", "7"), ("name", "x")))),
        {"index": "0", "name": "H100"},
    )
    doc = validate("gpu", PayloadBuilder(TABLE).snapshot(gpu, 2))
    assert doc["process_memory_bytes"] == [{"pid": "7", "name": "x", "value": 1e9}]
    assert doc["power_watts"] == 300.0


def test_reserved_keys_are_not_overwritten() -> None:
    snap = Snapshot("host", "h1", 3.0, True, (), {"seq": "bogus", "device": "bogus", "os": "linux"})
    doc = validate("host", PayloadBuilder(TABLE).snapshot(snap, 9))
    assert doc["seq"] == 9
    assert doc["device"] == "h1"
    assert doc["os"] == "linux"


def test_summary_and_event_payloads() -> None:
    snap = Snapshot("summary", "site-a", 4.0, True, (Reading("site_hashrate_hashes_per_second", 5e17),))
    assert validate("summary", PayloadBuilder(TABLE).snapshot(snap, 3))["hashrate_hashes_per_second"] == 5e17
    ev = Event("gpu_xid", "GPU-1", 5.0, {"xid": 79, "message": "fell off the bus", "seq": 1})
    doc = validate("events", PayloadBuilder.event(ev, 77))
    assert doc == {"xid": 79, "message": "fell off the bus", "kind": "gpu_xid", "device": "GPU-1", "ts": 5.0, "seq": 77}


def test_status_payload() -> None:
    common = {"site": "s", "name": "n", "client_id": "s-n", "version": "0.1.0"}
    validate("status", status_payload("online", 1.0, **common))
    doc = validate("status", status_payload("offline", 1.0, reason="stopped", **common))
    assert doc["status"] == "offline"
    assert doc["reason"] == "stopped"


def test_every_published_row_of_the_real_table_renders_valid_payloads() -> None:
    """Whatever rows the collectors add, their payloads stay valid."""
    by_source = {"asic": "asic", "gpu": "gpu", "host": "host", "site": "summary"}
    for prefix, source in by_source.items():
        rows = [m for m in METRICS.values() if m.name.startswith(prefix + "_")]
        readings = tuple(Reading(m.name, 1.0, tuple((label, "x") for label in m.labels)) for m in rows)
        device = "10.0.0.1:4028" if source == "asic" else "dev"
        payload = PayloadBuilder().snapshot(Snapshot(source, device, 1.0, True, readings), 1)
        doc = validate(source, payload)
        for m in rows:
            if not m.labels:
                assert doc[m.name.split("_", 1)[1]] == 1.0, m.name


@pytest.mark.parametrize(
    ("source", "device", "topic"),
    [
        ("asic", "10.0.0.5:4028", "p/asic/10.0.0.5:4028"),
        ("gpu", "GPU-abc", "p/gpu/GPU-abc"),
        ("host", "box1", "p/host"),
        ("summary", "site", "p/summary"),
        ("asic", "a/b+#", "p/asic/a_b__"),
    ],
)
def test_topics(source: str, device: str, topic: str) -> None:
    assert snapshot_topic("p", Snapshot(source, device, 0.0, True, ())) == topic


def test_topic_level_never_empty() -> None:
    assert topic_level("") == "_"
