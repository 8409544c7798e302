"""Metric rows for site totals, computed from the latest snapshots of every device."""

from __future__ import annotations

from edge_agent.metrics.spec import Metric, table

METRICS: dict[str, Metric] = table(
    Metric("site_miners", "gauge", "Miners known to this agent (up or down)."),
    Metric("site_miners_up", "gauge", "Miners that answered their API in their last poll."),
    Metric("site_miners_down", "gauge", "Known miners that did not answer their last poll."),
    Metric(
        "site_hashrate_hashes_per_second",
        "gauge",
        "Sum of the short-window hashrate of the miners that are up.",
        unit="hashes_per_second",
    ),
    Metric(
        "site_asic_power_watts",
        "gauge",
        "Sum of the power of the miners that are up and report power.",
        unit="watts",
    ),
    Metric("site_miners_reporting_power", "gauge", "Miners that are up and report their power."),
    Metric(
        "site_efficiency_joules_per_terahash",
        "gauge",
        "Fleet efficiency over the miners that report both power and hashrate.",
    ),
    Metric("site_gpus", "gauge", "NVIDIA GPUs on this host."),
    Metric("site_gpus_up", "gauge", "NVIDIA GPUs that answered NVML in their last collection."),
    Metric("site_gpu_power_watts", "gauge", "Sum of the power draw of this host's GPUs.", unit="watts"),
)
