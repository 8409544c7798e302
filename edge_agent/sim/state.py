"""Simulated miners' state: what each one is doing, how states are made, evolve and sleep."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, replace

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
UNIT = {
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
PLACES = {"whatsminer-v3": 3}
BASE_WHEN = 1_700_000_000


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


def quantise(value: float, unit: float, places: int = 2) -> float:
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
    if firmware not in UNIT:
        raise ValueError(f"unknown firmware {firmware!r}")
    unit = UNIT[firmware]
    places = PLACES.get(firmware, 2)
    model, nominal, chips, board_count, fan_count = rng.choice(_MODELS[firmware])
    boards = []
    for _ in range(board_count):
        boards.append(
            BoardState(
                hashrate=quantise(nominal / board_count * rng.uniform(0.95, 1.04), unit, places),
                chips=chips,
                chip_temp=rng.randint(62, 88),
                board_temp=rng.randint(45, 70),
            )
        )
    hashrate = quantise(nominal * rng.uniform(0.95, 1.04), unit, places)
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
        hashrate = board_sum(boards)
    return MinerState(
        firmware=firmware,
        model=model,
        mac=mac,
        serial=f"SIM{firmware[:3].upper()}{index:08d}",
        version=_VERSIONS[firmware],
        hashrate=hashrate,
        hashrate_avg=quantise(nominal * rng.uniform(0.97, 1.01), unit, places),
        nominal=quantise(nominal, unit, places),
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


def board_sum(boards: list[BoardState] | tuple[BoardState, ...]) -> float:
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
    unit = UNIT[state.firmware]
    places = PLACES.get(state.firmware, 2)
    evolved = replace(
        state,
        hashrate=quantise(state.hashrate * rng.uniform(0.99, 1.01), unit, places),
        boards=tuple(
            replace(
                b,
                hashrate=quantise(b.hashrate * rng.uniform(0.99, 1.01), unit, places),
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
        evolved = replace(evolved, hashrate=board_sum(evolved.boards))
    return evolved
