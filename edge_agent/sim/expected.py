"""What an agent should read back from a simulated miner: the normalised truth for tests."""

from __future__ import annotations

from edge_agent.collectors.asic.parse import MinerInfo
from edge_agent.model import Reading
from edge_agent.sim.render_common import in_unit
from edge_agent.sim.state import MEGA, TERA, MinerState

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
        per_board = in_unit((state.nominal or 0.0) / max(1, len(state.boards)), MEGA) * MEGA
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
