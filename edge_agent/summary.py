"""Site totals: a pure function of the latest snapshots."""

from __future__ import annotations

import time
from collections.abc import Iterable

from edge_agent.model import Reading, Snapshot


def site_summary(snapshots: Iterable[Snapshot], site: str) -> Snapshot:
    miners = miners_up = reporting = 0
    hashrate = power = hashrate_with_power = 0.0
    gpus = gpus_up = 0
    gpu_power = 0.0
    for snap in snapshots:
        if snap.source == "asic":
            miners += 1
            if not snap.up:
                continue
            miners_up += 1
            h = p = None
            for r in snap.readings:
                if r.key == "asic_hashrate_hashes_per_second":
                    h = r.value
                elif r.key == "asic_power_watts":
                    p = r.value
            hashrate += h or 0.0
            if p is not None:
                reporting += 1
                power += p
                hashrate_with_power += h or 0.0
        elif snap.source == "gpu":
            gpus += 1
            if snap.up:
                gpus_up += 1
                gpu_power += sum(r.value for r in snap.readings if r.key == "gpu_power_watts")
    readings = [
        Reading("site_miners", float(miners)),
        Reading("site_miners_up", float(miners_up)),
        Reading("site_miners_down", float(miners - miners_up)),
        Reading("site_hashrate_hashes_per_second", hashrate),
        Reading("site_asic_power_watts", power),
        Reading("site_miners_reporting_power", float(reporting)),
        Reading("site_gpus", float(gpus)),
        Reading("site_gpus_up", float(gpus_up)),
        Reading("site_gpu_power_watts", gpu_power),
    ]
    if power > 0 and hashrate_with_power > 0:
        readings.append(Reading("site_efficiency_joules_per_terahash", power / (hashrate_with_power / 1e12)))
    return Snapshot("summary", site, time.time(), True, tuple(readings), {"site": site})
