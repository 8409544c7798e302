"""Synthetic updates and configs shared by the MQTT tests and the driver script."""

from __future__ import annotations

from pathlib import Path

from edge_agent.config import AgentConfig, MqttConfig, Secret
from edge_agent.model import Event, Reading, Snapshot, Update

AGENT = AgentConfig(site="site-a", name="edge-1")
PREFIX = "edge/site-a/edge-1"


def mqtt_config(port: int, queue: Path, **kw: object) -> MqttConfig:
    fields: dict[str, object] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "client_id": "site-a-edge-1",
        "queue_path": queue,
        "backoff_max": 0.5,
        "keepalive": 5,
    }
    fields.update(kw)
    if isinstance(fields.get("password"), str):
        fields["password"] = Secret(str(fields["password"]), "test")
    return MqttConfig(**fields)  # type: ignore[arg-type]


def update(i: int, *, miners: int = 1, ts: float = 1_700_000_000.0) -> Update:
    """One collection: `miners` miner snapshots, no labels needed from the (empty) table."""
    snaps = tuple(
        Snapshot(
            "asic",
            f"10.0.{m // 250}.{m % 250 + 1}:4028",
            ts + i,
            True,
            (Reading("asic_power_watts", 3200.0 + i), Reading("asic_fan_speed_rpm", 4000.0, (("fan", "0"),))),
            {"ip": f"10.0.{m // 250}.{m % 250 + 1}", "port": "4028"},
        )
        for m in range(miners)
    )
    return Update(snapshots=snaps)


def event(i: int) -> Update:
    return Update(events=(Event("miner_down", "10.0.0.1:4028", 1_700_000_000.0 + i, {"reason": "refused"}),))
