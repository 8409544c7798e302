"""Pure parsers: a miner's decoded replies -> (MinerInfo, readings).

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
from typing import Any

from edge_agent.collectors.asic.repair import number
from edge_agent.model import Reading

__all__ = ["PARSERS", "MinerInfo", "Parser", "parse_dash_temps"]

Replies = Mapping[str, Mapping[str, Any]]

KILO, MEGA, GIGA, TERA = 1e3, 1e6, 1e9, 1e12
_UNIT = {"H": 1.0, "K": KILO, "M": MEGA, "G": GIGA, "T": TERA, "P": 1e15}
_RATE_KEY = re.compile(r"^([KMGT])HS (\d+)([smh])$")
_WINDOW_SECONDS = {"s": 1, "m": 60, "h": 3600}


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
        updates = {k: v.strip() for k, v in found.items() if isinstance(v, str) and v.strip()}
        return replace(self, **updates) if updates else self


Parser = Callable[[Replies, str, MinerInfo], tuple[MinerInfo, list[Reading]]]


class _Out:
    """Collects readings for one miner; the `miner` label tuple is built once."""

    __slots__ = ("hashrate", "miner", "miner_labels", "power", "readings")

    def __init__(self, miner: str) -> None:
        self.miner = miner
        self.miner_labels: tuple[tuple[str, str], ...] = (("miner", miner),)
        self.readings: list[Reading] = []
        self.hashrate: float | None = None
        self.power: float | None = None

    def add(self, key: str, value: float | None) -> None:
        if value is not None:
            self.readings.append(Reading(key, value, self.miner_labels))

    def set_hashrate(self, value: float | None) -> None:
        if value is not None and value >= 0:
            self.hashrate = value

    def set_power(self, value: float | None) -> None:
        if value is not None and value > 0:
            self.power = value

    def board(self, key: str, board: int, value: float | None) -> None:
        if value is not None:
            self.readings.append(Reading(key, value, (("miner", self.miner), ("board", str(board)))))

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


def _section(replies: Replies, command: str, key: str) -> list[dict[str, Any]]:
    """The list under `key` in a command's reply (e.g. summary -> SUMMARY), objects only."""
    reply = replies.get(command)
    if not isinstance(reply, Mapping):
        return []
    rows = reply.get(key)
    if not isinstance(rows, list):
        return []
    return [row for row in rows if isinstance(row, dict)]


def _first(replies: Replies, command: str, key: str) -> dict[str, Any]:
    rows = _section(replies, command, key)
    return rows[0] if rows else {}


