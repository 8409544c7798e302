"""`edge-agent once`: every enabled collector once, as JSON-ready dicts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from edge_agent.collectors.asic.discovery import scan
from edge_agent.collectors.host import HostCollector
from edge_agent.config import AsicConfig, Config
from edge_agent.model import Reading, Snapshot, Update
from edge_agent.runtime import open_gpu_or_config_error
from edge_agent.summary import site_summary, totals_of


def snapshot_dict(snap: Snapshot) -> dict[str, Any]:
    return {
        "source": snap.source,
        "device": snap.device,
        "ts": snap.ts,
        "up": snap.up,
        "attrs": dict(snap.attrs),
        "readings": [{"metric": r.key, "labels": dict(r.labels), "value": r.value} for r in snap.readings],
    }


async def collect_once(cfg: Config) -> list[dict[str, Any]]:
    updates: list[Update] = []
    if cfg.host.enabled:
        updates.append(await HostCollector(cfg.agent.name).collect())
    gpu = await open_gpu_or_config_error(cfg)
    if gpu is not None:
        try:
            async with asyncio.timeout(cfg.gpu.timeout):
                updates.append(await gpu.collect())
        finally:
            await gpu.aclose()
    if cfg.asic.enabled:
        updates.append(await _asic_once(cfg.asic))
    snapshots = [s for u in updates for s in u.snapshots]
    snapshots.append(site_summary([t for s in snapshots if (t := totals_of(s)) is not None], cfg.agent.site))
    return [snapshot_dict(s) for s in snapshots]


async def _asic_once(cfg: AsicConfig) -> Update:
    """Find, identify and poll every miner the targets name, once."""
    found = await scan(
        cfg.targets, request_timeout=cfg.timeout, concurrency=cfg.concurrency, max_bytes=cfg.max_response_bytes
    )
    snaps: dict[str, Snapshot] = {}
    now = time.time()
    for f in found:
        up = not f.error
        lab = (("miner", f.miner),)
        readings = (Reading("asic_up", 1.0 if up else 0.0, lab), *f.readings)
        attrs = {"address": f.host, "port": str(f.port), "make": f.make, "model": f.model, "firmware": f.firmware}
        if f.error:
            attrs["error"] = f.error
        snaps[f.miner] = Snapshot("asic", f.miner, now, up, readings, attrs)
    for t in cfg.targets:
        if not t.is_range:
            miner = f"{t.network.network_address}:{t.port}"
            if miner not in snaps:
                down = (Reading("asic_up", 0.0, (("miner", miner),)),)
                snaps[miner] = Snapshot("asic", miner, now, False, down, {"error": "no answer"})
    return Update(snapshots=tuple(snaps.values()))
