"""The simulated firmwares: their bytes carry the real quirks, and identify+poll reads back exactly what they serve."""

from __future__ import annotations

import dataclasses
import math
import random

import orjson
import pytest

from edge_agent.collectors.asic import miner
from edge_agent.collectors.asic.client import MinerCommandRejected, decode
from edge_agent.collectors.asic.parse import PARSERS, MinerInfo
from edge_agent.metrics import METRICS
from edge_agent.model import Reading
from edge_agent.sim import firmwares
from edge_agent.sim.firmwares import FIRMWARES, Recorder, respond

from .helpers import Peer, fixture_replies, sim_handler


def state_for(name: str, index: int = 0, *, sleeping: bool = False) -> firmwares.MinerState:
    state = firmwares.random_state(name, random.Random(index * 7919 + len(name)), index)
    return firmwares.asleep(state) if sleeping else state


def assert_readings_match(got: tuple[Reading, ...] | list[Reading], want: list[Reading]) -> None:
    got_map = {(r.key, r.labels): r.value for r in got}
    want_map = {(r.key, r.labels): r.value for r in want}
    assert len(got_map) == len(got), "duplicate readings"
    assert sorted(got_map) == sorted(want_map)
    for key, value in want_map.items():
        assert math.isclose(got_map[key], value, rel_tol=1e-9), (key, got_map[key], value)


def assert_in_metric_table(readings: tuple[Reading, ...] | list[Reading]) -> None:
    for reading in readings:
        row = METRICS.get(reading.key)
        assert row is not None, f"{reading.key} is not in the metric table"
        assert tuple(name for name, _ in reading.labels) == row.labels, reading
        assert isinstance(reading.value, float), reading
        assert all(isinstance(v, str) for _, v in reading.labels), reading


@pytest.mark.parametrize("name", FIRMWARES)
@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("sleeping", [False, True])
async def test_identify_and_poll_read_back_what_the_sim_serves(peer_factory, name, index, sleeping) -> None:
    state = state_for(name, index, sleeping=sleeping)
    recorder = Recorder()
    peer: Peer = await peer_factory(sim_handler(state, recorder))
    profile = await miner.identify(peer.host, peer.port, timeout=5)
    assert profile.key == name
    result = await miner.poll(peer.host, peer.port, profile, timeout=5)
    key = f"{peer.host}:{peer.port}"
    assert_readings_match(result.readings, firmwares.expected_readings(state, key))
    assert_in_metric_table(result.readings)
    if not (sleeping and name == "whatsminer"):
        # A stopped btminer answers only `status`, so its identity is partial.
        assert result.info == firmwares.expected_info(state)
    assert recorder.privileged_seen == 0
    assert set(recorder.commands) <= firmwares.READ_COMMANDS | {f"GET {p}" for p in firmwares.HTTP_READ_PATHS} | {
        "version"
    }
    # A second poll with the profile the first returned reads the same values.
    again = await miner.poll(peer.host, peer.port, result.profile, timeout=5)
    assert_readings_match(again.readings, firmwares.expected_readings(state, key))
    assert profile.entry is result.profile.entry


async def test_s19_build_that_refuses_multicommand_falls_back_once(peer_factory) -> None:
    state = firmwares.random_state("antminer-s19", random.Random(1), 1)
    assert not state.multicommand
    recorder = Recorder()
    peer = await peer_factory(sim_handler(state, recorder))
    profile = await miner.identify(peer.host, peer.port)
    assert profile.multicommand
    first = await miner.poll(peer.host, peer.port, profile)
    assert not first.profile.multicommand
    connections = peer.connections
    second = await miner.poll(peer.host, peer.port, first.profile)
    # Three single commands, no more multi-command attempts.
    assert peer.connections - connections == 3
    assert_readings_match(second.readings, firmwares.expected_readings(state, f"{peer.host}:{peer.port}"))


async def test_whatsminer_refusing_multicommand_while_mining_falls_back_to_single_commands(peer_factory) -> None:
    state = dataclasses.replace(state_for("whatsminer", 2), multicommand=False)
    peer = await peer_factory(sim_handler(state, Recorder()))
    profile = await miner.identify(peer.host, peer.port)
    first = await miner.poll(peer.host, peer.port, profile)
    assert not first.profile.multicommand
    assert_readings_match(first.readings, firmwares.expected_readings(state, f"{peer.host}:{peer.port}"))


async def test_evolving_miner_is_read_back_after_each_change(peer_factory) -> None:
    rng = random.Random(5)
    holder = {"state": firmwares.random_state("braiins", rng, 3)}

    async def handle(reader, writer, peer: Peer) -> None:
        request = await peer.read_request(reader)
        writer.write(respond(holder["state"], request))
        await writer.drain()
        writer.close()

    peer = await peer_factory(handle)
    profile = await miner.identify(peer.host, peer.port)
    for _ in range(3):
        holder["state"] = firmwares.evolve(holder["state"], rng)
        result = await miner.poll(peer.host, peer.port, profile)
        assert_readings_match(result.readings, firmwares.expected_readings(holder["state"], f"{peer.host}:{peer.port}"))


