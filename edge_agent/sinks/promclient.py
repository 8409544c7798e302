"""The same snapshots as a prometheus_client custom Collector.

The endpoint serves the faster pre-rendered path in `exposition`; this
collector is the reference it is checked against (tests parse both and compare)
and the baseline the scrape benchmark measures against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from edge_agent.metrics import METRICS
from edge_agent.model import Snapshot


class SnapshotCollector(Collector):
    """Builds fresh metric families from the latest snapshots on every collect()."""

    def __init__(self, snapshots: Callable[[], Iterable[Snapshot]]) -> None:
        self._snapshots = snapshots

    def describe(self) -> list[Metric]:
        # Nothing to declare up front: families exist only while some device reports them.
        return []

    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for snap in self._snapshots():
            for key, value, labels in snap.readings:
                row = METRICS.get(key)
                if row is None:
                    continue
                fam = families.get(key)
                if fam is None:
                    names = list(row.labels)
                    if row.type == "counter":
                        fam = CounterMetricFamily(row.family, row.help, labels=names, unit=_unit(row.family, row.unit))
                    else:
                        fam = GaugeMetricFamily(row.name, row.help, labels=names, unit=_unit(row.name, row.unit))
                    families[key] = fam
                fam.add_metric([v for _, v in labels], value)
        for key in METRICS:
            if key in families:
                yield families[key]


def _unit(name: str, unit: str) -> str:
    return unit if unit and name.endswith("_" + unit) else ""


def registry_for(snapshots: Callable[[], Iterable[Snapshot]]) -> CollectorRegistry:
    """A registry of its own (never the global one) holding just this collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshots))
    return registry
