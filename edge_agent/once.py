"""`edge-agent once`: every enabled collector once, as JSON-ready dicts."""

from __future__ import annotations

import asyncio
from typing import Any

from edge_agent.collectors.host import HostCollector
from edge_agent.config import Config
from edge_agent.model import Snapshot, Update
from edge_agent.runtime import open_gpu_or_config_error
from edge_agent.summary import site_summary


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
    snapshots = [s for u in updates for s in u.snapshots]
    snapshots.append(site_summary(snapshots, cfg.agent.site))
    return [snapshot_dict(s) for s in snapshots]
