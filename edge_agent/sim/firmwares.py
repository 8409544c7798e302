"""What each simulated firmware sends, quirks included, rendered from a `MinerState`.

`respond(state, request, recorder)` returns the exact bytes a miner running that
firmware would send for a request: the NUL terminator, bmminer's `}{` between
STATS objects, btminer's trailing commas, string and padded-string numbers,
multi-command support or refusal. Any command that is not a read command is
answered with the firmware's error reply and recorded as privileged on the
`Recorder`, so tests can assert that none ever arrived. The sim keeps its own
list of read commands on purpose (not the client's allowlist): a mistake in the
client's list shows up here.

Reply formats follow the public captures summarised in
shared/reference/asic-apis.md. Where a detail is not documented (the exact
error a stopped btminer or an ePIC sends for a non-HTTP request) the reply is a
plausible stand-in and says so.

Layout: `state` (MinerState, Recorder, random_state/asleep/evolve), `expected`
(what an agent should read back), one `render_<family>` module per firmware
family; this module dispatches a request to the right renderer and re-exports
the public API.

Values are quantised when a state is made (hashrates to 0.01 in the firmware's
unit, temperatures and fans to integers, power to whole watts), so
`expected_readings(state, miner)` gives exactly the normalised values an agent
should read back (compare floats with a relative tolerance of 1e-9).
"""

from __future__ import annotations

from edge_agent.sim.expected import expected_info, expected_readings
from edge_agent.sim.render_avalon import AVALON
from edge_agent.sim.render_bitmain import ANTMINER_S9, ANTMINER_S19, LUXOS, VNISH
from edge_agent.sim.render_braiins import BRAIINS
from edge_agent.sim.render_cgminer import CGMINER
from edge_agent.sim.render_common import NUL, Firmware, dumps, is_privileged, parse_request, status_block
from edge_agent.sim.render_epic import respond_epic
from edge_agent.sim.render_whatsminer import WHATSMINER, respond_v3
from edge_agent.sim.state import (
    BASE_WHEN,
    FIRMWARES,
    HTTP_READ_PATHS,
    READ_COMMANDS,
    V3_FIRMWARES,
    V3_READ_COMMANDS,
    BoardState,
    MinerState,
    PoolState,
    Recorder,
    asleep,
    evolve,
    random_state,
)

__all__ = [
    "FIRMWARES",
    "HTTP_READ_PATHS",
    "READ_COMMANDS",
    "V3_FIRMWARES",
    "V3_READ_COMMANDS",
    "BoardState",
    "MinerState",
    "PoolState",
    "Recorder",
    "asleep",
    "evolve",
    "expected_info",
    "expected_readings",
    "random_state",
    "respond",
]

_FIRMWARE: dict[str, Firmware] = {
    "antminer-s9": ANTMINER_S9,
    "antminer-s19": ANTMINER_S19,
    "vnish": VNISH,
    "luxos": LUXOS,
    "whatsminer": WHATSMINER,
    "braiins": BRAIINS,
    "avalon": AVALON,
    "cgminer": CGMINER,
}


# --- the request side --------------------------------------------------------------------------


def _error_reply(state: MinerState, fw: Firmware, code: int, msg: str) -> str:
    when = BASE_WHEN + state.uptime
    if state.firmware == "whatsminer":
        return dumps({"STATUS": "E", "When": when, "Code": code, "Msg": msg, "Description": "whatsminer v1.1"})
    return dumps({"STATUS": status_block("E", code, msg, fw.description(state), when), "id": 1})


def _single(state: MinerState, fw: Firmware, command: str) -> str:
    if is_privileged(command):
        # cgminer: "Access denied to '<cmd>' command" (45); btminer: needs a token (stand-in reply).
        if state.firmware == "whatsminer":
            return _error_reply(state, fw, 45, "Permission denied")
        return _error_reply(state, fw, 45, fw.denied_msg.format(command))
    if state.firmware == "whatsminer" and state.sleeping and command != "status":
        # Stopped btminer answers only `status` (stand-in error for the rest).
        return _error_reply(state, fw, 14, fw.invalid_msg)
    render = fw.commands.get(command)
    if render is None:
        return _error_reply(state, fw, fw.invalid_code, fw.invalid_msg)
    return render(state, fw.description(state))


def respond(state: MinerState, request: bytes, recorder: Recorder | None = None) -> bytes:
    """The bytes a miner running `state.firmware` sends in answer to `request`.

    Every command (each `+`-joined part too) is recorded on `recorder`; anything
    that is not a read command is answered with the firmware's refusal and
    counted in `recorder.privileged`.
    """
    if state.firmware == "epic":
        return respond_epic(state, request, recorder)
    if state.firmware in V3_FIRMWARES:
        return respond_v3(state, request, recorder)
    fw = _FIRMWARE[state.firmware]
    command, ok = parse_request(request)
    if not ok:
        if recorder is not None:
            recorder.record("<malformed>", privileged=False)
        return _error_reply(state, fw, 23, "Invalid JSON").encode() + NUL
    parts = command.split("+")
    privileged = False
    for part in parts:
        p = is_privileged(part)
        privileged = privileged or p
        if recorder is not None:
            recorder.record(part, privileged=p)
    if len(parts) == 1:
        return _single(state, fw, command).encode() + NUL
    if privileged and not state.multicommand:
        return _error_reply(state, fw, 45, fw.denied_msg.format(command)).encode() + NUL
    if not state.multicommand or any(part in fw.no_join for part in parts):
        # Some S19 builds refuse `+`; btminer cannot join its get_*/status commands.
        return _error_reply(state, fw, fw.invalid_code, fw.invalid_msg).encode() + NUL
    body = ",".join(f'"{part}":[{_single(state, fw, part)}]' for part in parts)
    return ("{" + body + ',"id":1}').encode() + NUL
