"""The simulated fleet itself: cgminer connection semantics, every fault kind, determinism, the CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import orjson
import pytest

from edge_agent.sim import firmwares
from edge_agent.sim.server import FAULT_KINDS, SIM_FIRMWARES, V3_PORT, SimFleet, covering_network

from .conftest import MakeSim

REQUEST = b'{"command":"summary"}'


async def exchange(host: str, port: int, payload: bytes = REQUEST, *, limit: int = 1 << 20) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(payload)
        data = bytearray()
        while len(data) < limit:
            chunk = await reader.read(65536)
            if not chunk:
                break
            data += chunk
        return bytes(data)
    finally:
        writer.transport.abort()


def test_manifest_is_deterministic_and_mixes_every_firmware() -> None:
    a = SimFleet(60, base="127.3.0.0", seed=7, faults=0.2)
    b = SimFleet(60, base="127.3.0.0", seed=7, faults=0.2)
    assert a.manifest() == b.manifest()
    assert {m["firmware"] for m in a.manifest()} == set(SIM_FIRMWARES)
    assert {m["listen_port"] for m in a.manifest() if m["firmware"] in firmwares.V3_FIRMWARES} == {V3_PORT}
    faults = [m["fault"] for m in a.manifest() if m["fault"]]
    assert len(faults) == 12 and set(faults) == set(FAULT_KINDS)
    assert SimFleet(60, base="127.3.0.0", seed=8, faults=0.2).manifest() != a.manifest()


def test_covering_network() -> None:
    assert str(covering_network("127.11.0.0", 1)) == "127.11.0.0/32"
    assert str(covering_network("127.11.0.0", 256)) == "127.11.0.0/24"
    assert str(covering_network("127.11.0.0", 300)) == "127.11.0.0/23"
    assert str(covering_network("127.11.0.200", 100)) == "127.11.0.0/23"


def test_refuses_non_loopback_base() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SimFleet(1, base="10.0.0.1")


async def test_one_connection_at_a_time_like_cgminer(make_sim: MakeSim) -> None:
    sim = await make_sim(1, firmware_names=["antminer-s19"])
    m = sim.miners[0]
    # A first client connects and has not sent its request yet: the miner is busy with it.
    r1, w1 = await asyncio.open_connection(m.address, m.port)
    second = asyncio.create_task(exchange(m.address, m.port))
    await asyncio.sleep(0.2)  # give the second request every chance to be (wrongly) answered early
    assert not second.done()
    w1.write(REQUEST)
    first = await asyncio.wait_for(r1.read(1 << 20), 5)
    w1.close()
    assert first.endswith(b"\x00")
    assert (await asyncio.wait_for(second, 5)).endswith(b"\x00")
    assert m.max_open == 2  # the simulator saw the overlap and recorded it


async def test_fault_kinds_behave_as_named(make_sim: MakeSim) -> None:
    kinds = ["refused", "blackhole", "garbage", "endless", "slow", "sleeping", None]
    sim = await make_sim(len(kinds), fault_map=dict(enumerate(kinds)), slow_delay=0.3, firmware_names=["braiins"])
    by_fault = {m.fault: m for m in sim.miners}

    with pytest.raises(ConnectionRefusedError):
        await exchange(by_fault["refused"].address, 4028)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(exchange(by_fault["blackhole"].address, 4028), 0.5)

    garbage = await asyncio.wait_for(exchange(by_fault["garbage"].address, 4028), 5)
    assert 64 <= len(garbage) < 2048
    with pytest.raises(ValueError):
        orjson.loads(garbage.rstrip(b"\x00"))

    endless = await asyncio.wait_for(exchange(by_fault["endless"].address, 4028, limit=3 << 20), 5)
    assert len(endless) >= 3 << 20 and b"\x00" not in endless

    slow = await asyncio.wait_for(exchange(by_fault["slow"].address, 4028), 5)
    assert slow.endswith(b"\x00")

    ok = await asyncio.wait_for(exchange(by_fault[None].address, 4028), 5)
    assert ok.endswith(b"\x00")
    assert sim.miner(by_fault["sleeping"].key).served == 0
    asleep = await asyncio.wait_for(exchange(by_fault["sleeping"].address, 4028), 5)
    assert asleep.endswith(b"\x00")
    assert sim.miner(by_fault["sleeping"].key).served == 1


async def test_faults_can_change_at_run_time(make_sim: MakeSim) -> None:
    sim = await make_sim(3, firmware_names=["whatsminer"])
    m = sim.miners[0]
    sim.set_fault(m.key, "refused")
    with pytest.raises(ConnectionRefusedError):
        await exchange(m.address, 4028)
    sim.set_fault(m.key, None)
    assert (await asyncio.wait_for(exchange(m.address, 4028), 5)).endswith(b"\x00")
    added = sim.add_miner()
    assert added.address == str(sim.base + 3)
    assert (await asyncio.wait_for(exchange(added.address, 4028), 5)).endswith(b"\x00")


async def test_simulate_cli_prints_manifest_and_stops_on_sigterm(make_sim: MakeSim) -> None:
    probe = await make_sim(1)  # reserve a free /24 from the fixture's allocator, then use the next address range
    base = str(probe.base + 16)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edge_agent.sim.cli",
        "simulate",
        "--count",
        "6",
        "--base",
        base,
        "--faults",
        "0.5",
        "--seed",
        "3",
        "--json-manifest",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 15)  # type: ignore[union-attr]
        doc = orjson.loads(line)
        assert doc["port"] == 4028
        assert [m["address"] for m in doc["miners"]] == [str(probe.base + 16 + i) for i in range(6)]
        assert doc["network"] == str(covering_network(base, 6))
        assert sum(1 for m in doc["miners"] if m["fault"]) == 3
        healthy = next(m for m in doc["miners"] if m["fault"] is None)
        assert (await asyncio.wait_for(exchange(healthy["address"], 4028), 5)).endswith(b"\x00")
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 15)
    assert rc == 0


async def test_api_v3_miner_listens_on_4433_and_speaks_length_prefixed_json(make_sim: MakeSim) -> None:
    sim = await make_sim(1, firmware_names=["whatsminer-v3"])
    m = sim.miners[0]
    assert m.key == f"{m.address}:4028" and m.listen_port == V3_PORT
    with pytest.raises(ConnectionRefusedError):
        await exchange(m.address, 4028)
    body = orjson.dumps({"cmd": "get.miner.status", "param": "summary"})
    reply = await asyncio.wait_for(exchange(m.address, V3_PORT, len(body).to_bytes(4, "little") + body), 5)
    length = int.from_bytes(reply[:4], "little")
    assert orjson.loads(reply[4 : 4 + length])["code"] == 0
