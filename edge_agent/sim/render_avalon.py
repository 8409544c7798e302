"""Simulated Canaan Avalon replies (`MM ID0` key[value] strings)."""

from __future__ import annotations

from edge_agent.sim.render_common import Firmware, cg_pools, dumps, in_unit, reply, status_block
from edge_agent.sim.state import BASE_WHEN, GIGA, MEGA, MinerState

# --- Canaan Avalon -----------------------------------------------------------------------------


def _av_version(state: MinerState, desc: str) -> str:
    row = {
        "CGMiner": "4.11.1",
        "API": "3.7",
        "PROD": state.model,
        "MODEL": state.model.rsplit(" ", 1)[-1] + "-83",
        "HWTYPE": "MM4v2_X3",
        "SWTYPE": "MM314",
        "VERSION": state.version,
        "LOADER": "d0d779de.00",
        "DNA": "020100008c699117",
        "MAC": state.mac.replace(":", "").lower(),  # Avalon: 12 bare hex digits
        "UPAPI": "2",
    }
    return reply(state, "VERSION", [row], 22, "CGMiner versions", desc)


def _av_mm(state: MinerState) -> str:
    boards = state.boards
    fans = " ".join(f"Fan{i}[{rpm}]" for i, rpm in enumerate(state.fans, 1))
    # -273 is Avalon's "no sensor" value.
    mtmax = " ".join(str(b.chip_temp) for b in boards)
    watts = state.power or 0
    return (
        f"Ver[{state.version}] DNA[020100008c699117] Elapsed[{state.uptime}] MW[0 0 0] LW[1234] MH[0 0 0] "
        f"HW[{state.hw_errors}] DH[1.299%] Temp[31] TMax[{max((b.chip_temp for b in boards), default=-273)}] "
        f"TAvg[70] {fans} FanR[49%] Vo[296] PS[0 1209 1187 297 {max(0, watts - 200)} 1188 {watts}] "
        f"WALLPOWER[{watts}] GHSspd[{in_unit(state.hashrate, GIGA):.2f}] DHspd[1.299%] "
        f"GHSmm[{in_unit(state.nominal or 0, GIGA):.2f}] GHSavg[{in_unit(state.hashrate_avg, GIGA):.2f}] "
        f"MGHS[{' '.join(f'{in_unit(b.hashrate, GIGA):.2f}' for b in boards)}] "
        f"MTmax[{mtmax}] MTavg[{' '.join(str(b.chip_temp - 8) for b in boards)}] "
        f"TA[{len(boards) * 114}] ECHU[0 0 0] ECMM[0] SYSTEMSTATU[Work: In Work, Hash Board: {len(boards)} ] "
        f"MPO[3515] WORKMODE[1]"
    )


def _av_estats(state: MinerState, desc: str) -> str:
    row = {"STATS": 0, "ID": "AVALON0", "Elapsed": state.uptime, "Calls": 0, "Wait": 0.0, "Max": 0.0}
    row["MM ID0"] = _av_mm(state)
    row["MM Count"] = 1
    row["Nonce Mask"] = 25
    return reply(state, "STATS", [row], 70, "CGMiner stats", desc)


def _av_summary(state: MinerState, desc: str) -> str:
    mh = in_unit(state.hashrate, MEGA)
    row = {
        "Elapsed": state.uptime,
        "MHS av": round(state.hashrate_avg / MEGA, 2),
        "MHS 30s": mh,
        "MHS 1m": mh,
        "MHS 5m": mh,
        "MHS 15m": mh,
        "Found Blocks": 0,
        "Accepted": state.accepted,
        "Rejected": state.rejected,
        "Hardware Errors": state.hw_errors,
        "Utility": 1.1,
        "Stale": state.stale,
        "Device Hardware%": "nan",
        "Work Utility": 0.0,
    }
    body = dumps(row)
    # Avalon (cgminer 4.11) prints an unguarded %f: Work Utility goes out as a bare inf.
    body = body.replace('"Work Utility":0.0', '"Work Utility":inf')
    status = dumps(status_block("S", 11, "Summary", desc, BASE_WHEN + state.uptime))
    return f'{{"STATUS":{status},"SUMMARY":[{body}],"id":1}}'


def _av_devs(state: MinerState, desc: str) -> str:
    rows = [
        {"ASC": 0, "Name": "AVA10", "ID": 0, "Enabled": "Y", "Status": "Alive", "Temperature": -273.0}
        | {"MHS av": round(state.hashrate_avg / MEGA, 2), "MHS 30s": in_unit(state.hashrate, MEGA)}
    ]
    return reply(state, "DEVS", rows, 9, "1 ASC(s)", desc)


AVALON = Firmware(
    lambda s: "cgminer 4.11.1",
    {
        "version": _av_version,
        "summary": _av_summary,
        "pools": cg_pools(0),
        "estats": _av_estats,
        "stats": _av_estats,
        "devs": _av_devs,
    },
)
