"""Sinks consume snapshots: the Prometheus endpoint and the MQTT uplink."""
