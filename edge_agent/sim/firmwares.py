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

Values are quantised when a state is made (hashrates to 0.01 in the firmware's
unit, temperatures and fans to integers, power to whole watts), so
`expected_readings(state, miner)` gives exactly the normalised values an agent
should read back (compare floats with a relative tolerance of 1e-9).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from edge_agent.collectors.asic.parse import MinerInfo
from edge_agent.model import Reading

__all__ = [
    "FIRMWARES",
    "READ_COMMANDS",
    "V3_FIRMWARES",
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

FIRMWARES: tuple[str, ...] = (
    "antminer-s9",
    "antminer-s19",
    "whatsminer",
    "braiins",
    "avalon",
    "luxos",
    "vnish",
    "epic",
    "cgminer",
)

# Whatsminer API v3 speaks a different protocol on port 4433; a simulated fleet
# serves it only where its server listens on that port, so it is not in FIRMWARES.
V3_FIRMWARES: tuple[str, ...] = ("whatsminer-v3",)
V3_READ_COMMANDS: frozenset[str] = frozenset({"get.miner.status", "get.device.info"})

# Every read command any simulated firmware knows. Anything else is privileged
# (or unknown) and is recorded. Kept apart from the client's allowlist on purpose.
READ_COMMANDS: frozenset[str] = frozenset(
    {
        "version",
        "config",
        "summary",
        "pools",
        "devs",
        "edevs",
        "stats",
        "estats",
        "devdetails",
        "coin",
        "lcd",
        "asc",
        "asccount",
        "pga",
        "pgacount",
        "temps",
        "fans",
        "tunerstatus",
        "power",
        "profiles",
        "status",
        "get_version",
        "get_miner_info",
        "get_psu",
        "get_error_code",
    }
)
HTTP_READ_PATHS: frozenset[str] = frozenset({"/summary", "/capabilities", "/hashrate", "/temps", "/fanspeed"})

MEGA, GIGA, TERA = 1e6, 1e9, 1e12
# The unit each firmware reports hashrates in.
_UNIT = {
    "antminer-s9": GIGA,
    "antminer-s19": GIGA,
    "luxos": GIGA,
    "vnish": GIGA,
    "whatsminer": MEGA,
    "braiins": MEGA,
    "avalon": GIGA,
    "epic": MEGA,
    "cgminer": MEGA,
    "whatsminer-v3": TERA,
}
# Decimals each firmware prints its hashrates with, where not 2 (v3: TH/s to 0.001).
_PLACES = {"whatsminer-v3": 3}
_BASE_WHEN = 1_700_000_000


class Recorder:
    """Counts what arrived at the simulated fleet. `privileged` must stay empty."""

    __slots__ = ("commands", "privileged")

    def __init__(self) -> None:
        self.commands: Counter[str] = Counter()
        self.privileged: Counter[str] = Counter()

    def record(self, command: str, *, privileged: bool) -> None:
        self.commands[command] += 1
        if privileged:
            self.privileged[command] += 1

    @property
    def privileged_seen(self) -> int:
        return sum(self.privileged.values())


@dataclass(frozen=True, slots=True)
class BoardState:
    hashrate: float  # H/s
    chips: int
    chip_temp: int  # hottest chip, Celsius
    board_temp: int  # hottest PCB sensor, Celsius


@dataclass(frozen=True, slots=True)
class PoolState:
    url: str
    user: str
    alive: bool


@dataclass(frozen=True, slots=True)
class MinerState:
    """What one simulated miner is doing. Values in SI units, already quantised (see module doc)."""

    firmware: str
    model: str
    mac: str
    serial: str
    version: str
    hashrate: float  # H/s, the short window
    hashrate_avg: float
    nominal: float | None
    boards: tuple[BoardState, ...]
    fans: tuple[int, ...]
    power: int | None
    accepted: int
    rejected: int
    stale: int
    hw_errors: int
    uptime: int
    pools: tuple[PoolState, ...]
    sleeping: bool = False
    multicommand: bool = True  # False: this firmware build refuses `+` (some S19)


# --- states ------------------------------------------------------------------------------------


def _q(value: float, unit: float, places: int = 2) -> float:
    """Quantise a hashrate (H/s) to the decimals the firmware prints in its unit (0.01 unless said)."""
    return float(f"{value / unit:.{places}f}") * unit


_MODELS = {
    "antminer-s9": (("Antminer S9", 13.5e12, 63, 3, 2), ("Antminer S9j", 14.5e12, 63, 3, 2)),
    "antminer-s19": (("Antminer S19 Pro", 110e12, 114, 3, 4), ("Antminer S21", 200e12, 108, 3, 4)),
    "luxos": (("Antminer S19j Pro", 104e12, 126, 3, 4),),
    "vnish": (("Antminer S19", 95e12, 76, 3, 4), ("Antminer S17 Pro", 53e12, 48, 3, 4)),
    "whatsminer": (("M31S+", 80e12, 111, 3, 2), ("M50S", 126e12, 105, 3, 2)),
    "braiins": (("Antminer S9", 14e12, 63, 3, 2), ("Antminer S19j Pro", 100e12, 126, 3, 4)),
    "avalon": (("AvalonMiner 1246", 90e12, 114, 3, 2), ("AvalonMiner 1366", 130e12, 120, 3, 4)),
    "epic": (("S19j Pro", 100e12, 126, 3, 4),),
    "cgminer": (("", 10e12, 0, 0, 0),),
    "whatsminer-v3": (("M60S", 186e12, 156, 3, 2), ("M66S", 298e12, 198, 3, 2)),
}
_WATTS_PER_TH = {
    "whatsminer-v3": 18.5,
    "whatsminer": 38.0,
    "braiins": 30.0,
    "avalon": 34.0,
    "luxos": 29.5,
    "epic": 28.0,
}
_VERSIONS = {
    "antminer-s9": "Fri Nov 17 17:37:49 CST 2017",
    "antminer-s19": "Wed Oct 21 10:18:10 CST 2020",
    "luxos": "2023.10.5-162516",
    "vnish": "vnish 1.2.6",
    "whatsminer": "20210322.22.REL",
    "braiins": "BOSminer+ 0.2.0-36c56a9363",
    "avalon": "21042001_4ec6bb0_61407fa",
    "epic": "PowerPlay-BM v1.8.7",
    "cgminer": "cgminer 4.12.0",
    "whatsminer-v3": "20241125.16.REL",
}


def random_state(firmware: str, rng: random.Random, index: int) -> MinerState:
    """A plausible healthy miner of `firmware`, deterministic for a seeded `rng`."""
    if firmware not in _UNIT:
        raise ValueError(f"unknown firmware {firmware!r}")
    unit = _UNIT[firmware]
    places = _PLACES.get(firmware, 2)
    model, nominal, chips, board_count, fan_count = rng.choice(_MODELS[firmware])
    boards = []
    for _ in range(board_count):
        boards.append(
            BoardState(
                hashrate=_q(nominal / board_count * rng.uniform(0.95, 1.04), unit, places),
                chips=chips,
                chip_temp=rng.randint(62, 88),
                board_temp=rng.randint(45, 70),
            )
        )
    hashrate = _q(nominal * rng.uniform(0.95, 1.04), unit, places)
    power: int | None = None
    if firmware in _WATTS_PER_TH:
        power = round(nominal / TERA * _WATTS_PER_TH[firmware] * rng.uniform(0.97, 1.03))
    # Locally administered, as many miners' MACs are.
    mac = ":".join(f"{b:02X}" for b in (0x02, (index >> 24) & 0xFF, (index >> 16) & 0xFF, (index >> 8) & 0xFF))
    mac += f":{index & 0xFF:02X}:{rng.randint(0, 255):02X}"
    uptime = rng.randint(600, 2_000_000)
    accepted = uptime // 20 + rng.randint(0, 50)
    pools = (
        PoolState(f"stratum+tcp://pool{index % 3}.example.com:3333", f"site.worker{index}", True),
        PoolState("stratum+tcp://backup.example.com:443", f"site.worker{index}", rng.random() > 0.2),
    )
    if firmware == "epic":
        # ePIC reports per-board rates only; the miner's rate is their sum.
        hashrate = _board_sum(boards)
    return MinerState(
        firmware=firmware,
        model=model,
        mac=mac,
        serial=f"SIM{firmware[:3].upper()}{index:08d}",
        version=_VERSIONS[firmware],
        hashrate=hashrate,
        hashrate_avg=_q(nominal * rng.uniform(0.97, 1.01), unit, places),
        nominal=_q(nominal, unit, places),
        boards=tuple(boards),
        fans=tuple(rng.randrange(3000, 6600, 30) for _ in range(fan_count)),
        power=power,
        accepted=accepted,
        rejected=rng.randint(0, accepted // 200 + 1),
        stale=rng.randint(0, 5),
        hw_errors=rng.randint(0, 3000),
        uptime=uptime,
        pools=pools,
        multicommand=not (firmware == "antminer-s19" and index % 2 == 1),
    )


def _board_sum(boards: list[BoardState] | tuple[BoardState, ...]) -> float:
    total = 0.0
    for board in boards:
        total += board.hashrate
    return total


def asleep(state: MinerState) -> MinerState:
    """The same miner in sleep mode: answering, not hashing, boards idle, no power reading."""
    return replace(state, sleeping=True, hashrate=0.0, hashrate_avg=0.0, boards=(), power=None)


def evolve(state: MinerState, rng: random.Random) -> MinerState:
    """The miner a little later: counters advance, rates and temperatures wander."""
    if state.sleeping:
        return replace(state, uptime=state.uptime + rng.randint(1, 30))
    unit = _UNIT[state.firmware]
    places = _PLACES.get(state.firmware, 2)
    evolved = replace(
        state,
        hashrate=_q(state.hashrate * rng.uniform(0.99, 1.01), unit, places),
        boards=tuple(
            replace(
                b,
                hashrate=_q(b.hashrate * rng.uniform(0.99, 1.01), unit, places),
                chip_temp=max(40, min(95, b.chip_temp + rng.randint(-1, 1))),
                board_temp=max(30, min(80, b.board_temp + rng.randint(-1, 1))),
            )
            for b in state.boards
        ),
        accepted=state.accepted + rng.randint(0, 5),
        uptime=state.uptime + rng.randint(1, 30),
        power=None if state.power is None else state.power + rng.randint(-3, 3),
    )
    if state.firmware == "epic":
        evolved = replace(evolved, hashrate=_board_sum(evolved.boards))
    return evolved


# --- what an agent should read back ------------------------------------------------------------

# Which normalised values each firmware's replies carry.
_HAS_POWER = frozenset({"whatsminer", "braiins", "avalon", "luxos", "epic", "whatsminer-v3"})
_HAS_NOMINAL = frozenset({"antminer-s9", "antminer-s19", "luxos", "vnish", "whatsminer", "braiins", "whatsminer-v3"})
_BOARD_FIELDS = {
    "antminer-s9": ("hashrate", "chips", "chip", "board"),
    "antminer-s19": ("hashrate", "chips", "chip", "board"),
    "luxos": ("hashrate", "chips", "chip", "board"),
    "vnish": ("hashrate", "chips", "chip", "board"),
    "whatsminer": ("hashrate", "chips", "chip", "board"),
    "braiins": ("hashrate", "chips", "chip", "board"),
    "avalon": ("hashrate", "chip"),
    "epic": ("hashrate", "board"),
    "cgminer": (),
    "whatsminer-v3": ("board",),
}
_ANTMINER = frozenset({"antminer-s9", "antminer-s19", "luxos", "vnish"})


def expected_info(state: MinerState) -> MinerInfo:
    """The identity an agent should report for this simulated miner."""
    fw = state.firmware
    if fw in ("antminer-s9", "antminer-s19"):
        return MinerInfo("Bitmain", state.model, state.version, "", "")
    if fw == "luxos":
        return MinerInfo("Bitmain", state.model, f"LuxOS {state.version}", state.mac, "")
    if fw == "vnish":
        return MinerInfo("Bitmain", state.model, state.version, "", "")
    if fw in ("whatsminer", "whatsminer-v3"):
        return MinerInfo("MicroBT", f"Whatsminer {state.model}", state.version, state.mac, state.serial)
    if fw == "braiins":
        return MinerInfo("Bitmain", state.model, state.version, "", "")
    if fw == "avalon":
        return MinerInfo("Canaan", state.model, state.version, state.mac, "")
    if fw == "epic":
        return MinerInfo("", state.model, state.version, state.mac, "")
    return MinerInfo("", "", state.version, "", "")


def expected_readings(state: MinerState, miner: str) -> list[Reading]:
    """The readings an agent should produce from this miner (no asic_up / poll duration)."""
    fw = state.firmware
    m = (("miner", miner),)
    out: list[Reading] = [Reading("asic_hashrate_hashes_per_second", state.hashrate, m)]
    if fw == "whatsminer" and state.sleeping:
        return out  # stopped btminer answers only `status`
    out.append(Reading("asic_hashrate_average_hashes_per_second", state.hashrate_avg, m))
    if fw == "whatsminer-v3":
        return _expected_v3(state, m, out)
    if fw == "braiins":
        # bosminer reports nominal per board (devs `Nominal MHS`); the agent sums them.
        per_board = _u((state.nominal or 0.0) / max(1, len(state.boards)), MEGA) * MEGA
        total = 0.0
        for _ in state.boards:
            total += per_board
        if total > 0:
            out.append(Reading("asic_nominal_hashrate_hashes_per_second", total, m))
    elif state.nominal is not None and fw in _HAS_NOMINAL and not (state.sleeping and fw in _ANTMINER):
        out.append(Reading("asic_nominal_hashrate_hashes_per_second", state.nominal, m))
    results: list[tuple[str, int]] = [("accepted", state.accepted), ("rejected", state.rejected)]
    if fw != "epic":
        results.append(("stale", state.stale))
    for result, value in results:
        out.append(Reading("asic_shares_total", float(value), (*m, ("result", result))))
    if fw != "epic":
        out.append(Reading("asic_hardware_errors_total", float(state.hw_errors), m))
    out.append(Reading("asic_uptime_seconds", float(state.uptime), m))
    fields = _BOARD_FIELDS[fw]
    for i, board in enumerate(state.boards):
        labels: tuple[tuple[str, str], ...] = (*m, ("board", str(i)))
        if "hashrate" in fields:
            out.append(Reading("asic_board_hashrate_hashes_per_second", board.hashrate, labels))
        if "chips" in fields:
            out.append(Reading("asic_board_chips", float(board.chips), labels))
        if "chip" in fields:
            out.append(Reading("asic_chip_temperature_celsius", float(board.chip_temp), labels))
        if "board" in fields:
            out.append(Reading("asic_board_temperature_celsius", float(board.board_temp), labels))
    if not (state.sleeping and fw in _ANTMINER):
        for i, rpm in enumerate(r for r in state.fans if r > 0):
            out.append(Reading("asic_fan_speed_rpm", float(rpm), (*m, ("fan", str(i)))))
    if state.power is not None and fw in _HAS_POWER:
        out.append(Reading("asic_power_watts", float(state.power), m))
        if state.hashrate > 0:
            out.append(Reading("asic_efficiency_joules_per_terahash", state.power / (state.hashrate / TERA), m))
    pools = state.pools[:1] if fw == "epic" else state.pools
    for i, pool in enumerate(pools):
        pool_labels: tuple[tuple[str, str], ...] = (*m, ("pool", str(i)), ("url", pool.url), ("user", pool.user))
        out.append(Reading("asic_pool_up", 1.0 if pool.alive else 0.0, pool_labels))
    return out


def _expected_v3(state: MinerState, m: tuple[tuple[str, str], ...], out: list[Reading]) -> list[Reading]:
    # v3's documented summary has no shares or hardware errors; pools and edevs are not read.
    if state.nominal is not None:
        out.append(Reading("asic_nominal_hashrate_hashes_per_second", state.nominal, m))
    out.append(Reading("asic_uptime_seconds", float(state.uptime), m))
    for i, board in enumerate(state.boards):
        out.append(Reading("asic_board_temperature_celsius", float(board.board_temp), (*m, ("board", str(i)))))
    for i, rpm in enumerate(r for r in state.fans if r > 0):
        out.append(Reading("asic_fan_speed_rpm", float(rpm), (*m, ("fan", str(i)))))
    if state.power is not None:
        out.append(Reading("asic_power_watts", float(state.power), m))
        if state.hashrate > 0:
            out.append(Reading("asic_efficiency_joules_per_terahash", state.power / (state.hashrate / TERA), m))
    return out


# --- rendering helpers -------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _u(value: float, unit: float) -> float:
    """A hashrate in the firmware's unit, rounded as the firmware prints it."""
    return round(value / unit, 2)


def _status(letter: str, code: int, msg: str, description: str, when: int) -> list[dict[str, Any]]:
    return [{"STATUS": letter, "When": when, "Code": code, "Msg": msg, "Description": description}]


@dataclass(frozen=True, slots=True)
class _Firmware:
    description: Callable[[MinerState], str]
    commands: dict[str, Callable[[MinerState, str], str]]  # command -> body text (the object, no NUL)
    no_join: frozenset[str] = frozenset()  # commands that cannot be part of a multi-command
    invalid_code: int = 14
    invalid_msg: str = "Invalid command"
    denied_msg: str = "Access denied to '{}' command"


def _reply(state: MinerState, section: str, rows: list[dict[str, Any]], code: int, msg: str, desc: str) -> str:  # noqa: PLR0917
    return _dumps({"STATUS": _status("S", code, msg, desc, _BASE_WHEN + state.uptime), section: rows, "id": 1})


def _pools_rows(state: MinerState, first: int) -> list[dict[str, Any]]:
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


def _cg_pools(first: int) -> Callable[[MinerState, str], str]:
    def render(state: MinerState, desc: str) -> str:
        return _reply(state, "POOLS", _pools_rows(state, first), 7, f"{len(state.pools)} Pool(s)", desc)

    return render


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
    return _reply(state, "VERSION", [row], 22, "BMMiner versions", desc)


def _ant_header(state: MinerState) -> dict[str, Any]:
    row: dict[str, Any] = {"BMMiner": "2.0.0", "Miner": "16.8.1.3", "CompileTime": state.version}
    if state.firmware == "vnish":
        row["Type"] = f"{state.model} ({state.version})"
    else:
        row["Type"] = state.model
    return row


def _ant_summary(state: MinerState, desc: str) -> str:
    s9 = state.firmware == "antminer-s9"
    rate = _u(state.hashrate, GIGA)
    row: dict[str, Any] = {
        "Elapsed": state.uptime,
        # bmminer on S9 sends the 5 s rate as a string.
        "GHS 5s": f"{rate:.2f}" if s9 else rate,
        "GHS av": _u(state.hashrate_avg, GIGA),
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
        "Last getwork": _BASE_WHEN + state.uptime,
    }
    return _reply(state, "SUMMARY", [row], 11, "Summary", desc)


def _ant_stats(state: MinerState, desc: str) -> str:
    fw = state.firmware
    head = _dumps({"STATUS": _status("S", 70, "CGMiner stats", desc, _BASE_WHEN + state.uptime)})[:-1]
    if state.sleeping:
        # Sleep mode (bitmain-work-mode 1): stats answers with no rows.
        return head + ',"STATS":[],"id":1}'
    header = _dumps(_ant_header(state))
    if fw == "antminer-s9":
        data = _dumps(_s9_data(state))
        # bmminer on S9-era Antminers puts no comma between the STATS objects.
        return f'{head},"STATS":[{header}{data}],"id":1}}'
    return f'{head},"STATS":[{header},{_dumps(_s19_data(state))}],"id":1}}'


def _s9_data(state: MinerState) -> dict[str, Any]:
    row: dict[str, Any] = {
        "STATS": 0,
        "ID": "BC50",
        "Elapsed": state.uptime,
        "Calls": 0,
        "Wait": 0.0,
        "Max": 0.0,
        "Min": 99999999.0,
        "GHS 5s": f"{_u(state.hashrate, GIGA):.2f}",
        "GHS av": _u(state.hashrate_avg, GIGA),
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
        row[f"chain_rate{i}"] = f"{_u(chains[i].hashrate, GIGA):.2f}" if i in chains else ""
    row["total_rateideal"] = _u(state.nominal or 0.0, GIGA)
    row["total_freqavg"] = 650.0
    row["total_acn"] = sum(b.chips for b in state.boards)
    row["total_rate"] = _u(state.hashrate, GIGA)
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
        "GHS 5s": _u(state.hashrate, GIGA),
        "GHS av": _u(state.hashrate_avg, GIGA),
        "rate_30m": _u(state.hashrate_avg, GIGA),
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
    row["total_rateideal"] = _u(state.nominal or 0.0, GIGA)
    row["rate_unit"] = "GH"
    row["total_freqavg"] = 525
    row["total_acn"] = sum(b.chips for b in state.boards)
    row["total rate"] = _u(state.hashrate, GIGA)
    for i in range(1, 5):
        b = chains.get(i)
        row[f"chain_acn{i}"] = b.chips if b else 0
        row[f"chain_acs{i}"] = " oooo oooo" if b else ""
        row[f"chain_hw{i}"] = state.hw_errors // max(1, len(chains)) if b else 0
        # The empty 4th slot: chain_rate4 is "".
        row[f"chain_rate{i}"] = f"{_u(b.hashrate, GIGA):.2f}" if b else ""
        row[f"freq{i}"] = 525 if b else 0
    row["miner_version"] = "49.0.1.3"
    row["miner_id"] = state.serial.lower()
    return row


def _lux_power(state: MinerState, desc: str) -> str:
    row = {"PSU": True, "Watts": state.power or 0}
    return _reply(state, "POWER", [row], 300, "Power", desc)


def _lux_config(state: MinerState, desc: str) -> str:
    row = {"ASC Count": len(state.boards), "PGA Count": 0, "Pool Count": len(state.pools), "MACAddr": state.mac}
    return _reply(state, "CONFIG", [row], 33, "CGMiner config", desc)


def _ant_devs(state: MinerState, desc: str) -> str:
    rows = [
        {"ASC": i, "Name": "BTM_SOC", "ID": i, "Enabled": "Y", "Status": "Alive", "MHS 5s": _u(b.hashrate, MEGA)}
        for i, b in enumerate(state.boards)
    ]
    return _reply(state, "DEVS", rows, 9, f"{len(rows)} ASC(s)", desc)


# --- Whatsminer btminer API v2 -----------------------------------------------------------------


def _wm_summary(state: MinerState, desc: str) -> str:
    row: dict[str, Any] = {
        "Elapsed": state.uptime,
        "MHS av": _u(state.hashrate_avg, MEGA),
        "MHS 5s": _u(state.hashrate, MEGA),
        "MHS 1m": _u(state.hashrate, MEGA),
        "MHS 5m": _u(state.hashrate_avg, MEGA),
        "MHS 15m": _u(state.hashrate_avg, MEGA),
        "HS RT": _u(state.hashrate, MEGA),
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
    body = _dumps(row)
    # btminer leaves a trailing comma after the last field.
    body = body[:-1] + ",}"
    status = _dumps(_status("S", 11, "Summary", desc, _BASE_WHEN + state.uptime))
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
                "MHS av": _u(b.hashrate, MEGA),
                "MHS 5s": _u(b.hashrate, MEGA),
                "MHS 1m": _u(b.hashrate, MEGA),
                "MHS 5m": _u(b.hashrate, MEGA),
                "MHS 15m": _u(b.hashrate, MEGA),
                "HS RT": _u(b.hashrate, MEGA),
                "Factory GHS": round((state.nominal or 0) / GIGA / max(1, len(state.boards))),
                "Upfreq Complete": 1,
                "Effective Chips": b.chips,
                "PCB SN": f"{state.serial}B{i}",
                "Chip Temp Min": float(b.chip_temp - 12),
                "Chip Temp Max": float(b.chip_temp),
                "Chip Temp Avg": float(b.chip_temp - 6),
            }
        )
    return _reply(state, "DEVS", rows, 9, f"{len(rows)} ASC(s)", desc)


def _wm_devdetails(state: MinerState, desc: str) -> str:
    rows = [
        {"DEVDETAILS": i, "Name": "SM", "ID": i, "Driver": "bitmicro", "Kernel": "", "Model": state.model}
        for i in range(len(state.boards) or 1)
    ]
    return _reply(state, "DEVDETAILS", rows, 69, "Device Details", desc)


def _wm_msg(code: int, msg: dict[str, Any], state: MinerState) -> str:
    # btminer's own commands: STATUS is a bare string and Msg an object.
    return _dumps({"STATUS": "S", "When": _BASE_WHEN + state.uptime, "Code": code, "Msg": msg, "Description": ""})


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
    return _dumps({"STATUS": "S", "When": _BASE_WHEN + state.uptime, "Code": 131, "Msg": msg, "Description": desc})


# --- Braiins OS ----------------------------------------------------------------------------------


def _bos_version(state: MinerState, desc: str) -> str:
    return _reply(state, "VERSION", [{"API": "3.7", "BOSminer": state.version.split(" ", 1)[-1]}], 22, "", desc)


def _bos_summary(state: MinerState, desc: str) -> str:
    mh = _u(state.hashrate, MEGA)
    row = {
        "Elapsed": state.uptime,
        "MHS av": _u(state.hashrate_avg, MEGA),
        "MHS 5s": mh,
        "MHS 1m": mh,
        "MHS 5m": mh,
        "MHS 15m": mh,
        "MHS 24h": _u(state.hashrate_avg, MEGA),
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
    return _reply(state, "SUMMARY", [row], 11, "Summary", desc)


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
                "MHS av": _u(b.hashrate, MEGA),
                "MHS 5s": _u(b.hashrate, MEGA),
                "MHS 1m": _u(b.hashrate, MEGA),
                "MHS 5m": _u(b.hashrate, MEGA),
                "MHS 15m": _u(b.hashrate, MEGA),
                "Nominal MHS": _u(per_board_nominal, MEGA),
                "Hardware Errors": 0,
            }
        )
    return _reply(state, "DEVS", rows, 9, f"{len(rows)} ASC(s)", desc)


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
    return _reply(state, "DEVDETAILS", rows, 69, "Device Details", desc)


def _bos_temps(state: MinerState, desc: str) -> str:
    rows = [
        {"TEMP": i, "ID": _bos_id(state, i), "Board": float(b.board_temp), "Chip": float(b.chip_temp)}
        for i, b in enumerate(state.boards)
    ]
    return _reply(state, "TEMPS", rows, 201, f"{len(rows)} Temp(s)", desc)


def _bos_fans(state: MinerState, desc: str) -> str:
    rows = [{"FAN": i, "ID": i, "RPM": rpm, "Speed": 70} for i, rpm in enumerate(state.fans)]
    return _reply(state, "FANS", rows, 202, f"{len(rows)} Fan(s)", desc)


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
    return _reply(state, "TUNERSTATUS", [row], 203, "Tuner Status", desc)


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
    return _reply(state, "VERSION", [row], 22, "CGMiner versions", desc)


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
        f"WALLPOWER[{watts}] GHSspd[{_u(state.hashrate, GIGA):.2f}] DHspd[1.299%] "
        f"GHSmm[{_u(state.nominal or 0, GIGA):.2f}] GHSavg[{_u(state.hashrate_avg, GIGA):.2f}] "
        f"MGHS[{' '.join(f'{_u(b.hashrate, GIGA):.2f}' for b in boards)}] "
        f"MTmax[{mtmax}] MTavg[{' '.join(str(b.chip_temp - 8) for b in boards)}] "
        f"TA[{len(boards) * 114}] ECHU[0 0 0] ECMM[0] SYSTEMSTATU[Work: In Work, Hash Board: {len(boards)} ] "
        f"MPO[3515] WORKMODE[1]"
    )