def test_random_state_is_deterministic() -> None:
    for name in FIRMWARES:
        assert firmwares.random_state(name, random.Random(9), 4) == firmwares.random_state(name, random.Random(9), 4)
    with pytest.raises(ValueError, match="unknown firmware"):
        firmwares.random_state("nope", random.Random(0), 0)


def test_quirks_are_in_the_bytes() -> None:
    s9 = respond(state_for("antminer-s9"), b'{"command":"stats"}')
    assert s9.endswith(b"}\x00")
    assert b"}{" in s9
    assert b'"GHS 5s":"' in s9  # a string on S9
    assert b'"chain_rate1":""' in s9
    s19 = respond(state_for("antminer-s19"), b'{"command":"stats"}')
    assert b'"chain_rate4":""' in s19
    assert b'"rate_unit":"GH"' in s19
    assert b"--" in s19  # a negative sensor reading inside a dash string
    wm = respond(state_for("whatsminer"), b'{"command":"summary"}')
    assert b",}" in wm
    av = respond(state_for("avalon"), b'{"command":"summary"}')
    assert b":inf" in av
    cg = respond(state_for("cgminer"), b'{"command":"summary"}')
    assert b'"MHS 5s":" ' in cg  # padded numeric string
    for raw in (s9, wm, av):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw.rstrip(b"\x00"))
        decode(raw, "sim")


@pytest.mark.parametrize("name", [n for n in FIRMWARES if n != "epic"])
@pytest.mark.parametrize("command", ["restart", "quit", "addpool", "ascset", "set_low_power", "power_off", "reboot"])
def test_privileged_commands_get_the_firmware_refusal_and_are_recorded(name: str, command: str) -> None:
    recorder = Recorder()
    state = state_for(name)
    for request in (
        orjson.dumps({"command": command}),
        orjson.dumps({"cmd": command}),
        command.encode(),
        orjson.dumps({"command": f"summary+{command}"}),
    ):
        reply = decode(respond(state, request, recorder), "sim")
        text = orjson.dumps(reply)
        assert b'"STATUS":"E"' in text or b"Access denied" in text or b"Permission denied" in text, text
    assert recorder.privileged[command] == 4
    assert recorder.privileged_seen == 4


def test_epic_refuses_and_records_anything_but_get_of_a_read_path() -> None:
    recorder = Recorder()
    state = state_for("epic")
    assert respond(state, b"POST /reboot HTTP/1.1\r\n\r\n", recorder).startswith(b"HTTP/1.1 401")
    assert respond(state, b"GET /mode HTTP/1.1\r\n\r\n", recorder).startswith(b"HTTP/1.1 404")
    assert respond(state, b'{"command":"restart"}', recorder).startswith(b"HTTP/1.1 400")
    assert respond(state, b"GET /summary HTTP/1.1\r\n\r\n", recorder).startswith(b"HTTP/1.1 200")
    assert recorder.privileged_seen == 3


def test_whatsminer_cannot_join_get_commands() -> None:
    reply = decode(respond(state_for("whatsminer"), b'{"command":"summary+get_version"}'), "sim")
    assert reply["STATUS"] == "E"


def test_stopped_btminer_answers_only_status() -> None:
    state = state_for("whatsminer", sleeping=True)
    assert decode(respond(state, b'{"cmd":"status"}'), "sim")["Msg"]["btmineroff"] == "true"
    assert decode(respond(state, b'{"command":"summary"}'), "sim")["STATUS"] == "E"


async def test_poll_of_a_miner_that_rejects_everything_raises(peer_factory) -> None:
    state = state_for("whatsminer", sleeping=True)
    peer = await peer_factory(sim_handler(state, Recorder()))
    profile = await miner.identify(peer.host, peer.port)
    # Without btminer's idle probe nothing answers: a rejection, not an empty poll.
    no_probe = dataclasses.replace(profile, entry=dataclasses.replace(profile.entry, idle_probe=""))
    for multicommand in (True, False):
        with pytest.raises(MinerCommandRejected):
            await miner.poll(peer.host, peer.port, dataclasses.replace(no_probe, multicommand=multicommand))


@pytest.mark.parametrize(
    ("parser", "directory", "commands"),
    [
        ("antminer", "antminer-s9_bmminer", ("version", "summary", "pools", "stats")),
        ("antminer", "antminer-s19pro_stock", ("version", "summary", "pools", "stats")),
        ("antminer", "antminer-s19jpro_luxos", ("version", "summary+pools+stats+power", "config")),
        ("whatsminer", "whatsminer-m31s_btminer", ("summary", "pools", "edevs", "get_miner_info")),
        ("whatsminer", "whatsminer-m31s_btminer-stopped", ("status",)),
        ("braiins", "antminer-s9_braiins", ("summary", "pools", "devs", "devdetails", "temps", "fans", "tunerstatus")),
        ("avalon", "avalon-1246_cgminer", ("version", "summary", "pools", "estats")),
        ("epic", "epic-s19jpro_powerplay", ("http:/summary", "http:/capabilities")),
        ("cgminer", "antminer-d3_cgminer", ("version", "summary")),
    ],
)
def test_every_reading_any_parser_emits_is_a_metric_table_row(parser, directory, commands) -> None:
    _, readings = PARSERS[parser](fixture_replies(directory, *commands), "10.0.0.1:4028", MinerInfo())
    assert readings
    assert_in_metric_table(readings)
