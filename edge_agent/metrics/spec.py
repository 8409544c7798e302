"""The shape of one row of the metric table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricType = Literal["gauge", "counter"]


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric: the single source of its name, type, unit, help and labels.

    `name` is the full Prometheus name (counters end in `_total`). `unit` is the
    OpenMetrics unit (the name must end with it). `group` is the MQTT payload key
    under which labelled readings of this metric are collected as a list of
    objects (e.g. "boards"); unlabelled readings go at the top level under the
    name without its domain prefix.
    """

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""
    group: str = ""

    @property
    def family(self) -> str:
        """The OpenMetrics family name (counters drop `_total`)."""
        if self.type == "counter" and self.name.endswith("_total"):
            return self.name[: -len("_total")]
        return self.name


def table(*rows: Metric) -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for row in rows:
        if row.name in out:
            raise ValueError(f"metric {row.name} defined twice")
        out[row.name] = row
    return out
