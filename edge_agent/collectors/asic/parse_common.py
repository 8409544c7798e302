"""What every parser shares: the identity type, the reading collector, field helpers.

The parsers themselves live in one module per firmware family (`parse_antminer`,
`parse_whatsminer`, ...); `parse.PARSERS` maps the firmware table's parser keys
to them. The contract they all follow:

Every parser takes `replies`, a mapping of command name ("summary", "stats",
"http:/summary", ...) to the decoded reply object, the `miner` label value to put
on every reading, and `base`, the identity known so far (from identification);
it returns the identity completed by what the replies say and the readings.

Rules shared by every family:
- values in SI base units; hashrates in H/s whatever unit the firmware uses;
- boards numbered 0..n-1 in physical order whatever the firmware calls them;
- sentinels (-273, 0 temperatures, "", "0-0-0-0", absent chains, 0 rpm fans)
  are no data: the reading is absent, never 0;
- efficiency (J/TH) only when power and hashrate are both reported and > 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from math import isfinite
from typing import Any

from edge_agent.collectors.asic.repair import number
from edge_agent.model import Reading

Replies = Mapping[str, Mapping[str, Any]]

KILO, MEGA, GIGA, TERA = 1e3, 1e6, 1e9, 1e12
UNIT = {"H": 1.0, "K": KILO, "M": MEGA, "G": GIGA, "T": TERA, "P": 1e15}
_RATE_KEY = re.compile(r"^([KMGT])HS (\d+)([smh])$")
_WINDOW_SECONDS = {"s": 1, "m": 60, "h": 3600}
_AVERAGE = -1


def _rate_key(key: str) -> tuple[float, int] | None:
    """(unit, window seconds; `_AVERAGE` for `av`) of a `[KMGT]HS <n><s|m|h>` or `[KMGT]HS av` key."""
    if len(key) < 5 or key[1:4] != "HS ":
        return None
    unit = UNIT.get(key[0])
    if unit is None:
        return None
    if key[4:] == "av":
        return unit, _AVERAGE
    match = _RATE_KEY.match(key)
    if match is None:
        return None
    return unit, int(match.group(2)) * _WINDOW_SECONDS[match.group(3)]


RateLayout = tuple[tuple[tuple[str, float], ...], tuple[tuple[str, float], ...]]


# A firmware sends the same keys in every reply, and a stats row has about 70 of them: which are
# hashrates is worked out once per distinct key list, not on every poll. Bounded: a miner
# inventing keys costs cache misses, not memory.
@lru_cache(maxsize=256)
def _rate_layout(keys: tuple[str, ...]) -> RateLayout:
    """((key, unit) of the windowed rates, shortest window first; (key, unit) of the averages, in order)."""
    windowed: list[tuple[int, str, float]] = []
    averages: list[tuple[str, float]] = []
    for key in keys:
        spec = _rate_key(key)
        if spec is None:
            continue
        unit, window = spec
        if window == _AVERAGE:
            averages.append((key, unit))
        else:
            windowed.append((window, key, unit))
    windowed.sort(key=lambda w: w[0])  # stable: the first of equal windows wins
    return tuple((key, unit) for _, key, unit in windowed), tuple(averages)


@dataclass(frozen=True, slots=True)
class MinerInfo:
    """Who the miner is. Every field is a string, "" when unknown."""

    make: str = ""
    model: str = ""
    firmware: str = ""
    mac: str = ""
    serial: str = ""

    def merged(self, **found: str) -> MinerInfo:
        """This identity with the non-empty values in `found` taking precedence."""
        updates: dict[str, str] = {}
        for k, v in found.items():
            if isinstance(v, str) and (v := v.strip()) and v != getattr(self, k):
                updates[k] = v
        # Every poll merges what the replies say into what is known, and it is nearly always the
        # same: keep the instance rather than build an equal one.
        return replace(self, **updates) if updates else self


Parser = Callable[[Replies, str, MinerInfo], tuple[MinerInfo, list[Reading]]]


class Out:
    """Collects readings for one miner; the `miner` label tuple is built once."""

    __slots__ = ("board_labels", "hashrate", "miner", "miner_labels", "power", "readings")

    def __init__(self, miner: str) -> None:
        self.miner = miner
        self.miner_labels: tuple[tuple[str, str], ...] = (("miner", miner),)
        # A board has several readings; its label tuple is built once.
        self.board_labels: dict[int, tuple[tuple[str, str], ...]] = {}
        self.readings: list[Reading] = []
        self.hashrate: float | None = None
        self.power: float | None = None

    # Unit scaling can overflow an absurd firmware value to inf: such a value is no data.
    def add(self, key: str, value: float | None) -> None:
        if value is not None and isfinite(value):
            self.readings.append(Reading(key, value, self.miner_labels))

    def set_hashrate(self, value: float | None) -> None:
        if value is not None and value >= 0 and isfinite(value):
            self.hashrate = value

    def set_power(self, value: float | None) -> None:
        if value is not None and value > 0 and isfinite(value):
            self.power = value

    def board(self, key: str, board: int, value: float | None) -> None:
        if value is not None and isfinite(value):
            labels = self.board_labels.get(board)
            if labels is None:
                labels = self.board_labels[board] = (("miner", self.miner), ("board", str(board)))
            self.readings.append(Reading(key, value, labels))

    def fans(self, rpms: Iterable[float | None]) -> None:
        """Fans that report 0 rpm or nothing are absent; the rest are numbered 0..n-1."""
        index = 0
        for rpm in rpms:
            if rpm is not None and rpm > 0:
                self.readings.append(Reading("asic_fan_speed_rpm", rpm, (("miner", self.miner), ("fan", str(index)))))
                index += 1

    def shares(self, accepted: float | None, rejected: float | None, stale: float | None) -> None:
        for result, value in (("accepted", accepted), ("rejected", rejected), ("stale", stale)):
            if value is not None and value >= 0:
                self.readings.append(Reading("asic_shares_total", value, (("miner", self.miner), ("result", result))))

    def pool(self, index: int, url: str, user: str, up: bool) -> None:
        self.readings.append(
            Reading(
                "asic_pool_up",
                1.0 if up else 0.0,
                (("miner", self.miner), ("pool", str(index)), ("url", url), ("user", user)),
            )
        )

    def finish(self) -> list[Reading]:
        """Emit hashrate, power and the efficiency derived from them."""
        self.add("asic_hashrate_hashes_per_second", self.hashrate)
        self.add("asic_power_watts", self.power)
        if self.power is not None and self.hashrate is not None and self.hashrate > 0:
            self.add("asic_efficiency_joules_per_terahash", self.power / (self.hashrate / TERA))
        return self.readings


# --- shared helpers ----------------------------------------------------------------------------


def rows_of(replies: Replies, command: str, key: str) -> list[dict[str, Any]]:
    """The list under `key` in a command's reply (e.g. summary -> SUMMARY), objects only."""
    reply = replies.get(command)
    if not isinstance(reply, Mapping):
        return []
    rows = reply.get(key)
    if not isinstance(rows, list):
        return []
    return [row for row in rows if isinstance(row, dict)]


