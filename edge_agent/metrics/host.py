"""Metric rows for the host domain."""

from __future__ import annotations

from edge_agent.metrics.spec import Metric, table

METRICS: dict[str, Metric] = table()
