"""The agent's own metrics: build, collectors, the MQTT uplink."""

from __future__ import annotations

from edge_agent.metrics.spec import Metric, table

METRICS: dict[str, Metric] = table(
    Metric("edge_agent_build_info", "gauge", "Build of the running agent (always 1).", ("version",)),
    Metric(
        "edge_agent_collector_up",
        "gauge",
        "1 if the collector's last run succeeded, 0 if it failed or timed out.",
        ("collector",),
    ),
    Metric(
        "edge_agent_collector_duration_seconds",
        "gauge",
        "Wall time of the collector's last run.",
        ("collector",),
        unit="seconds",
    ),
    Metric(
        "edge_agent_collector_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the collector's last successful run.",
        ("collector",),
        unit="seconds",
    ),
    Metric(
        "edge_agent_collector_errors_total",
        "counter",
        "Runs of the collector that failed or timed out since the agent started.",
        ("collector",),
    ),
    Metric(
        "edge_agent_collector_timeouts_total",
        "counter",
        "Runs of the collector cancelled for exceeding their timeout since the agent started.",
        ("collector",),
    ),
    Metric("edge_agent_mqtt_connected", "gauge", "1 while connected to the MQTT broker."),
    Metric("edge_agent_mqtt_queue_messages", "gauge", "Messages in the durable outbox awaiting PUBACK."),
    Metric(
        "edge_agent_mqtt_queue_bytes",
        "gauge",
        "Payload bytes in the durable outbox awaiting PUBACK.",
        unit="bytes",
    ),
    Metric(
        "edge_agent_mqtt_queue_durable",
        "gauge",
        "1 while the outbox writes to disk; 0 while it falls back to memory (disk full or file unusable).",
    ),
    Metric(
        "edge_agent_mqtt_published_messages_total",
        "counter",
        "Messages acknowledged by the broker since the agent started.",
    ),
    Metric(
        "edge_agent_mqtt_dropped_messages_total",
        "counter",
        "Messages dropped because the outbox exceeded queue_max_bytes or was unusable.",
    ),
    Metric(
        "edge_agent_mqtt_reconnects_total",
        "counter",
        "Connection attempts to the MQTT broker after the first since the agent started.",
    ),
)