def first_row(replies: Replies, command: str, key: str) -> dict[str, Any]:
    rows = rows_of(replies, command, key)
    return rows[0] if rows else {}


def as_text(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def as_temperature(value: object) -> float | None:
    """A temperature reading, or None for the sentinels (-273, 0, out of physical range)."""
    t = number(value)
    if t is None or t == 0 or t <= -273 or t > 250:
        return None
    return t


def as_positive(value: object) -> float | None:
    n = number(value)
    return n if n is not None and n > 0 else None


def as_non_negative(value: object) -> float | None:
    n = number(value)
    return n if n is not None and n >= 0 else None


_DASH_VALUE = re.compile(r"(?:^|-)(-?\d+(?:\.\d+)?)")


def parse_dash_temps(value: object) -> list[float]:
    """Bitmain's dash-joined sensor strings: "7-4-25-27", "2--1-20-22" (a negative doubles the dash).

    "0-0-0-0" and "" are no data and give an empty list.
    """
    if not isinstance(value, str) or not value:
        return []
    values = [float(v) for v in _DASH_VALUE.findall(value)]
    if all(v == 0 for v in values):
        return []
    return [v for v in values if v > -273]


def hottest(values: Iterable[float]) -> float | None:
    found = [v for v in values if v > -273]
    return max(found) if found else None


def hottest_dash(value: object) -> float | None:
    """The hottest sensor of a dash-joined string (see `parse_dash_temps`), None when it has none."""
    return _hottest_dash(value) if isinstance(value, str) and value else None


# Every Antminer poll reads six of these strings, and a site's boards run at a few dozen
# temperatures: the same strings come back again and again.
@lru_cache(maxsize=4096)
def _hottest_dash(value: str) -> float | None:
    return hottest(parse_dash_temps(value))


def hashrates(row: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """The shortest-window and the average hashrate (H/s) from `[KMGT]HS <n><s|m|h>` and `[KMGT]HS av`.

    cgminer builds the short key from its log interval (`MHS 5s`, `MHS 20s`,
    Avalon `MHS 30s`), so the shortest window present is taken.
    """
    windowed, averages = _rate_layout(tuple(row))
    short: float | None = None
    for key, unit in windowed:
        n = as_non_negative(row[key])
        if n is not None:
            short = n * unit
            break
    average: float | None = None
    if averages:
        # The last in the row wins (`GHS av` and `MHS av` side by side).
        key, unit = averages[-1]
        n = as_non_negative(row[key])
        average = None if n is None else n * unit
    return short, average


def counters(out: Out, row: Mapping[str, Any], *, uptime: object = None) -> None:
    """Shares, hardware errors and uptime from a cgminer-style SUMMARY row.

    `uptime`, when given, takes precedence over the row's `Elapsed` (bmminer's
    stats carry it too, and stats is the one command every Antminer answers).
    """
    out.shares(number(row.get("Accepted")), number(row.get("Rejected")), number(row.get("Stale")))
    out.add("asic_hardware_errors_total", as_non_negative(row.get("Hardware Errors")))
    elapsed = as_non_negative(uptime)
    out.add("asic_uptime_seconds", elapsed if elapsed is not None else as_non_negative(row.get("Elapsed")))


def read_pools(out: Out, replies: Replies) -> None:
    """Pools from a cgminer-style POOLS list, renumbered 0..n-1 by the firmware's own order.

    btminer numbers pools from 1, cgminer from 0; the order is what matters.
    """
    rows = rows_of(replies, "pools", "POOLS")

    def order(row: dict[str, Any]) -> float:
        n = number(row.get("POOL"))
        return n if n is not None else 0.0

    for index, row in enumerate(sorted(rows, key=order)):
        url = as_text(row.get("URL"))
        if not url:
            continue
        status = as_text(row.get("Status")).lower()
        out.pool(index, url, as_text(row.get("User")), status == "alive")


def status_description(replies: Replies, *commands: str) -> str:
    """The STATUS `Description` of the first of `commands` that has one ("BOSminer+ 0.2.0-...")."""
    for command in commands:
        status = rows_of(replies, command, "STATUS")
        if status and as_text(status[0].get("Description")):
            return as_text(status[0].get("Description"))
    return ""


def as_mac(value: object) -> str:
    """Normalise a MAC to upper-case colon form; Avalon sends 12 bare hex digits."""
    text = as_text(value).upper().replace("-", ":")
    if re.fullmatch(r"[0-9A-F]{12}", text):
        text = ":".join(text[i : i + 2] for i in range(0, 12, 2))
    return text if re.fullmatch(r"(?:[0-9A-F]{2}:){5}[0-9A-F]{2}", text) else ""


def make_of(model: str) -> str:
    lowered = model.lower()
    for needle, make in (
        ("antminer", "Bitmain"),
        ("whatsminer", "MicroBT"),
        ("avalon", "Canaan"),
        ("epic", "ePIC"),
        ("blockminer", "ePIC"),
    ):
        if needle in lowered:
            return make
    if re.match(r"^m\d{2}", lowered):
        return "MicroBT"
    return ""
