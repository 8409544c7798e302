"""Metric rows for the gpu domain."""

from __future__ import annotations

from edge_agent.metrics.spec import Metric, table

METRICS: dict[str, Metric] = table()
