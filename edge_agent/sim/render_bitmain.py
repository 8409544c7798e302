"""Simulated Bitmain Antminer stock firmware (S9 bmminer, S19 class), LuxOS and VNish replies."""

from __future__ import annotations

from typing import Any

from edge_agent.sim.render_common import Firmware, cg_pools, dumps, in_unit, reply, status_block
from edge_agent.sim.state import BASE_WHEN, GIGA, MEGA, MinerState

# --- Bitmain Antminer stock (bmminer) and firmware built on it -------------------------------------


def _ant_version(state: MinerState, desc: str) -> str:
    fw = state.firmware
    row: dict[str, Any]
    if fw == "luxos":
        row = {"API": "3.7", "CompileTime": "Tue Oct 10 2023", "LUXminer": state.version, "Miner": "1.0.0"}
        row["Type"] = state.model
    elif fw == "vnish":
        row = {"BMMiner": "1.0.0", "API": "3.1", "Miner": "1.0.0", "CompileTime": "Mon Jan 9 2023"}
        row["Type"] = f"{state.model} ({state.version})"
    else:
        row = {"BMMiner": "2.0.0", "API": "3.1", "Miner": "16.8.1.3", "CompileTime": state.version}
        row["Type"] = state.model
    return reply(state, "VERSION", [row], 22, "BMMiner versions", desc)


def _ant_header(state: MinerState) -> dict[str, Any]:
    row: dict[str, Any] = {"BMMiner": "2.0.0", "Miner": "16.8.1.3", "CompileTime": state.version}
    if state.firmware == "vnish":
        row["Type"] = f"{state.model} ({state.version})"
    else:
        row["Type"] = state.model
    return row


def _ant_summary(state: MinerState, desc: str) -> str:
    s9 = state.firmware == "antminer-s9"
    rate = in_unit(state.hashrate, GIGA)
    row: dict[str, Any] = {
        "Elapsed": state.uptime,
        # bmminer on S9 sends the 5 s rate as a string.
        "GHS 5s": f"{rate:.2f}" if s9 else rate,
        "GHS av": in_unit(state.hashrate_avg, GIGA),
        "Found Blocks": 0,
        "Getworks": state.uptime // 30,
        "Accepted": state.accepted,
        "Rejected": state.rejected,
        "Hardware Errors": state.hw_errors,
        "Utility": 1.23,
        "Discarded": 100,
        "Stale": state.stale,
        "Get Failures": 0,
        "Local Work": 1000,
        "Remote Failures": 0,
        "Network Blocks": 10,
        "Total MH": 1.0e10,
        "Work Utility": 1.0e5,
        "Difficulty Accepted": 1.0e9,
        "Difficulty Rejected": 1.0e6,
        "Difficulty Stale": 0.0,
        "Best Share": 12345678,
        "Device Hardware%": 0.0001,
        "Device Rejected%": 0.1,
        "Pool Rejected%": 0.1,
        # Bitmain firmware prints a literal %% into this key.
        "Pool Stale%%": 0.0,
        "Last getwork": BASE_WHEN + state.uptime,
    }
    return reply(state, "SUMMARY", [row], 11, "Summary", desc)


def _ant_stats(state: MinerState, desc: str) -> str:
    fw = state.firmware
    head = dumps({"STATUS": status_block("S", 70, "CGMiner stats", desc, BASE_WHEN + state.uptime)})[:-1]
    if state.sleeping:
        # Sleep mode (bitmain-work-mode 1): stats answers with no rows.
        return head + ',"STATS":[],"id":1}'
    header = dumps(_ant_header(state))
    if fw == "antminer-s9":
        data = dumps(_s9_data(state))
        # bmminer on S9-era Antminers puts no comma between the STATS objects.
        return f'{head},"STATS":[{header}{data}],"id":1}}'
    return f'{head},"STATS":[{header},{dumps(_s19_data(state))}],"id":1}}'


def _s9_data(state: MinerState) -> dict[str, Any]:
    row: dict[str, Any] = {
        "STATS": 0,
        "ID": "BC50",
        "Elapsed": state.uptime,
        "Calls": 0,
        "Wait": 0.0,
        "Max": 0.0,
        "Min": 99999999.0,
        "GHS 5s": f"{in_unit(state.hashrate, GIGA):.2f}",
        "GHS av": in_unit(state.hashrate_avg, GIGA),
        "miner_count": len(state.boards),
        "frequency": "650",
        "fan_num": len(state.fans),
    }
    # Eight fan slots, the fans in slots 3 and 6, zeros elsewhere.
    slots = [3, 6, 1, 2, 4, 5, 7, 8]
    fan_at = {slots[i]: rpm for i, rpm in enumerate(state.fans[:8])}
    for slot in range(1, 9):
        row[f"fan{slot}"] = fan_at.get(slot, 0)
    row["temp_num"] = len(state.boards)
    chains = {6 + i: b for i, b in enumerate(state.boards)}
    for i in range(1, 17):
        row[f"temp{i}"] = chains[i].board_temp if i in chains else 0
    for i in range(1, 17):
        row[f"temp2_{i}"] = chains[i].chip_temp if i in chains else 0
    row["temp_max"] = max((b.board_temp for b in state.boards), default=0)
    row["Device Hardware%"] = 0.0
    row["no_matching_work"] = state.hw_errors
    for i in range(1, 17):
        row[f"chain_acn{i}"] = chains[i].chips if i in chains else 0
    for i in range(1, 17):
        row[f"chain_acs{i}"] = " oooooooo oooooooo oooooooo" if i in chains else ""
    for i in range(1, 17):
        row[f"chain_hw{i}"] = state.hw_errors // max(1, len(chains)) if i in chains else 0
    for i in range(1, 17):
        # Chain rates are strings; an empty chain is "".
        row[f"chain_rate{i}"] = f"{in_unit(chains[i].hashrate, GIGA):.2f}" if i in chains else ""
    row["total_rateideal"] = in_unit(state.nominal or 0.0, GIGA)
    row["total_freqavg"] = 650.0
    row["total_acn"] = sum(b.chips for b in state.boards)
    row["total_rate"] = in_unit(state.hashrate, GIGA)
    return row


