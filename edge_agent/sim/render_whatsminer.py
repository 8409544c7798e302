"""Simulated Whatsminer replies: btminer API v2 (cgminer-style) and API v3 (length-prefixed, port 4433)."""

from __future__ import annotations

from typing import Any

import orjson

from edge_agent.sim.render_common import Firmware, cg_pools, dumps, in_unit, reply, status_block
from edge_agent.sim.state import BASE_WHEN, GIGA, MEGA, TERA, V3_READ_COMMANDS, MinerState, Recorder

# --- Whatsminer btminer API v2 -----------------------------------------------------------------


def _wm_summary(state: MinerState, desc: str) -> str:
    row: dict[str, Any] = {
        "Elapsed": state.uptime,
        "MHS av": in_unit(state.hashrate_avg, MEGA),
        "MHS 5s": in_unit(state.hashrate, MEGA),
        "MHS 1m": in_unit(state.hashrate, MEGA),
        "MHS 5m": in_unit(state.hashrate_avg, MEGA),
        "MHS 15m": in_unit(state.hashrate_avg, MEGA),
        "HS RT": in_unit(state.hashrate, MEGA),
        "Accepted": state.accepted,
        "Rejected": state.rejected,
        "Stale": state.stale,
        "Hardware Errors": state.hw_errors,
        "Temperature": float(max((b.board_temp for b in state.boards), default=0)),
        "Fan Speed In": state.fans[0] if state.fans else 0,
        "Fan Speed Out": state.fans[1] if len(state.fans) > 1 else 0,
        "Power": state.power or 0,
        "Power_RT": state.power or 0,
        "Power Rate": round((state.power or 0) / (state.hashrate / TERA), 2) if state.hashrate else 0,
        "Uptime": state.uptime + 86400,
        "Env Temp": 24.0,
        "Power Mode": "Normal",
        "Firmware Version": f"'{state.version}'",
        "MAC": state.mac,
        "Factory GHS": round((state.nominal or 0) / GIGA),
        "Power Limit": 3600,
        "Chip Temp Min": float(min((b.chip_temp for b in state.boards), default=0)) - 10,
        "Chip Temp Max": float(max((b.chip_temp for b in state.boards), default=0)),
        "Chip Temp Avg": float(max((b.chip_temp for b in state.boards), default=0)) - 5,
        "Error Code Count": 0,
    }
    body = dumps(row)
    # btminer leaves a trailing comma after the last field.
    body = body[:-1] + ",}"
    status = dumps(status_block("S", 11, "Summary", desc, BASE_WHEN + state.uptime))
    return f'{{"STATUS":{status},"SUMMARY":[{body}],"id":1}}'


def _wm_edevs(state: MinerState, desc: str) -> str:
    rows = []
    for i, b in enumerate(state.boards):
        rows.append(
            {
                "ASC": i,
                "Slot": i,
                "Enabled": "Y",
                "Status": "Alive",
                "Temperature": float(b.board_temp),
                "Chip Frequency": 600,
                "MHS av": in_unit(b.hashrate, MEGA),
                "MHS 5s": in_unit(b.hashrate, MEGA),
                "MHS 1m": in_unit(b.hashrate, MEGA),
                "MHS 5m": in_unit(b.hashrate, MEGA),
                "MHS 15m": in_unit(b.hashrate, MEGA),
                "HS RT": in_unit(b.hashrate, MEGA),
                "Factory GHS": round((state.nominal or 0) / GIGA / max(1, len(state.boards))),
                "Upfreq Complete": 1,
                "Effective Chips": b.chips,
                "PCB SN": f"{state.serial}B{i}",
                "Chip Temp Min": float(b.chip_temp - 12),
                "Chip Temp Max": float(b.chip_temp),
                "Chip Temp Avg": float(b.chip_temp - 6),
            }
        )
    return reply(state, "DEVS", rows, 9, f"{len(rows)} ASC(s)", desc)


def _wm_devdetails(state: MinerState, desc: str) -> str:
    rows = [
        {"DEVDETAILS": i, "Name": "SM", "ID": i, "Driver": "bitmicro", "Kernel": "", "Model": state.model}
        for i in range(len(state.boards) or 1)
    ]
    return reply(state, "DEVDETAILS", rows, 69, "Device Details", desc)


def _wm_msg(code: int, msg: dict[str, Any], state: MinerState) -> str:
    # btminer's own commands: STATUS is a bare string and Msg an object.
    return dumps({"STATUS": "S", "When": BASE_WHEN + state.uptime, "Code": code, "Msg": msg, "Description": ""})


def _wm_get_version(state: MinerState, desc: str) -> str:
    return _wm_msg(131, {"api_ver": "2.0.3", "fw_ver": state.version, "platform": "H6OS", "chip": "K210"}, state)


def _wm_get_miner_info(state: MinerState, desc: str) -> str:
    msg = {
        "ip": "192.0.2.10",
        "proto": "dhcp",
        "netmask": "255.255.255.0",
        "gateway": "192.0.2.1",
        "dns": "192.0.2.1",
        "hostname": "WhatsMiner",
        "mac": state.mac,
        "ledstat": "auto",
        "minersn": state.serial,
    }
    return _wm_msg(131, msg, state)