def _av_estats(state: MinerState, desc: str) -> str:
    row = {"STATS": 0, "ID": "AVALON0", "Elapsed": state.uptime, "Calls": 0, "Wait": 0.0, "Max": 0.0}
    row["MM ID0"] = _av_mm(state)
    row["MM Count"] = 1
    row["Nonce Mask"] = 25
    return _reply(state, "STATS", [row], 70, "CGMiner stats", desc)


def _av_summary(state: MinerState, desc: str) -> str:
    mh = _u(state.hashrate, MEGA)
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
    body = _dumps(row)
    # Avalon (cgminer 4.11) prints an unguarded %f: Work Utility goes out as a bare inf.
    body = body.replace('"Work Utility":0.0', '"Work Utility":inf')
    status = _dumps(_status("S", 11, "Summary", desc, _BASE_WHEN + state.uptime))
    return f'{{"STATUS":{status},"SUMMARY":[{body}],"id":1}}'


def _av_devs(state: MinerState, desc: str) -> str:
    rows = [
        {"ASC": 0, "Name": "AVA10", "ID": 0, "Enabled": "Y", "Status": "Alive", "Temperature": -273.0}
        | {"MHS av": round(state.hashrate_avg / MEGA, 2), "MHS 30s": _u(state.hashrate, MEGA)}
    ]
    return _reply(state, "DEVS", rows, 9, "1 ASC(s)", desc)


