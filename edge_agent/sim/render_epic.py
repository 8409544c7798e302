"""Simulated ePIC replies: HTTP JSON on the miner port."""

from __future__ import annotations

import re
from typing import Any

import orjson

from edge_agent.sim.render_common import in_unit, is_privileged, parse_request
from edge_agent.sim.state import BASE_WHEN, HTTP_READ_PATHS, MEGA, MinerState, PoolState, Recorder

# --- ePIC (HTTP) -------------------------------------------------------------------------------

_HTTP_LINE = re.compile(r"^([A-Z]+) (\S+) HTTP/1\.[01]$")


def _http(status: str, body: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "Connection: close\r\n\r\n").encode() + body


def _epic_summary(state: MinerState) -> dict[str, Any]:
    pool = state.pools[0] if state.pools else PoolState("", "", False)
    return {
        "Status": {"Operating State": "Idling" if state.sleeping else "Mining", "Last Command": ""},
        "Software": state.version,
        "Hostname": f"epic-{state.serial.lower()}",
        "Mining": {"Coin": "Bitcoin", "Algorithm": "SHA256"},
        "Stratum": {
            "Current Pool": pool.url,
            "Current User": pool.user,
            "IsPoolConnected": pool.alive,
            "Average Latency": 31.5,
        },
        "Session": {
            "Startup Timestamp": BASE_WHEN,
            "Uptime": state.uptime,
            "Last Work Timestamp": BASE_WHEN + state.uptime,
            "WorkReceived": state.uptime * 3,
            "Active HBs": len(state.boards),
            "Average MHs": in_unit(state.hashrate_avg, MEGA),
            "Accepted": state.accepted,
            "Rejected": state.rejected,
            "Submitted": state.accepted + state.rejected,
            "Difficulty": 65536.0,
        },
        "HBs": [
            {
                "Index": i,
                "Input Voltage": 13.8,
                "Output Voltage": 13.6,
                "Input Power": 1100.0,
                "Output Power": 1050.0,
                "Temperature": b.board_temp,
                "Core Clock Avg": 500.0,
                # ePIC: [MH/s, percent of ideal]
                "Hashrate": [in_unit(b.hashrate, MEGA), 98.5],
            }
            for i, b in enumerate(state.boards)
        ],
        "Fans Rpm": {f"Fans Speed {i}": rpm for i, rpm in enumerate(state.fans)},
        "Power Supply Stats": {
            "Input Voltage": 230.0,
            "Input Current": round((state.power or 0) / 230.0, 2),
            "Input Power": float(state.power or 0),
            "Output Power": float(state.power or 0) * 0.95,
        },
        "Network": {"eth0": {"mac_address": state.mac, "address": "192.0.2.20"}},
    }


def respond_epic(state: MinerState, request: bytes, recorder: Recorder | None) -> bytes:
    line = request.split(b"\r\n", 1)[0].decode("latin-1")
    match = _HTTP_LINE.match(line)
    if match is None:
        # A cgminer JSON request to ePIC's HTTP server (stand-in reply: 400).
        if recorder is not None:
            command, ok = parse_request(request)
            recorder.record(command or "<malformed>", privileged=ok and is_privileged(command))
        return _http("400 Bad Request")
    method, path = match.group(1), match.group(2)
    allowed = method == "GET" and path in HTTP_READ_PATHS
    if recorder is not None:
        recorder.record(f"{method} {path}", privileged=not allowed)
    if method != "GET":
        return _http("401 Unauthorized", b'{"error":"password required"}')
    if path == "/summary":
        return _http("200 OK", orjson.dumps(_epic_summary(state)))
    if path == "/capabilities":
        caps = {"Model": state.model, "Max HBs": 3, "Default Hashrate": in_unit(state.nominal or 0, MEGA)}
        return _http("200 OK", orjson.dumps(caps))
    return _http("404 Not Found")
