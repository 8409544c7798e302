"""Sinks: where snapshots go (Prometheus endpoint, MQTT broker)."""