def _wm_get_psu(state: MinerState, desc: str) -> str:
    msg = {"name": "P221B", "hw_version": "V01.00", "sw_version": "V01.00", "model": "P221B", "iin": "1200"}
    msg.update({"vin": "22500", "fan_speed": "6000", "vender": "1", "serial_no": f"PSU{state.serial}"})
    return _wm_msg(131, msg, state)


def _wm_status(state: MinerState, desc: str) -> str:
    msg = {"btmineroff": "true" if state.sleeping else "false", "Firmware Version": f"'{state.version}'"}
    return dumps({"STATUS": "S", "When": BASE_WHEN + state.uptime, "Code": 131, "Msg": msg, "Description": desc})


WHATSMINER = Firmware(
    lambda s: "btminer",
    {
        "summary": _wm_summary,
        "pools": cg_pools(1),
        "edevs": _wm_edevs,
        "devs": _wm_edevs,
        "devdetails": _wm_devdetails,
        "get_version": _wm_get_version,
        "get_miner_info": _wm_get_miner_info,
        "get_psu": _wm_get_psu,
        "status": _wm_status,
    },
    no_join=frozenset({"get_version", "get_miner_info", "get_psu", "status"}),
    invalid_msg="invalid cmd",
)


# --- Whatsminer API v3 (length-prefixed JSON on port 4433) --------------------------------------------


def _v3_frame(obj: dict[str, Any]) -> bytes:
    body = orjson.dumps(obj)
    return len(body).to_bytes(4, "little") + body


def _v3_reply(state: MinerState, desc: str, code: int, msg: Any) -> bytes:
    return _v3_frame({"code": code, "when": BASE_WHEN + state.uptime, "msg": msg, "desc": desc})


def _v3_summary(state: MinerState) -> dict[str, Any]:
    def th(value: float) -> float:
        return round(value / TERA, 3)

    boards = state.boards
    return {
        "elapsed": state.uptime,
        "bootup-time": state.uptime + 101,
        "freq-avg": 0 if state.sleeping else 788,
        "target-freq": 0,
        "factory-hash": th(state.nominal or 0.0),
        "hash-average": th(state.hashrate_avg),
        "hash-1min": th(state.hashrate),
        "hash-15min": th(state.hashrate_avg),
        "hash-realtime": th(state.hashrate),
        "power-rate": round((state.power or 0) / (state.hashrate / TERA), 3) if state.hashrate else 0,
        "power-5min": float(state.power or 0),
        "power-realtime": state.power or 0,
        "environment-temperature": 34.8,
        "board-temperature": [float(b.board_temp) for b in boards],
        "chip-temp-min": float(min((b.chip_temp for b in boards), default=0)) - 9,
        "chip-temp-avg": float(max((b.chip_temp for b in boards), default=0)) - 4,
        "chip-temp-max": float(max((b.chip_temp for b in boards), default=0)),
        "power-limit": 3500,
        "up-freq-finish": 0 if state.sleeping else 1,
        "fan-speed-in": state.fans[0] if state.fans else 0,
        "fan-speed-out": state.fans[1] if len(state.fans) > 1 else 0,
    }


def _v3_device_info(state: MinerState, sections: list[str]) -> dict[str, Any]:
    full: dict[str, Any] = {
        "network": {
            "ip": "192.0.2.60",
            "proto": "dhcp",
            "netmask": "255.255.255.0",
            "dns": "192.0.2.1",
            "mac": state.mac,
            "gateway": "192.0.2.1",
            "hostname": "WhatsMiner",
        },
        "miner": {
            "working": "false" if state.sleeping else "true",
            "type": state.model,
            "hash-board": "H70",
            "board-num": str(len(state.boards)),
            "miner-sn": state.serial,
            "power-limit-set": "3600",
            "web-pool": 1,
        },
        "system": {"api": "3.0.0", "platform": "H616", "fwversion": state.version, "ledstatus": "auto"},
        "power": {"type": "P221C", "iin": 14.8, "vin": 220.5, "pin": state.power or 0, "fanspeed": 6112},
        "salt": "px5hoXa9",
    }
    return {k: v for k, v in full.items() if k in sections} if sections else full


def respond_v3(state: MinerState, request: bytes, recorder: Recorder | None) -> bytes:
    if len(request) < 4:
        return b""
    length = int.from_bytes(request[:4], "little")
    try:
        obj = orjson.loads(request[4 : 4 + length])
    except orjson.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict) or not isinstance(obj.get("cmd"), str):
        if recorder is not None:
            recorder.record("<malformed>", privileged=False)
        return _v3_reply(state, "", -3, "invalid json item")
    cmd: str = obj["cmd"]
    param = obj.get("param")
    privileged = cmd not in V3_READ_COMMANDS or (cmd == "get.device.info" and param == "salt")
    if recorder is not None:
        recorder.record(cmd, privileged=privileged)
    if cmd.startswith("set."):
        return _v3_reply(state, cmd, -4, "no permission")
    if cmd == "get.miner.status":
        sections = param.split("+") if isinstance(param, str) else []
        msg: dict[str, Any] = {}
        if "summary" in sections:
            msg["summary"] = _v3_summary(state)
        return _v3_reply(state, cmd, 0, msg)
    if cmd == "get.device.info":
        return _v3_reply(state, cmd, 0, _v3_device_info(state, [param] if isinstance(param, str) else []))
    return _v3_reply(state, cmd, -2, "invalid command")
