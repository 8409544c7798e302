"""Whatsminer API v3 (port 4433): framing, read-only gate, identification and polling against the simulator."""

from __future__ import annotations

import random

import orjson
import pytest

from edge_agent.collectors.asic import client, miner
from edge_agent.collectors.asic.client import (
    V3_PORT,
    CommandNotAllowed,
    MinerCommandRejected,
    MinerMalformed,
    MinerRefused,
    MinerResponseTooLarge,
)
from edge_agent.collectors.asic.parse import PARSERS, MinerInfo
from edge_agent.sim import firmwares
from edge_agent.sim.firmwares import Recorder

from .helpers import Peer, fixed_reply, fixture_bytes, next_host, reading_map, sim_handler
from .test_sim_firmwares import assert_in_metric_table, assert_readings_match

V3_DIR = "whatsminer-m30s++_btminer-v3"


def recorded(command: str) -> bytes:
    return fixture_bytes(V3_DIR, command)


def unframed(raw: bytes) -> bytes:
    length = int.from_bytes(raw[:4], "little")
    assert len(raw) == 4 + length
    return raw[4:]


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "little") + body


def test_parse_documented_v3_replies() -> None:
    replies = {
        "get.miner.status": client.decode(unframed(recorded("get.miner.status")), "m"),
        "get.device.info": client.decode(unframed(recorded("get.device.info")), "m"),
    }
    info, readings = PARSERS["whatsminer-v3"](replies, "m", MinerInfo(make="MicroBT"))
    got = reading_map(readings)
    assert info == MinerInfo(
        "MicroBT", "Whatsminer M30S++_VH70", "20240722.07.51.REL", "CA:01:14:00:04:EB", "HHM1EK4670221600001"
    )
    assert got["asic_hashrate_hashes_per_second", ()] == pytest.approx(101.847e12)
    assert got["asic_nominal_hashrate_hashes_per_second", ()] == pytest.approx(101.366e12)
    assert got["asic_power_watts", ()] == 3268
    assert got["asic_efficiency_joules_per_terahash", ()] == pytest.approx(3268 / 101.847)
    assert [got["asic_board_temperature_celsius", (("board", str(i)),)] for i in range(3)] == [69.6, 70.1, 72.3]
    assert got["asic_uptime_seconds", ()] == 1074
    assert [got["asic_fan_speed_rpm", (("fan", str(i)),)] for i in range(2)] == [4980, 5070]
    assert_in_metric_table(readings)


async def test_request_is_one_length_prefixed_write(peer_factory) -> None:
    peer = await peer_factory(fixed_reply(recorded("get.miner.status")))
    reply = await client.query_v3(peer.host, peer.port, "get.miner.status", "summary")
    assert reply["msg"]["summary"]["elapsed"] == 1074
    body = b'{"cmd":"get.miner.status","param":"summary"}'
    assert peer.requests == [len(body).to_bytes(4, "little") + body]


async def test_heartbeats_before_the_reply_are_skipped(peer_factory) -> None:
    peer = await peer_factory(fixed_reply(b"\x00\x00\x00\x00" * 3 + recorded("get.miner.status")))
    assert (await client.query_v3(peer.host, peer.port, "get.miner.status", "summary"))["code"] == 0


async def test_error_code_is_a_rejection(peer_factory) -> None:
    reply = frame(b'{"code":-2,"when":1,"msg":"invalid command","desc":"get.miner.status"}')
    peer = await peer_factory(fixed_reply(reply))
    with pytest.raises(MinerCommandRejected) as info:
        await client.query_v3(peer.host, peer.port, "get.miner.status", "summary")
    assert info.value.code == -2


async def test_an_announced_length_over_the_cap_fails_at_once(peer_factory) -> None:
    peer = await peer_factory(fixed_reply((1 << 30).to_bytes(4, "little") + b"{"))
    with pytest.raises(MinerResponseTooLarge):
        await client.query_v3(peer.host, peer.port, "get.miner.status", "summary", timeout=30)


async def test_connection_closed_inside_a_frame(peer_factory) -> None:
    peer = await peer_factory(fixed_reply(recorded("get.miner.status")[:-10]))
    with pytest.raises(MinerMalformed):
        await client.query_v3(peer.host, peer.port, "get.miner.status", "summary")


@pytest.mark.parametrize(
    ("command", "param"),
    [
        ("set.miner.service", "restart"),
        ("set.system.reboot", None),
        ("set.miner.power_percent", None),
        ("set.system.factory_reset", None),
        ("set.miner.pools", None),
        ("get.device.info", "salt"),  # only needed to sign writes
        ("get.miner.status", "summary+set"),
        ("get.miner.status", "summary\\"),
        ("get.log.download", None),
        ("get.miner.history", None),
        ("summary", None),
    ],
)
async def test_v3_read_only_gate(peer_factory, command: str, param: str | None) -> None:
    peer = await peer_factory(fixed_reply(b""))
    with pytest.raises(CommandNotAllowed):
        await client.query_v3(peer.host, peer.port, command, param)
    assert peer.connections == 0


def v3_state(index: int, *, sleeping: bool = False) -> firmwares.MinerState:
    state = firmwares.random_state("whatsminer-v3", random.Random(index), index)
    return firmwares.asleep(state) if sleeping else state


@pytest.mark.parametrize("sleeping", [False, True])
async def test_identify_and_poll_on_4433(sleeping: bool) -> None:
    state = v3_state(2, sleeping=sleeping)
    recorder = Recorder()
    peer = await Peer(sim_handler(state, recorder)).start(port=V3_PORT)
    try:
        profile = await miner.identify(peer.host, V3_PORT)
        assert profile.key == "whatsminer-v3"
        assert profile.port is None
        result = await miner.poll(peer.host, V3_PORT, profile)
        assert_readings_match(result.readings, firmwares.expected_readings(state, f"{peer.host}:{V3_PORT}"))
        assert result.info == firmwares.expected_info(state)
        assert recorder.privileged_seen == 0
    finally:
        await peer.aclose()


async def test_a_whatsminer_with_4028_closed_is_found_on_4433_and_keeps_its_address() -> None:
    state = v3_state(4)
    host = next_host()
    peer = await Peer(sim_handler(state, Recorder())).start(host=host, port=V3_PORT)
    try:
        profile = await miner.identify(host, 4028)
        assert profile.key == "whatsminer-v3"
        assert profile.port == V3_PORT
        result = await miner.poll(host, 4028, profile)
        assert_readings_match(result.readings, firmwares.expected_readings(state, f"{host}:4028"))
    finally:
        await peer.aclose()


async def test_refused_on_both_ports_is_refused() -> None:
    with pytest.raises(MinerRefused):
        await miner.identify(next_host(), 4028, timeout=2)


def test_sim_v3_records_writes_as_privileged() -> None:
    recorder = Recorder()
    reply = firmwares.respond(v3_state(1), frame(b'{"cmd":"set.miner.service","param":"restart"}'), recorder)
    assert orjson.loads(reply[4:])["code"] == -4
    assert recorder.privileged["set.miner.service"] == 1
