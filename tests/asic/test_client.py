"""The miner client against real TCP peers on 127.0.0.x: framing, deadline, byte cap, every fault classified."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from edge_agent.collectors.asic import client
from edge_agent.collectors.asic.client import (
    MinerCommandRejected,
    MinerMalformed,
    MinerRefused,
    MinerReset,
    MinerResponseTooLarge,
    MinerTimeout,
)

from .helpers import Peer, fixed_reply, fixture_bytes, refused_address, reset_socket, wait_until

SUMMARY = (
    b'{"STATUS":[{"STATUS":"S","When":1,"Code":11,"Msg":"Summary","Description":"cgminer 4.12.0"}],'
    b'"SUMMARY":[{"MHS 5s":1.0}],"id":1}'
)


async def hold_open(reader: asyncio.StreamReader) -> None:
    """Keep the connection until the client closes it (reads return EOF)."""
    while await reader.read(4096):
        pass


async def test_request_is_one_json_write_and_the_reply_ends_at_nul(peer_factory) -> None:
    async def handle(reader, writer, peer: Peer) -> None:
        await peer.read_request(reader)
        # Reply, then keep the connection open: the NUL alone must end the read.
        writer.write(SUMMARY + b"\x00")
        await writer.drain()
        await hold_open(reader)

    peer = await peer_factory(handle)
    raw = await client.request(peer.host, peer.port, "summary+pools+stats", timeout=30)
    assert raw == SUMMARY
    assert peer.requests == [b'{"command":"summary+pools+stats"}']
    await wait_until(peer.closed.is_set)


async def test_reply_ending_at_eof_without_nul(peer_factory) -> None:
    peer = await peer_factory(fixed_reply(SUMMARY))
    assert await client.request(peer.host, peer.port, "summary") == SUMMARY


async def test_reply_split_across_many_segments(peer_factory) -> None:
    async def handle(reader, writer, peer: Peer) -> None:
        await peer.read_request(reader)
        for i in range(0, len(SUMMARY), 7):
            writer.write(SUMMARY[i : i + 7])
            await writer.drain()
        writer.write(b"\x00")
        await writer.drain()
        await hold_open(reader)

    peer = await peer_factory(handle)
    assert await client.request(peer.host, peer.port, "summary") == SUMMARY


async def test_parameter_is_sent_in_json(peer_factory) -> None:
    peer = await peer_factory(fixed_reply(SUMMARY + b"\x00"))
    await client.request(peer.host, peer.port, "asc", parameter="0")
    assert orjson.loads(peer.requests[0]) == {"command": "asc", "parameter": "0"}


async def test_refused() -> None:
    host, port = refused_address()
    with pytest.raises(MinerRefused) as info:
        await client.request(host, port, "summary")
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert info.value.miner == f"{host}:{port}"
    assert info.value.kind == "refused"


async def test_never_answers_costs_the_deadline_and_closes_the_socket(peer_factory) -> None:
    async def handle(reader, writer, peer: Peer) -> None:
        await peer.read_request(reader)
        await hold_open(reader)

    peer = await peer_factory(handle)
    with pytest.raises(MinerTimeout) as info:
        await client.request(peer.host, peer.port, "summary", timeout=0.3)
    assert isinstance(info.value.__cause__, TimeoutError)
    await wait_until(peer.closed.is_set)


async def test_slow_answer_within_the_deadline(peer_factory) -> None:
    async def handle(reader, writer, peer: Peer) -> None:
        await peer.read_request(reader)
        writer.write(SUMMARY[:20])
        await writer.drain()
        await asyncio.sleep(0.2)  # the fault under test: a slow miner
        writer.write(SUMMARY[20:] + b"\x00")
        await writer.drain()
        await hold_open(reader)

    peer = await peer_factory(handle)
    assert await client.request(peer.host, peer.port, "summary", timeout=10) == SUMMARY


async def test_trickling_miner_is_cut_off_by_one_overall_deadline(peer_factory) -> None:
    """A byte every 50 ms never trips a per-read timeout; the overall deadline still holds."""

    async def handle(reader, writer, peer: Peer) -> None:
        await peer.read_request(reader)
        while True:
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.05)

    peer = await peer_factory(handle)
    with pytest.raises(MinerTimeout):
        await client.request(peer.host, peer.port, "summary", timeout=0.5)
    await wait_until(peer.closed.is_set)


async def test_an_overall_deadline_cuts_requests_short_of_their_own_timeout(peer_factory) -> None:
    """The fleet's cap over identify + poll: every request of the task ends by the deadline."""

    async def slow(reader, writer, peer: Peer) -> None:
        await peer.read_request(reader)
        await asyncio.sleep(0.2)
        writer.write(SUMMARY + b"\x00")
        await writer.drain()

    peer = await peer_factory(slow)
    loop = asyncio.get_running_loop()
    token = client.set_deadline(loop.time() + 0.5)
    try:
        # Each request alone is well within its 10 s timeout; the third runs past the deadline.
        assert await client.request(peer.host, peer.port, "summary", timeout=10) == SUMMARY
        assert await client.request(peer.host, peer.port, "summary", timeout=10) == SUMMARY
        with pytest.raises(MinerTimeout) as info:
            await client.request(peer.host, peer.port, "summary", timeout=10)
        assert "within 0." in info.value.detail
        # A deadline already passed fails at once, without waiting for a reply.
        with pytest.raises(MinerTimeout):
            await client.request(peer.host, peer.port, "summary", timeout=10)
    finally:
        client.reset_deadline(token)
    # Reset: requests have only their own timeout again.
    assert await client.request(peer.host, peer.port, "summary", timeout=10) == SUMMARY