def _dash(values: list[int]) -> str:
    # Bitmain joins sensor values with "-"; a negative value therefore makes "--".
    return "-".join(str(v) for v in values)


def _s19_data(state: MinerState) -> dict[str, Any]:
    row: dict[str, Any] = {
        "STATS": 0,
        "ID": "BTM_SOC0",
        "Elapsed": state.uptime,
        "Calls": 0,
        "Wait": 0.0,
        "Max": 0.0,
        "Min": 99999999.0,
        "GHS 5s": in_unit(state.hashrate, GIGA),
        "GHS av": in_unit(state.hashrate_avg, GIGA),
        "rate_30m": in_unit(state.hashrate_avg, GIGA),
        "Mode": 2,
        "miner_count": len(state.boards),
        "frequency": 525,
        "fan_num": len(state.fans),
    }
    for i, rpm in enumerate(state.fans, 1):
        row[f"fan{i}"] = rpm
    row["temp_num"] = len(state.boards)
    chains = dict(enumerate(state.boards, 1))
    for i in range(1, 5):
        b = chains.get(i)
        row[f"temp{i}"] = b.board_temp if b else 0
        row[f"temp2_{i}"] = b.chip_temp if b else 0
        row[f"temp3_{i}"] = b.chip_temp - 3 if b else 0
        # Inlet sensors read low, sometimes below zero in winter: "2--1-20-22".
        row[f"temp_pcb{i}"] = _dash([2, -1, b.board_temp - 3, b.board_temp]) if b else "0-0-0-0"
        row[f"temp_chip{i}"] = _dash([7, 4, b.chip_temp - 2, b.chip_temp]) if b else "0-0-0-0"
        row[f"temp_pic{i}"] = _dash([-8, -11, 10, 12]) if b else "0-0-0-0"
    row["total_rateideal"] = in_unit(state.nominal or 0.0, GIGA)
    row["rate_unit"] = "GH"
    row["total_freqavg"] = 525
    row["total_acn"] = sum(b.chips for b in state.boards)
    row["total rate"] = in_unit(state.hashrate, GIGA)
    for i in range(1, 5):
        b = chains.get(i)
        row[f"chain_acn{i}"] = b.chips if b else 0
        row[f"chain_acs{i}"] = " oooo oooo" if b else ""
        row[f"chain_hw{i}"] = state.hw_errors // max(1, len(chains)) if b else 0
        # The empty 4th slot: chain_rate4 is "".
        row[f"chain_rate{i}"] = f"{in_unit(b.hashrate, GIGA):.2f}" if b else ""
        row[f"freq{i}"] = 525 if b else 0
    row["miner_version"] = "49.0.1.3"
    row["miner_id"] = state.serial.lower()
    return row


def _lux_power(state: MinerState, desc: str) -> str:
    row = {"PSU": True, "Watts": state.power or 0}
    return reply(state, "POWER", [row], 300, "Power", desc)


def _lux_config(state: MinerState, desc: str) -> str:
    row = {"ASC Count": len(state.boards), "PGA Count": 0, "Pool Count": len(state.pools), "MACAddr": state.mac}
    return reply(state, "CONFIG", [row], 33, "CGMiner config", desc)


def _ant_devs(state: MinerState, desc: str) -> str:
    rows = [
        {"ASC": i, "Name": "BTM_SOC", "ID": i, "Enabled": "Y", "Status": "Alive", "MHS 5s": in_unit(b.hashrate, MEGA)}
        for i, b in enumerate(state.boards)
    ]
    return reply(state, "DEVS", rows, 9, f"{len(rows)} ASC(s)", desc)


_ANTMINER_COMMANDS = {
    "version": _ant_version,
    "summary": _ant_summary,
    "stats": _ant_stats,
    "pools": cg_pools(0),
    "devs": _ant_devs,
}
# Stock Antminers answer only stats, pools, devs, summary and version remotely.
ANTMINER_S9 = Firmware(lambda s: "bmminer 1.0.0", dict(_ANTMINER_COMMANDS))
ANTMINER_S19 = Firmware(lambda s: "cgminer 1.0.0", dict(_ANTMINER_COMMANDS))
VNISH = Firmware(lambda s: "cgminer 4.11.1", dict(_ANTMINER_COMMANDS))
LUXOS = Firmware(lambda s: f"LUXminer {s.version}", {**_ANTMINER_COMMANDS, "power": _lux_power, "config": _lux_config})
