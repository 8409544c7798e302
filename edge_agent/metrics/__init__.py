"""The metric table: every metric any collector emits, in one place.

Parsers emit readings by key; both sinks render from this table. Adding a
metric means adding one row to the domain module it belongs to.
"""

from __future__ import annotations

from edge_agent.metrics import agent, asic, gpu, host, summary
from edge_agent.metrics.spec import Metric, MetricType

METRICS: dict[str, Metric] = {}
for _module in (agent, host, asic, gpu, summary):
    for _name, _row in _module.METRICS.items():
        if _name in METRICS:
            raise ValueError(f"metric {_name} defined in two domains")
        METRICS[_name] = _row

__all__ = ["METRICS", "Metric", "MetricType"]