def _text(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _temperature(value: object) -> float | None:
    """A temperature reading, or None for the sentinels (-273, 0, out of physical range)."""
    t = number(value)
    if t is None or t == 0 or t <= -273 or t > 250:
        return None
    return t


def _positive(value: object) -> float | None:
    n = number(value)
    return n if n is not None and n > 0 else None


def _non_negative(value: object) -> float | None:
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


def _hottest(values: Iterable[float]) -> float | None:
    found = [v for v in values if v > -273]
    return max(found) if found else None


def _short_and_average(row: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """The shortest-window and the average hashrate (H/s) from `[KMGT]HS <n><s|m|h>` and `[KMGT]HS av`.

    cgminer builds the short key from its log interval (`MHS 5s`, `MHS 20s`,
    Avalon `MHS 30s`), so the shortest window present is taken.
    """
    best: tuple[int, float] | None = None
    average: float | None = None
    for key, value in row.items():
        if len(key) < 5 or key[1:4] != "HS ":
            continue
        unit = _UNIT.get(key[0])
        if unit is None:
            continue
        if key[4:] == "av":
            n = _non_negative(value)
            average = None if n is None else n * unit
            continue
        match = _RATE_KEY.match(key)
        if match is None:
            continue
        n = _non_negative(value)
        if n is None:
            continue
        window = int(match.group(2)) * _WINDOW_SECONDS[match.group(3)]
        if best is None or window < best[0]:
            best = (window, n * unit)
    return (best[1] if best else None), average


def _summary_counters(out: _Out, row: Mapping[str, Any], *, uptime: object = None) -> None:
    """Shares, hardware errors and uptime from a cgminer-style SUMMARY row.

    `uptime`, when given, takes precedence over the row's `Elapsed` (bmminer's
    stats carry it too, and stats is the one command every Antminer answers).
    """
    out.shares(number(row.get("Accepted")), number(row.get("Rejected")), number(row.get("Stale")))
    out.add("asic_hardware_errors_total", _non_negative(row.get("Hardware Errors")))
    elapsed = _non_negative(uptime)
    out.add("asic_uptime_seconds", elapsed if elapsed is not None else _non_negative(row.get("Elapsed")))


def _pools(out: _Out, replies: Replies) -> None:
    """Pools from a cgminer-style POOLS list, renumbered 0..n-1 by the firmware's own order.

    btminer numbers pools from 1, cgminer from 0; the order is what matters.
    """
    rows = _section(replies, "pools", "POOLS")

    def order(row: dict[str, Any]) -> float:
        n = number(row.get("POOL"))
        return n if n is not None else 0.0

    for index, row in enumerate(sorted(rows, key=order)):
        url = _text(row.get("URL"))
        if not url:
            continue
        status = _text(row.get("Status")).lower()
        out.pool(index, url, _text(row.get("User")), status == "alive")


def _description(replies: Replies, *commands: str) -> str:
    """The STATUS `Description` of the first of `commands` that has one ("BOSminer+ 0.2.0-...")."""
    for command in commands:
        status = _section(replies, command, "STATUS")
        if status and _text(status[0].get("Description")):
            return _text(status[0].get("Description"))
    return ""


def _mac(value: object) -> str:
    """Normalise a MAC to upper-case colon form; Avalon sends 12 bare hex digits."""
    text = _text(value).upper().replace("-", ":")
    if re.fullmatch(r"[0-9A-F]{12}", text):
        text = ":".join(text[i : i + 2] for i in range(0, 12, 2))
    return text if re.fullmatch(r"(?:[0-9A-F]{2}:){5}[0-9A-F]{2}", text) else ""


def _make_of(model: str) -> str:
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


# --- Bitmain Antminer stock, and firmware built on its API (LuxOS, VNish) -------------------------

_CHAIN_KEY = re.compile(r"^(?:chain_acn|chain_rate|chain_hw|temp_chip|temp_pcb|temp2_|temp)(\d+)$")
_TYPE_FIRMWARE = re.compile(r"^(?P<model>.*?)\s*\((?P<fw>[^)]*)\)\s*$")


def _chain_base(present: list[int]) -> int:
    """The number the firmware gives its first chain slot.

    Stock S19/S21 numbers chains 1..4; S9-era bmminer numbers them 6..8 and some
    firmware 11..13 (with the lower slots listed empty). Boards are numbered
    from the slot base so that a dead board keeps the others' numbers.
    """
    low = min(present)
    if low <= 5:
        return 1
    if low <= 10:
        return 6
    return 11


def _antminer_model(replies: Replies) -> tuple[str, str]:
    """(model, firmware-from-Type) from `Type`, e.g. "Antminer S17 Pro (vnish 2.0.4)"."""
    for command, key in (("version", "VERSION"), ("stats", "STATS")):
        for row in _section(replies, command, key):
            kind = _text(row.get("Type"))
            if kind:
                match = _TYPE_FIRMWARE.match(kind)
                if match:
                    return match.group("model"), match.group("fw")
                return kind, ""
    return "", ""


def parse_antminer(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
    out = _Out(miner)
    summary = _first(replies, "summary", "SUMMARY")
    stats_rows = _section(replies, "stats", "STATS")
    data: Mapping[str, Any] = {}
    for row in stats_rows:
        if any(key.startswith(("chain_", "GHS", "MHS", "fan")) for key in row):
            data = row
            break
    # Sleep mode on stock Antminer (bitmain-work-mode 1): stats answers with no rows.
    sleeping = "stats" in replies and not data and not any(k.endswith(" 5s") for k in summary)

    short, average = _short_and_average(data) if data else (None, None)
    if short is None:
        short, s_average = _short_and_average(summary)
        average = average if average is not None else s_average
    elif average is None:
        average = _short_and_average(summary)[1]
    out.set_hashrate(0.0 if sleeping else short)
    out.add("asic_hashrate_average_hashes_per_second", average)

    unit = _UNIT.get(_text(data.get("rate_unit"))[:1].upper(), GIGA) if data else GIGA
    ideal = _positive(data.get("total_rateideal"))
    out.add("asic_nominal_hashrate_hashes_per_second", None if ideal is None else ideal * unit)

    _summary_counters(out, summary, uptime=data.get("Elapsed") if data else None)

    # Chains.
    ids: set[int] = set()
    for key in data:
        match = _CHAIN_KEY.match(key)
        if match:
            ids.add(int(match.group(1)))
    present = [
        i
        for i in sorted(ids)
        if _positive(data.get(f"chain_acn{i}")) is not None or _non_negative(data.get(f"chain_rate{i}")) is not None
    ]
    if present:
        chain_base = _chain_base(present)
        for chain in present:
            board = chain - chain_base
            rate = _non_negative(data.get(f"chain_rate{chain}"))
            out.board("asic_board_hashrate_hashes_per_second", board, None if rate is None else rate * unit)
            out.board("asic_board_chips", board, _positive(data.get(f"chain_acn{chain}")))
            chip = _hottest(parse_dash_temps(data.get(f"temp_chip{chain}")))
            if chip is None:
                chip = _temperature(data.get(f"temp2_{chain}"))
            out.board("asic_chip_temperature_celsius", board, chip)
            pcb = _hottest(parse_dash_temps(data.get(f"temp_pcb{chain}")))
            if pcb is None:
                pcb = _temperature(data.get(f"temp{chain}"))
            out.board("asic_board_temperature_celsius", board, pcb)

    # Fans: fan1..fanN; S9 lists eight slots with zeros for the empty ones.
    fan_ids = sorted(int(k[3:]) for k in data if k.startswith("fan") and k[3:].isdigit())
    out.fans(number(data.get(f"fan{i}")) for i in fan_ids)

    # LuxOS reports power through its `power` command; stock firmware reports none.
    power_row = _first(replies, "power", "POWER")
    out.set_power(_positive(power_row.get("Watts")))

    _pools(out, replies)
    model, type_fw = _antminer_model(replies)
    found: dict[str, str] = {"model": model}
    # The stats header repeats the version fields; once identified, only `version` may change the firmware.
    header = _first(replies, "version", "VERSION") or (stats_rows[0] if stats_rows and not base.firmware else {})
    if _text(header.get("LUXminer")):
        found["firmware"] = f"LuxOS {_text(header.get('LUXminer'))}"
    elif type_fw:
        # VNish names itself inside Type: "Antminer S17 Pro (vnish 2.0.4)".
        found["firmware"] = type_fw
    elif _text(header.get("CompileTime")):
        # Stock firmware is identified by its build time, as Bitmain's web UI shows it.
        found["firmware"] = _text(header.get("CompileTime"))
    config = _first(replies, "config", "CONFIG")
    if config:
        found["mac"] = _mac(config.get("MACAddr"))
    return base.merged(**found), out.finish()


# --- MicroBT Whatsminer, btminer API v2 ---------------------------------------------------------


def _btminer_msg(replies: Replies, command: str) -> Mapping[str, Any]:
    """btminer's `get_*`/`status` replies carry an object in `Msg` (STATUS is a string)."""
    reply = replies.get(command)
    if isinstance(reply, Mapping):
        msg = reply.get("Msg")
        if isinstance(msg, Mapping):
            return msg
    return {}


def _strip_quotes(value: object) -> str:
    # btminer wraps its firmware version in single quotes: "'20201202.22.REL'".
    return _text(value).strip("'")


def btminer_off(replies: Replies) -> bool:
    """True when btminer's `status` says the mining process is stopped."""
    return _text(_btminer_msg(replies, "status").get("btmineroff")).lower() == "true"


def parse_whatsminer(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
    out = _Out(miner)
    summary = _first(replies, "summary", "SUMMARY")
    found: dict[str, str] = {}
    if btminer_off(replies):
        # Stopped btminer answers only `status`: up, not hashing.
        out.set_hashrate(0.0)
        found["firmware"] = _strip_quotes(_btminer_msg(replies, "status").get("Firmware Version"))
    short, average = _short_and_average(summary)
    out.set_hashrate(short)
    out.add("asic_hashrate_average_hashes_per_second", average)
    factory = _positive(summary.get("Factory GHS"))
    out.add("asic_nominal_hashrate_hashes_per_second", None if factory is None else factory * GIGA)
    power = _positive(summary.get("Power"))
    out.set_power(power if power is not None else _positive(summary.get("Power_RT")))
    _summary_counters(out, summary)
    out.fans((number(summary.get("Fan Speed In")), number(summary.get("Fan Speed Out"))))

    devs = _section(replies, "edevs", "DEVS") or _section(replies, "devs", "DEVS")
    slots = [number(d.get("Slot", d.get("ASC"))) for d in devs]
    use_slot = all(s is not None and s >= 0 and s == int(s) for s in slots) and len(set(slots)) == len(slots)
    for rank, dev in enumerate(devs):
        slot = slots[rank]
        board = int(slot) if use_slot and slot is not None else rank
        dev_short, dev_average = _short_and_average(dev)
        rate = dev_short if dev_short is not None else dev_average
        out.board("asic_board_hashrate_hashes_per_second", board, rate)
        out.board("asic_board_chips", board, _positive(dev.get("Effective Chips")))
        out.board("asic_chip_temperature_celsius", board, _temperature(dev.get("Chip Temp Max")))
        out.board("asic_board_temperature_celsius", board, _temperature(dev.get("Temperature")))

    _pools(out, replies)
    version = _btminer_msg(replies, "get_version")
    info_msg = _btminer_msg(replies, "get_miner_info")
    details = _first(replies, "devdetails", "DEVDETAILS")
    fw = _strip_quotes(summary.get("Firmware Version")) or _text(version.get("fw_ver"))
    if fw:
        found["firmware"] = fw
    found["mac"] = _mac(summary.get("MAC")) or _mac(info_msg.get("mac"))
    found["serial"] = _text(info_msg.get("minersn"))
    model = _text(details.get("Model"))
    if model:
        found["model"] = model if model.lower().startswith("whatsminer") else f"Whatsminer {model}"
    return base.merged(**found), out.finish()


# --- MicroBT Whatsminer, API v3 (port 4433) ---------------------------------------------------------


def _v3_msg(replies: Replies, command: str) -> Mapping[str, Any]:
    reply = replies.get(command)
    msg = reply.get("msg") if isinstance(reply, Mapping) else None
    return msg if isinstance(msg, Mapping) else {}


def _v3_section(msg: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    section = msg.get(key)
    return section if isinstance(section, Mapping) else {}


def parse_whatsminer_v3(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
    """`get.miner.status` (summary) and `get.device.info`: hashrates in TH/s.

    Only the documented summary fields are read: per-board temperatures come
    from `board-temperature[]`; v3's pools and edevs layouts are not documented
    well enough to trust, so shares, pools and per-board rates stay absent.
    """
    out = _Out(miner)
    summary = _v3_section(_v3_msg(replies, "get.miner.status"), "summary")
    info = _v3_msg(replies, "get.device.info")
    realtime = _non_negative(summary.get("hash-realtime"))
    out.set_hashrate(None if realtime is None else realtime * TERA)
    average = _non_negative(summary.get("hash-average"))
    out.add("asic_hashrate_average_hashes_per_second", None if average is None else average * TERA)
    factory = _positive(summary.get("factory-hash"))
    out.add("asic_nominal_hashrate_hashes_per_second", None if factory is None else factory * TERA)
    out.set_power(_positive(summary.get("power-realtime")))
    out.add("asic_uptime_seconds", _non_negative(summary.get("elapsed")))
    out.fans((number(summary.get("fan-speed-in")), number(summary.get("fan-speed-out"))))
    temps = summary.get("board-temperature")
    if isinstance(temps, list):
        for board, temp in enumerate(temps):
            out.board("asic_board_temperature_celsius", board, _temperature(temp))

    found: dict[str, str] = {}
    hardware = _v3_section(info, "miner")
    kind = _text(hardware.get("type"))
    if kind:
        found["model"] = kind if kind.lower().startswith("whatsminer") else f"Whatsminer {kind}"
    found["serial"] = _text(hardware.get("miner-sn"))
    found["firmware"] = _text(_v3_section(info, "system").get("fwversion"))
    found["mac"] = _mac(_v3_section(info, "network").get("mac"))
    return base.merged(**found), out.finish()


# --- Braiins OS / OS+ (bosminer, BOSer) ----------------------------------------------------------


def parse_braiins(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
    out = _Out(miner)
    summary = _first(replies, "summary", "SUMMARY")
    short, average = _short_and_average(summary)
    out.set_hashrate(short)
    out.add("asic_hashrate_average_hashes_per_second", average)
    _summary_counters(out, summary)

    devs = _section(replies, "devs", "DEVS")
    details = _section(replies, "devdetails", "DEVDETAILS")
    temps = _section(replies, "temps", "TEMPS")
    # bosminer keeps the hardware's chain IDs (6..8 on S9); boards are their rank.
    ids = sorted(
        {int(n) for n in (number(row.get("ID")) for row in (*devs, *details, *temps)) if n is not None and n >= 0}
    )
    board_of = {chain: rank for rank, chain in enumerate(ids)}

    def board(row: Mapping[str, Any]) -> int | None:
        n = number(row.get("ID"))
        return None if n is None else board_of.get(int(n))

    nominal = 0.0
    for dev in devs:
        b = board(dev)
        nom = _positive(dev.get("Nominal MHS"))
        if nom is not None:
            nominal += nom * MEGA
        if b is None:
            continue
        dev_short, dev_average = _short_and_average(dev)
        out.board("asic_board_hashrate_hashes_per_second", b, dev_short if dev_short is not None else dev_average)
    out.add("asic_nominal_hashrate_hashes_per_second", nominal or None)
    for row in details:
        b = board(row)
        if b is not None:
            out.board("asic_board_chips", b, _positive(row.get("Chips")))
    for row in temps:
        b = board(row)
        if b is not None:
            # bosminer reports 0.0 for a sensor it cannot read.
            out.board("asic_chip_temperature_celsius", b, _temperature(row.get("Chip")))
            out.board("asic_board_temperature_celsius", b, _temperature(row.get("Board")))
    out.fans(number(row.get("RPM")) for row in _section(replies, "fans", "FANS"))
    tuner = _first(replies, "tunerstatus", "TUNERSTATUS")
    out.set_power(_positive(tuner.get("ApproximateMinerPowerConsumption")))
    _pools(out, replies)

    found: dict[str, str] = {"firmware": _description(replies, "summary", "devs", "version", "devdetails")}
    model = next((_text(row.get("Model")) for row in details if _text(row.get("Model"))), "")
    if model:
        found["model"] = model
    return base.merged(**found), out.finish()


# --- Canaan Avalon -------------------------------------------------------------------------------

_MM_PAIR = re.compile(r"(\w+)\[([^\]]*)\]")


def parse_mm(text: str) -> dict[str, str]:
    """Avalon's `MM ID0` string of `Key[value ...]` pairs as a dict (first occurrence wins)."""
    out: dict[str, str] = {}
    for key, value in _MM_PAIR.findall(text):
        out.setdefault(key, value)
    return out


def _mm_numbers(value: str | None) -> list[float | None]:
    if not value:
        return []
    return [number(part) for part in value.split()]


def parse_avalon(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
    out = _Out(miner)
    summary = _first(replies, "summary", "SUMMARY")
    mm: dict[str, str] = {}
    for command in ("estats", "stats"):
        for row in _section(replies, command, "STATS"):
            for key in sorted(k for k in row if k.startswith("MM ID")):
                if isinstance(row[key], str):
                    mm = parse_mm(row[key])
                    break
            if mm:
                break
        if mm:
            break

    short = _non_negative(mm.get("GHSspd"))
    average = _non_negative(mm.get("GHSavg"))
    s_short, s_average = _short_and_average(summary)
    out.set_hashrate(short * GIGA if short is not None else s_short)
    out.add("asic_hashrate_average_hashes_per_second", average * GIGA if average is not None else s_average)
    _summary_counters(out, summary)
    if "Hardware Errors" not in summary:
        out.add("asic_hardware_errors_total", _non_negative(mm.get("HW")))
    if "Elapsed" not in summary:
        out.add("asic_uptime_seconds", _non_negative(mm.get("Elapsed")))

    for board, rate in enumerate(_mm_numbers(mm.get("MGHS"))):
        out.board("asic_board_hashrate_hashes_per_second", board, None if rate is None or rate < 0 else rate * GIGA)
    for board, temp in enumerate(_mm_numbers(mm.get("MTmax"))):
        out.board("asic_chip_temperature_celsius", board, _temperature(temp))
    out.fans(number(mm.get(f"Fan{i}")) for i in range(1, 5))
    power = _positive(mm.get("WALLPOWER"))
    if power is None:
        # PS[...]: the last field is the PSU's output power on the A12-A15 series.
        ps = _mm_numbers(mm.get("PS"))
        power = ps[-1] if ps and ps[-1] is not None and ps[-1] > 0 else None
    out.set_power(power)
    _pools(out, replies)

    version = _first(replies, "version", "VERSION")
    found = {"mac": _mac(version.get("MAC"))}
    prod = _text(version.get("PROD"))
    if prod:
        found["model"] = prod
    fw = _text(version.get("VERSION")) or _text(mm.get("Ver"))
    if fw:
        found["firmware"] = fw
    return base.merged(**found), out.finish()


# --- ePIC (HTTP JSON) ----------------------------------------------------------------------------


def parse_epic(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
    out = _Out(miner)
    summary = replies.get("http:/summary") or {}
    caps = replies.get("http:/capabilities") or {}
    session_field = summary.get("Session")
    session: Mapping[str, Any] = session_field if isinstance(session_field, Mapping) else {}
    boards = [hb for hb in summary.get("HBs") or () if isinstance(hb, Mapping)]

    total = 0.0
    seen = False
    for rank, hb in enumerate(sorted(boards, key=lambda hb: number(hb.get("Index")) or 0.0)):
        rate_field = hb.get("Hashrate")
        rate = number(rate_field[0] if isinstance(rate_field, list) and rate_field else rate_field)
        if rate is not None and rate >= 0:
            total += rate * MEGA
            seen = True
            out.board("asic_board_hashrate_hashes_per_second", rank, rate * MEGA)
        out.board("asic_board_temperature_celsius", rank, _temperature(hb.get("Temperature")))
    state = ""
    status = summary.get("Status")
    if isinstance(status, Mapping):
        state = _text(status.get("Operating State")).lower()
    out.set_hashrate(total if seen else (0.0 if state and state != "mining" else None))
    average = _non_negative(session.get("Average MHs"))
    out.add("asic_hashrate_average_hashes_per_second", None if average is None else average * MEGA)
    out.shares(number(session.get("Accepted")), number(session.get("Rejected")), None)
    out.add("asic_uptime_seconds", _non_negative(session.get("Uptime")))
    fans = summary.get("Fans Rpm")
    if isinstance(fans, Mapping):
        out.fans(number(fans[k]) for k in sorted(fans))
    psu = summary.get("Power Supply Stats")
    if isinstance(psu, Mapping):
        out.set_power(_positive(psu.get("Input Power")))
    stratum = summary.get("Stratum")
    if isinstance(stratum, Mapping) and _text(stratum.get("Current Pool")):
        out.pool(
            0,
            _text(stratum.get("Current Pool")),
            _text(stratum.get("Current User")),
            stratum.get("IsPoolConnected") is True,
        )

    found: dict[str, str] = {"firmware": _text(summary.get("Software"))}
    model = _text(caps.get("Model"))
    if model:
        found["model"] = model
    network = summary.get("Network")
    if isinstance(network, Mapping):
        for iface in network.values():
            if isinstance(iface, Mapping) and _mac(iface.get("mac_address")):
                found["mac"] = _mac(iface.get("mac_address"))
                break
    return base.merged(**found), out.finish()


# --- anything else that speaks the cgminer API ---------------------------------------------------


def parse_cgminer(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
    out = _Out(miner)
    summary = _first(replies, "summary", "SUMMARY")
    short, average = _short_and_average(summary)
    out.set_hashrate(short if short is not None else average)
    out.add("asic_hashrate_average_hashes_per_second", average)
    _summary_counters(out, summary)
    _pools(out, replies)
    found: dict[str, str] = {}
    version = _first(replies, "version", "VERSION")
    model = _text(version.get("Type")) or _text(version.get("PROD"))
    if model:
        found["model"] = model
    if not base.firmware:
        found["firmware"] = _description(replies, "summary", "version")
    return base.merged(**found), out.finish()


def _with_make(parser: Parser) -> Parser:
    """Fill in the make from the model name when neither the table nor the replies gave one."""

    def parse(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
        info, readings = parser(replies, miner, base)
        if not info.make and info.model:
            info = info.merged(make=_make_of(info.model))
        return info, readings

    parse.__name__ = parser.__name__
    parse.__doc__ = parser.__doc__
    return parse


PARSERS: dict[str, Parser] = {
    "antminer": _with_make(parse_antminer),
    "whatsminer": _with_make(parse_whatsminer),
    "whatsminer-v3": _with_make(parse_whatsminer_v3),
    "braiins": _with_make(parse_braiins),
    "avalon": _with_make(parse_avalon),
    "epic": _with_make(parse_epic),
    "cgminer": _with_make(parse_cgminer),
}
