"""`edge-agent run` with no config: the agent against a simulated site, so a newcomer sees it work."""

from __future__ import annotations

import logging

from edge_agent import config as config_mod
from edge_agent.runtime import Agent
from edge_agent.sim.server import SimFleet

log = logging.getLogger(__name__)

DEMO_MINERS = 200
DEMO_BASE = "127.77.0.0"
DEMO_LISTEN = "127.0.0.1:9105"


async def run_demo() -> int:
    # One miner in ten misbehaves (refuses, hangs, sends garbage, streams forever, answers
    # slowly, sleeps) so the demo shows what a real site looks like.
    fleet = SimFleet(DEMO_MINERS, base=DEMO_BASE, faults=0.1, seed=1, slow_delay=8.0)
    await fleet.start()
    try:
        cfg = config_mod.parse(
            {
                "agent": {"site": "demo", "name": "demo-host"},
                "prometheus": {"listen": DEMO_LISTEN},
                "host": {"interval": 15},
                "asic": {"targets": [str(fleet.network)], "interval": 15, "timeout": 3, "scan_interval": 120},
            }
        )
        log.info(
            "demo: %d simulated miners on %s (10%% faulty); metrics on http://%s/metrics; Ctrl-C stops",
            DEMO_MINERS,
            fleet.network,
            DEMO_LISTEN,
        )
        return await Agent(cfg).run()
    finally:
        await fleet.stop()
