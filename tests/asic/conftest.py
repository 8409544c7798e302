"""Real TCP peers on loopback addresses for the miner client tests.

`Peer` is a listening socket on 127.0.0.x whose behaviour per connection is a
coroutine (answer, never answer, stream forever, reset...). It counts the
connections it accepted and keeps the bytes each one sent, so a test can assert
that nothing reached it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from edge_agent.sim import firmwares

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Peer"], Awaitable[None]]

_HOSTS = itertools.count(10)


def next_host() -> str:
    """A fresh 127.0.0.x address per peer so that tests never share a listener."""
    n = next(_HOSTS)
    return f"127.0.{n // 250}.{n % 250 + 2}"


class Peer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.host = ""
        self.port = 0
        self.closed = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def start(self) -> Peer:
        self.host = next_host()
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()
            self.closed.set()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        # cgminer does a single recv() of the request.
        data = await reader.read(4096)
        self.requests.append(data)
        return data

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


@pytest.fixture
async def peer_factory() -> AsyncIterator[Callable[[Handler], Awaitable[Peer]]]:
    peers: list[Peer] = []

    async def make(handler: Handler) -> Peer:
        peer = await Peer(handler).start()
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        await peer.aclose()


def sim_handler(state: firmwares.MinerState, recorder: firmwares.Recorder) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer) -> None:
        request = await peer.read_request(reader)
        writer.write(firmwares.respond(state, request, recorder))
        await writer.drain()
        writer.close()

    return handle


def fixed_reply(data: bytes) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer) -> None:
        await peer.read_request(reader)
        writer.write(data)
        await writer.drain()
        writer.close()

    return handle


def refused_address() -> tuple[str, int]:
    """An address and port with nothing listening (bound then closed)."""
    host = next_host()
    with socket.socket() as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    return host, port


def reset_socket(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0) instead of FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
