"""Helpers for the miner tests: real TCP peers on loopback addresses, recorded fixtures.

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
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from edge_agent.collectors.asic import client
from edge_agent.model import Reading
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

    async def start(self, host: str = "", port: int = 0) -> Peer:
        self.host = host or next_host()
        self._server = await asyncio.start_server(self._serve, self.host, port)
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


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_bytes(directory: str, command: str) -> bytes:
    return (FIXTURES / directory / f"{command}.txt").read_bytes()


def http_body(raw: bytes) -> bytes:
    """The body of a recorded HTTP reply (chunked transfer decoded)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    if b"chunked" in head.lower():
        out = bytearray()
        while True:
            size_line, _, rest = body.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                return bytes(out)
            out += rest[:size]
            body = rest[size + 2 :]
    return body


def fixture_replies(directory: str, *commands: str) -> dict[str, dict[str, Any]]:
    """Decoded replies as the protocol layer hands them to the parsers.

    A multi-command file (`summary+pools+stats`) is split into its parts;
    `http:/path` names load an ePIC HTTP capture.
    """
    out: dict[str, dict[str, Any]] = {}
    for command in commands:
        if command.startswith("http:/"):
            raw = http_body(fixture_bytes(directory, command[len("http:/") :]))
            out[command] = client.decode(raw, directory)
            continue
        raw = fixture_bytes(directory, command)
        out.update(client.split_replies(tuple(command.split("+")), client.decode(raw, directory), directory))
    return out


_INVALID = b'{"STATUS":[{"STATUS":"E","When":1,"Code":14,"Msg":"Invalid command","Description":"cgminer"}],"id":1}\x00'


def fixture_handler(directory: str) -> Handler:
    """A peer that answers each request with the recorded file for that command.

    Commands without a recording get cgminer's "Invalid command" reply, so a
    multi-command with no recording exercises the single-command fallback.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer) -> None:
        request = await peer.read_request(reader)
        if request.startswith(b"GET "):
            name = request.split(b" ", 2)[1].decode().lstrip("/")
        else:
            obj = orjson.loads(request)
            name = obj.get("command", obj.get("cmd", ""))
        path = FIXTURES / directory / f"{name}.txt"
        if path.exists():
            writer.write(path.read_bytes())
        elif request.startswith(b"GET "):
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        elif name == "version" and (FIXTURES / directory / "summary.txt").exists() and directory.startswith("epic"):
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        else:
            writer.write(_INVALID)
        await writer.drain()
        writer.close()

    return handle


def reading_map(readings: Iterable[Reading], miner: str = "m") -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Readings as {(key, labels after `miner`): value}, checking the miner label comes first."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for reading in readings:
        assert reading.labels[0] == ("miner", miner), reading
        key = (reading.key, reading.labels[1:])
        assert key not in out, f"duplicate reading {key}"
        out[key] = reading.value
    return out


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait for `condition` to hold, polling the event loop, failing after `within` seconds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (conditions on counters that have no event to wait on)
            await asyncio.sleep(0.005)
