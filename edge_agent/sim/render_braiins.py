"""Simulated Braiins OS+ (bosminer) replies."""

from __future__ import annotations

from edge_agent.sim.render_common import Firmware, cg_pools, in_unit, reply
from edge_agent.sim.state import MEGA, MinerState

# --- Braiins OS ----------------------------------------------------------------------------------


def _bos_version(state: MinerState, desc: str) -> str:
    return reply(state, "VERSION", [{"API": "3.7", "BOSminer": state.version.split(" ", 1)[-1]}], 22, "", desc)


def _bos_summary(state: MinerState, desc: str) -> str:
    mh = in_unit(state.hashrate, MEGA)
    row = {
        "Elapsed": state.uptime,
        "MHS av": in_unit(state.hashrate_avg, MEGA),
        "MHS 5s": mh,
        "MHS 1m": mh,
        "MHS 5m": mh,
        "MHS 15m": mh,
        "MHS 24h": in_unit(state.hashrate_avg, MEGA),
        "Found Blocks": 0,
        "Getworks": state.uptime // 30,
        "Accepted": state.accepted,
        "Rejected": state.rejected,
        "Hardware Errors": state.hw_errors,
        "Utility": 1.5,
        "Discarded": 0,
        "Stale": state.stale,
        "Get Failures": 0,
        "Remote Failures": 0,
        "Network Blocks": 12,
        "Total MH": 1.0e10,
        "Work Utility": 1.0e5,
        "Best Share": 1234567,
    }
    return reply(state, "SUMMARY", [row], 11, "Summary", desc)


def _bos_id(state: MinerState, i: int) -> int:
    # bosminer keeps the hardware chain IDs: 6..8 on S9, 1..3 on S19.
    return (6 if "S9" in state.model else 1) + i


def _bos_devs(state: MinerState, desc: str) -> str:
    per_board_nominal = (state.nominal or 0) / max(1, len(state.boards))
    rows = []
    for i, b in enumerate(state.boards):
        rows.append(
            {
                "ASC": i,
                "Name": "BC5",
                "ID": _bos_id(state, i),
                "Enabled": "Y",
                "Status": "Alive",
                "Temperature": float(b.board_temp),
                "MHS av": in_unit(b.hashrate, MEGA),
                "MHS 5s": in_unit(b.hashrate, MEGA),
                "MHS 1m": in_unit(b.hashrate, MEGA),
                "MHS 5m": in_unit(b.hashrate, MEGA),
                "MHS 15m": in_unit(b.hashrate, MEGA),
                "Nominal MHS": in_unit(per_board_nominal, MEGA),
                "Hardware Errors": 0,
            }
        )
    return reply(state, "DEVS", rows, 9, f"{len(rows)} ASC(s)", desc)


def _bos_devdetails(state: MinerState, desc: str) -> str:
    rows = [
        {
            "DEVDETAILS": i,
            "Name": "BC5",
            "ID": _bos_id(state, i),
            "Driver": "bitmain",
            "Kernel": "",
            "Model": state.model,
            "Chips": b.chips,
            "Frequency": 650.0,
            "Voltage": 8.8,
        }
        for i, b in enumerate(state.boards)
    ]
    if not rows:
        rows = [{"DEVDETAILS": 0, "Name": "BC5", "ID": _bos_id(state, 0), "Model": state.model, "Chips": 0}]
    return reply(state, "DEVDETAILS", rows, 69, "Device Details", desc)


def _bos_temps(state: MinerState, desc: str) -> str:
    rows = [
        {"TEMP": i, "ID": _bos_id(state, i), "Board": float(b.board_temp), "Chip": float(b.chip_temp)}
        for i, b in enumerate(state.boards)
    ]
    return reply(state, "TEMPS", rows, 201, f"{len(rows)} Temp(s)", desc)


def _bos_fans(state: MinerState, desc: str) -> str:
    rows = [{"FAN": i, "ID": i, "RPM": rpm, "Speed": 70} for i, rpm in enumerate(state.fans)]
    return reply(state, "FANS", rows, 202, f"{len(rows)} Fan(s)", desc)


def _bos_tuner(state: MinerState, desc: str) -> str:
    watts = state.power or 0
    row = {
        "PowerLimit": 1500,
        "ApproximateMinerPowerConsumption": watts,
        "ApproximateChainPowerConsumption": max(0, watts - 60),
        "DynamicPowerScaling": "Disabled",
        "TunerChainStatus": [
            {"HashchainIndex": _bos_id(state, i), "Status": "Stable", "ApproximatePowerConsumptionWatt": 400}
            for i in range(len(state.boards))
        ],
    }
    return reply(state, "TUNERSTATUS", [row], 203, "Tuner Status", desc)


BRAIINS = Firmware(
    lambda s: s.version,
    {
        "version": _bos_version,
        "summary": _bos_summary,
        "pools": cg_pools(0),
        "devs": _bos_devs,
        "devdetails": _bos_devdetails,
        "temps": _bos_temps,
        "fans": _bos_fans,
        "tunerstatus": _bos_tuner,
    },
)
