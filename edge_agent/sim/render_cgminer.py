"""Simulated generic cgminer replies (an old fork with padded numeric strings)."""

from __future__ import annotations

from edge_agent.sim.render_common import Firmware, cg_pools, reply
from edge_agent.sim.state import MEGA, MinerState

# --- generic cgminer ---------------------------------------------------------------------------


def _cg_version(state: MinerState, desc: str) -> str:
    return reply(state, "VERSION", [{"CGMiner": state.version.split(" ")[-1], "API": "3.7"}], 22, "", desc)


def _cg_summary(state: MinerState, desc: str) -> str:
    row = {
        "Elapsed": state.uptime,
        # Old cgminer forks (Antminer D3 and others) send padded numeric strings.
        "MHS av": f"{state.hashrate_avg / MEGA:>14.4f}",
        "MHS 5s": f"{state.hashrate / MEGA:>14.4f}",
        "Accepted": state.accepted,
        "Rejected": state.rejected,
        "Hardware Errors": state.hw_errors,
        "Stale": state.stale,
        "Utility": 1.0,
    }
    return reply(state, "SUMMARY", [row], 11, "Summary", desc)


def _cg_devs(state: MinerState, desc: str) -> str:
    return reply(state, "DEVS", [], 9, "No ASCs", desc)


CGMINER = Firmware(
    lambda s: s.version,
    {"version": _cg_version, "summary": _cg_summary, "pools": cg_pools(0), "devs": _cg_devs},
)
