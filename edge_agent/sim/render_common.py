"""Shared pieces of the simulated cgminer-family replies and request parsing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from edge_agent.sim.state import BASE_WHEN, READ_COMMANDS, MinerState

# --- rendering helpers -------------------------------------------------------------------------


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def in_unit(value: float, unit: float) -> float:
    """A hashrate in the firmware's unit, rounded as the firmware prints it."""
    return round(value / unit, 2)


def status_block(letter: str, code: int, msg: str, description: str, when: int) -> list[dict[str, Any]]:
    return [{"STATUS": letter, "When": when, "Code": code, "Msg": msg, "Description": description}]


@dataclass(frozen=True, slots=True)
class Firmware:
    description: Callable[[MinerState], str]
    commands: dict[str, Callable[[MinerState, str], str]]  # command -> body text (the object, no NUL)
    no_join: frozenset[str] = frozenset()  # commands that cannot be part of a multi-command
    invalid_code: int = 14
    invalid_msg: str = "Invalid command"
    denied_msg: str = "Access denied to '{}' command"


def reply(state: MinerState, section: str, rows: list[dict[str, Any]], code: int, msg: str, desc: str) -> str:  # noqa: PLR0917
    return dumps({"STATUS": status_block("S", code, msg, desc, BASE_WHEN + state.uptime), section: rows, "id": 1})


def pools_rows(state: MinerState, first: int) -> list[dict[str, Any]]:
    rows = []
    for i, pool in enumerate(state.pools):
        rows.append(
            {
                "POOL": i + first,
                "URL": pool.url,
                "Status": "Alive" if pool.alive else "Dead",
                "Priority": i,
                "Quota": 1,
                "Long Poll": "N",
                "Getworks": 100 + i,
                "Accepted": state.accepted if i == 0 else 0,
                "Rejected": state.rejected if i == 0 else 0,
                "Stale": state.stale if i == 0 else 0,
                "User": pool.user,
                "Stratum Active": i == 0 and pool.alive,
                "Stratum URL": pool.url.split("//")[-1].split(":")[0],
            }
        )
    return rows


def cg_pools(first: int) -> Callable[[MinerState, str], str]:
    def render(state: MinerState, desc: str) -> str:
        return reply(state, "POOLS", pools_rows(state, first), 7, f"{len(state.pools)} Pool(s)", desc)

    return render


def parse_request(request: bytes) -> tuple[str, bool]:
    """(command, ok) from a cgminer request in JSON (`command` or btminer's `cmd`) or text form."""
    text = request.decode("utf-8", errors="replace").strip().rstrip("\x00").strip()
    if text.startswith("{"):
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            return "", False
        if not isinstance(obj, dict):
            return "", False
        command = obj.get("command", obj.get("cmd"))
        return (command, True) if isinstance(command, str) else ("", False)
    # Text form: command|parameter
    return text.split("|", 1)[0], bool(text)


def is_privileged(command: str) -> bool:
    return command not in READ_COMMANDS


NUL = b"\x00"