# --- generic cgminer ---------------------------------------------------------------------------


def _cg_version(state: MinerState, desc: str) -> str:
    return _reply(state, "VERSION", [{"CGMiner": state.version.split(" ")[-1], "API": "3.7"}], 22, "", desc)


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
    return _reply(state, "SUMMARY", [row], 11, "Summary", desc)


def _cg_devs(state: MinerState, desc: str) -> str:
    return _reply(state, "DEVS", [], 9, "No ASCs", desc)


_FIRMWARE: dict[str, _Firmware] = {}
_ant_commands = {
    "version": _ant_version,
    "summary": _ant_summary,
    "stats": _ant_stats,
    "pools": _cg_pools(0),
    "devs": _ant_devs,
}
_FIRMWARE["antminer-s9"] = _Firmware(lambda s: "bmminer 1.0.0", dict(_ant_commands))
_FIRMWARE["antminer-s19"] = _Firmware(lambda s: "cgminer 1.0.0", dict(_ant_commands))
_FIRMWARE["vnish"] = _Firmware(lambda s: "cgminer 4.11.1", dict(_ant_commands))
_FIRMWARE["luxos"] = _Firmware(
    lambda s: f"LUXminer {s.version}", {**_ant_commands, "power": _lux_power, "config": _lux_config}
)
_FIRMWARE["whatsminer"] = _Firmware(
    lambda s: "btminer",
    {
        "summary": _wm_summary,
        "pools": _cg_pools(1),
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
_FIRMWARE["braiins"] = _Firmware(
    lambda s: s.version,
    {
        "version": _bos_version,
        "summary": _bos_summary,
        "pools": _cg_pools(0),
        "devs": _bos_devs,
        "devdetails": _bos_devdetails,
        "temps": _bos_temps,
        "fans": _bos_fans,
        "tunerstatus": _bos_tuner,
    },
)
_FIRMWARE["avalon"] = _Firmware(
    lambda s: "cgminer 4.11.1",
    {
        "version": _av_version,
        "summary": _av_summary,
        "pools": _cg_pools(0),
        "estats": _av_estats,
        "stats": _av_estats,
        "devs": _av_devs,
    },
)
_FIRMWARE["cgminer"] = _Firmware(
    lambda s: s.version,
    {"version": _cg_version, "summary": _cg_summary, "pools": _cg_pools(0), "devs": _cg_devs},
)


# --- the request side --------------------------------------------------------------------------

_NUL = b"\x00"


def _parse_request(request: bytes) -> tuple[str, bool]:
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


def _error(state: MinerState, fw: _Firmware, code: int, msg: str) -> str:
    when = _BASE_WHEN + state.uptime
    if state.firmware == "whatsminer":
        return _dumps({"STATUS": "E", "When": when, "Code": code, "Msg": msg, "Description": "whatsminer v1.1"})
    return _dumps({"STATUS": _status("E", code, msg, fw.description(state), when), "id": 1})


def _is_privileged(command: str) -> bool:
    return command not in READ_COMMANDS


def _single(state: MinerState, fw: _Firmware, command: str) -> str:
    if _is_privileged(command):
        # cgminer: "Access denied to '<cmd>' command" (45); btminer: needs a token (stand-in reply).
        if state.firmware == "whatsminer":
            return _error(state, fw, 45, "Permission denied")
        return _error(state, fw, 45, fw.denied_msg.format(command))
    if state.firmware == "whatsminer" and state.sleeping and command != "status":
        # Stopped btminer answers only `status` (stand-in error for the rest).
        return _error(state, fw, 14, fw.invalid_msg)
    render = fw.commands.get(command)
    if render is None:
        return _error(state, fw, fw.invalid_code, fw.invalid_msg)
    return render(state, fw.description(state))


def respond(state: MinerState, request: bytes, recorder: Recorder | None = None) -> bytes:
    """The bytes a miner running `state.firmware` sends in answer to `request`.

    Every command (each `+`-joined part too) is recorded on `recorder`; anything
    that is not a read command is answered with the firmware's refusal and
    counted in `recorder.privileged`.
    """
    if state.firmware == "epic":
        return _epic(state, request, recorder)
    if state.firmware in V3_FIRMWARES:
        return _v3(state, request, recorder)
    fw = _FIRMWARE[state.firmware]
    command, ok = _parse_request(request)
    if not ok:
        if recorder is not None:
            recorder.record("<malformed>", privileged=False)
        return _error(state, fw, 23, "Invalid JSON").encode() + _NUL
    parts = command.split("+")
    privileged = False
    for part in parts:
        p = _is_privileged(part)
        privileged = privileged or p
        if recorder is not None:
            recorder.record(part, privileged=p)
    if len(parts) == 1:
        return _single(state, fw, command).encode() + _NUL
    if privileged and not state.multicommand:
        return _error(state, fw, 45, fw.denied_msg.format(command)).encode() + _NUL
    if not state.multicommand or any(part in fw.no_join for part in parts):
        # Some S19 builds refuse `+`; btminer cannot join its get_*/status commands.
        return _error(state, fw, fw.invalid_code, fw.invalid_msg).encode() + _NUL
    body = ",".join(f'"{part}":[{_single(state, fw, part)}]' for part in parts)
    return ("{" + body + ',"id":1}').encode() + _NUL


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
            "Startup Timestamp": _BASE_WHEN,
            "Uptime": state.uptime,
            "Last Work Timestamp": _BASE_WHEN + state.uptime,
            "WorkReceived": state.uptime * 3,
            "Active HBs": len(state.boards),
            "Average MHs": _u(state.hashrate_avg, MEGA),
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
                "Hashrate": [_u(b.hashrate, MEGA), 98.5],
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


def _epic(state: MinerState, request: bytes, recorder: Recorder | None) -> bytes:
    line = request.split(b"\r\n", 1)[0].decode("latin-1")
    match = _HTTP_LINE.match(line)
    if match is None:
        # A cgminer JSON request to ePIC's HTTP server (stand-in reply: 400).
        if recorder is not None:
            command, ok = _parse_request(request)
            recorder.record(command or "<malformed>", privileged=ok and _is_privileged(command))
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
        caps = {"Model": state.model, "Max HBs": 3, "Default Hashrate": _u(state.nominal or 0, MEGA)}
        return _http("200 OK", orjson.dumps(caps))
    return _http("404 Not Found")


# --- Whatsminer API v3 (length-prefixed JSON on port 4433) --------------------------------------------


def _v3_frame(obj: dict[str, Any]) -> bytes:
    body = orjson.dumps(obj)
    return len(body).to_bytes(4, "little") + body


def _v3_reply(state: MinerState, desc: str, code: int, msg: Any) -> bytes:
    return _v3_frame({"code": code, "when": _BASE_WHEN + state.uptime, "msg": msg, "desc": desc})


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


def _v3(state: MinerState, request: bytes, recorder: Recorder | None) -> bytes:
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