async def test_garbage_is_malformed_with_its_first_bytes(peer_factory) -> None:
    garbage = bytes(range(1, 256)) * 4  # no NUL: a NUL would end the reply
    peer = await peer_factory(fixed_reply(garbage))
    with pytest.raises(MinerMalformed) as info:
        await client.query(peer.host, peer.port, "summary")
    assert info.value.head == garbage[:200]


async def test_empty_reply_is_malformed(peer_factory) -> None:
    peer = await peer_factory(fixed_reply(b""))
    with pytest.raises(MinerMalformed):
        await client.query(peer.host, peer.port, "summary")


async def test_endless_stream_is_capped(peer_factory) -> None:
    sent = 0

    async def handle(reader, writer, peer: Peer) -> None:
        nonlocal sent
        await peer.read_request(reader)
        chunk = b'{"STATS":[' + b"1," * 8192
        while True:
            writer.write(chunk)
            sent += len(chunk)
            await writer.drain()

    peer = await peer_factory(handle)
    with pytest.raises(MinerResponseTooLarge):
        await client.request(peer.host, peer.port, "stats", timeout=30, max_bytes=256 * 1024)
    await wait_until(peer.closed.is_set)


async def test_reset_by_peer(peer_factory) -> None:
    async def handle(reader, writer, peer: Peer) -> None:
        await peer.read_request(reader)
        writer.write(b'{"STATUS":[')
        await writer.drain()
        reset_socket(writer)

    peer = await peer_factory(handle)
    with pytest.raises(MinerReset) as info:
        await client.request(peer.host, peer.port, "summary", timeout=5)
    assert isinstance(info.value.__cause__, ConnectionResetError)


async def test_cancellation_closes_the_socket(peer_factory) -> None:
    async def handle(reader, writer, peer: Peer) -> None:
        await peer.read_request(reader)
        await hold_open(reader)

    peer = await peer_factory(handle)
    task = asyncio.create_task(client.request(peer.host, peer.port, "summary", timeout=60))
    await wait_until(lambda: len(peer.requests) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(peer.closed.is_set)


async def test_single_command_rejected(peer_factory) -> None:
    reply = b'{"STATUS":[{"STATUS":"E","When":1,"Code":14,"Msg":"Invalid command","Description":"cgminer"}],"id":1}\x00'
    peer = await peer_factory(fixed_reply(reply))
    with pytest.raises(MinerCommandRejected) as info:
        await client.query(peer.host, peer.port, "estats")
    assert info.value.code == 14


async def test_btminer_string_status_rejection(peer_factory) -> None:
    peer = await peer_factory(fixed_reply(fixture_bytes("whatsminer-m31s_btminer", "version")))
    with pytest.raises(MinerCommandRejected) as info:
        await client.query(peer.host, peer.port, "version")
    assert info.value.code == 14
    assert "invalid cmd" in str(info.value)


async def test_multicommand_refused_as_a_whole(peer_factory) -> None:
    peer = await peer_factory(fixed_reply(fixture_bytes("antminer-s19pro_stock", "summary+pools+stats")))
    with pytest.raises(MinerCommandRejected):
        await client.query(peer.host, peer.port, ("summary", "pools", "stats"))


async def test_multicommand_keeps_the_parts_that_succeeded(peer_factory) -> None:
    ok = b'[{"STATUS":[{"STATUS":"S","When":1,"Code":11,"Msg":"Summary"}],"SUMMARY":[{"MHS 5s":1}],"id":1}]'
    bad = b'[{"STATUS":[{"STATUS":"E","When":1,"Code":14,"Msg":"Invalid command"}],"id":1}]'
    peer = await peer_factory(fixed_reply(b'{"summary":' + ok + b',"estats":' + bad + b',"id":1}\x00'))
    replies = await client.query(peer.host, peer.port, "summary+estats")
    assert set(replies) == {"summary"}
    assert replies["summary"]["SUMMARY"] == [{"MHS 5s": 1}]


async def test_multicommand_every_part_rejected(peer_factory) -> None:
    bad = b'[{"STATUS":"E","When":1,"Code":14,"Msg":"invalid cmd","Description":""}]'
    peer = await peer_factory(fixed_reply(b'{"summary":' + bad + b',"pools":' + bad + b',"id":1}'))
    with pytest.raises(MinerCommandRejected):
        await client.query(peer.host, peer.port, "summary+pools")


async def test_http_get_with_content_length_and_a_server_that_keeps_alive(peer_factory) -> None:
    async def handle(reader, writer, peer: Peer) -> None:
        await peer.read_request(reader)
        writer.write(fixture_bytes("epic-s19jpro_powerplay", "summary"))
        await writer.drain()
        await hold_open(reader)

    peer = await peer_factory(handle)
    body = await client.http_get(peer.host, peer.port, "/summary", timeout=30)
    assert body["Software"] == "PowerPlay-BM v1.8.7"
    request = peer.requests[0]
    assert request.startswith(b"GET /summary HTTP/1.1\r\n")
    assert b"Connection: close" in request


async def test_http_get_chunked(peer_factory) -> None:
    peer = await peer_factory(fixed_reply(fixture_bytes("epic-s19jpro_powerplay", "capabilities")))
    assert (await client.http_get(peer.host, peer.port, "/capabilities"))["Model"] == "S19j Pro"


async def test_http_error_status_is_a_rejection(peer_factory) -> None:
    peer = await peer_factory(fixed_reply(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
    with pytest.raises(MinerCommandRejected) as info:
        await client.http_get(peer.host, peer.port, "/summary")
    assert info.value.code == 404


async def test_http_get_to_a_cgminer_port_is_malformed(peer_factory) -> None:
    peer = await peer_factory(fixed_reply(SUMMARY + b"\x00"))
    with pytest.raises(MinerMalformed):
        await client.http_get(peer.host, peer.port, "/summary")
