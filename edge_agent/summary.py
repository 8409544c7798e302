"""Site totals: a pure function of a few numbers kept per device.

The runtime keeps one small `DeviceTotals` per miner and GPU rather than whole
snapshots: at 10,000 miners the snapshots' readings would be ~300,000 objects
held for nothing but a handful of sums.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import NamedTuple

from edge_agent.model import Reading, Snapshot

_HASHRATE = {"asic": "asic_hashrate_hashes_per_second"}
_POWER = {"asic": "asic_power_watts", "gpu": "gpu_power_watts"}


class DeviceTotals(NamedTuple):
    source: str
    up: bool
    hashrate: float | None
    power: float | None


def totals_of(snap: Snapshot) -> DeviceTotals | None:
    """What the site totals need from one snapshot; None for sources they do not count."""
    power_key = _POWER.get(snap.source)
    if power_key is None:
        return None
    hashrate_key = _HASHRATE.get(snap.source)
    hashrate = power = None
    if snap.up:
        for r in snap.readings:
            if r.key == hashrate_key:
                hashrate = r.value
            elif r.key == power_key:
                power = r.value
    return DeviceTotals(snap.source, snap.up, hashrate, power)


def site_summary(devices: Iterable[DeviceTotals], site: str) -> Snapshot:
    miners = miners_up = reporting = 0
    hashrate = power = hashrate_with_power = 0.0
    gpus = gpus_up = 0
    gpu_power = 0.0
    for d in devices:
        if d.source == "asic":
            miners += 1
            if not d.up:
                continue
            miners_up += 1
            hashrate += d.hashrate or 0.0
            if d.power is not None:
                reporting += 1
                power += d.power
                hashrate_with_power += d.hashrate or 0.0
        elif d.source == "gpu":
            gpus += 1
            if d.up:
                gpus_up += 1
                gpu_power += d.power or 0.0
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
