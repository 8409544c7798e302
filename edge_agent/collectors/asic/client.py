"""The miner RPC client: bytes on a socket, read-only by construction.

Transport rules (cgminer serves one connection at a time and does a single
`recv()` of the request):
- one request per connection, sent in one write;
- the reply is read until EOF or the NUL terminator under ONE deadline that
  covers connect, write and read, and under a hard byte cap, so a miner that
  never answers or streams forever costs at most the deadline and the cap;
- the socket is closed on every path, cancellation included;
- every failure is classified (`MinerRefused`, `MinerTimeout`, ...) and raised
  `from` its cause.

Read-only: every command, and every `+`-joined part of a multi-command, must be
in `READ_COMMANDS`; every HTTP path must be in `HTTP_READ_PATHS` and the only
method is GET; Whatsminer API v3 requests must be `get.*` reads of the sections
in `_V3_PARAMS`. The check runs before a socket is opened, and there is no other
way to put bytes on the wire.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from contextvars import ContextVar, Token
from typing import Any, cast

import orjson

from edge_agent.collectors.asic import repair
from edge_agent.errors import CollectorError

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "HTTP_READ_PATHS",
    "READ_COMMANDS",
    "V3_PORT",
    "V3_READ_COMMANDS",
    "CommandNotAllowed",
    "MinerCommandRejected",
    "MinerError",
    "MinerMalformed",
    "MinerRefused",
    "MinerReset",
    "MinerResponseTooLarge",
    "MinerTimeout",
    "check_command",
    "check_http_path",
    "check_v3",
    "decode",
    "http_get",
    "query",
    "query_v3",
    "request",
    "split_replies",
    "status_of",
]

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 1 << 20
_READ_CHUNK = 1 << 16
_HEAD_BYTES = 200

# Commands that only read. cgminer's own read set (`iswritemode` false), plus the
# read commands of firmware that extend the API: bosminer (temps, fans,
# tunerstatus), LuxOS (power, profiles), btminer v2 (edevs, get_*, status).
# Anything else, privileged or unknown, is refused before a socket is opened.
READ_COMMANDS: frozenset[str] = frozenset(
    {
        # cgminer / bmminer
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
        # Braiins OS (bosminer / BOSer)
        "temps",
        "fans",
        "tunerstatus",
        # LuxOS
        "power",
        "profiles",
        # Whatsminer btminer API v2
        "status",
        "get_version",
        "get_miner_info",
        "get_psu",
        "get_error_code",
    }
)

# ePIC serves JSON over HTTP on the miner port; these GET paths only read.
HTTP_READ_PATHS: frozenset[str] = frozenset({"/summary", "/capabilities", "/hashrate", "/temps", "/fanspeed"})

# Whatsminer API v3 (btminer firmware from 2024-11, TCP 4433, length-prefixed JSON):
# only `get.*` reads, and only the sections that carry no secret (`salt` is left out:
# it exists to sign write commands).
V3_PORT = 4433
V3_READ_COMMANDS: frozenset[str] = frozenset({"get.miner.status", "get.device.info"})
_V3_PARAMS: dict[str, frozenset[str]] = {
    "get.miner.status": frozenset({"summary", "pools", "edevs"}),
    "get.device.info": frozenset({"miner", "system", "power", "network", "error-code"}),
}

# A parameter selects a device (`asc|0`); nothing a read command takes needs more.
_PARAMETER_RE = re.compile(r"^[0-9]{1,4}$")
_PARAMETER_COMMANDS = frozenset({"asc", "pga"})


class MinerError(CollectorError):
    """A request to one miner failed. `kind` is a short, stable name for logs and counters."""

    kind = "error"

    def __init__(self, miner: str, detail: str) -> None:
        self.miner = miner
        self.detail = detail
        super().__init__(f"{miner}: {self.kind}: {detail}")


class MinerRefused(MinerError):
    """Nothing listens on the port (connection refused or unreachable)."""

    kind = "refused"


class MinerTimeout(MinerError):
    """The request did not complete within its deadline."""

    kind = "timeout"


class MinerReset(MinerError):
    """The miner reset or broke the connection mid-request."""

    kind = "reset"


class MinerResponseTooLarge(MinerError):
    """The reply exceeded the byte cap (a miner streaming garbage or forever)."""

    kind = "too_large"


class MinerMalformed(MinerError):
    """The reply is not JSON even after the known repairs. `head` keeps its first bytes."""

    kind = "malformed"

    def __init__(self, miner: str, detail: str, raw: bytes = b"") -> None:
        self.head = bytes(raw[:_HEAD_BYTES])
        super().__init__(miner, detail)


class MinerCommandRejected(MinerError):
    """The miner answered with an error status (invalid command, access denied, ...)."""

    kind = "rejected"

    def __init__(self, miner: str, detail: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(miner, detail)


class CommandNotAllowed(MinerError):
    """The agent tried to send something that is not a read command. Nothing was sent."""

    kind = "not_allowed"


def check_command(command: str, parameter: str | None = None, *, miner: str = "") -> tuple[str, ...]:
    """Validate a (possibly `+`-joined) command against the read-only allowlist.

    Returns the parts. Raises `CommandNotAllowed` for anything not allowlisted,
    including a parameter on a multi-command or a parameter that is not a device
    index.
    """
    if not isinstance(command, str):
        raise CommandNotAllowed(miner, f"command must be a string, not {type(command).__name__}")
    parts = tuple(command.split("+"))
    for part in parts:
        if part not in READ_COMMANDS:
            raise CommandNotAllowed(miner, f"{command!r} is not a read command")
    if parameter is not None:
        if len(parts) != 1 or parts[0] not in _PARAMETER_COMMANDS:
            raise CommandNotAllowed(miner, f"{command!r} takes no parameter")
        if not isinstance(parameter, str) or not _PARAMETER_RE.match(parameter):
            raise CommandNotAllowed(miner, f"parameter {parameter!r} is not a device index")
    return parts


def check_http_path(path: str, *, miner: str = "") -> str:
    if not isinstance(path, str) or path not in HTTP_READ_PATHS:
        raise CommandNotAllowed(miner, f"GET {path!r} is not a read path")
    return path


def check_v3(command: str, param: str | None = None, *, miner: str = "") -> None:
    """Validate a Whatsminer API v3 request: a `get.*` read and `+`-joined read sections only."""
    if not isinstance(command, str) or command not in V3_READ_COMMANDS:
        raise CommandNotAllowed(miner, f"{command!r} is not a v3 read command")
    if param is None:
        return
    if not isinstance(param, str) or not all(part in _V3_PARAMS[command] for part in param.split("+")):
        raise CommandNotAllowed(miner, f"{command} param {param!r} is not a read section")


def _nul_end(buf: bytearray, start: int) -> int:
    """cgminer framing: the reply ends at a NUL byte (or at EOF)."""
    return buf.find(0, start)


class _Reply(asyncio.Protocol):
    """Collects one reply: sends the request on connect, resolves `done` at EOF or at the framing's end.

    A bare protocol rather than asyncio streams: a poll is one write and a few reads, and the
    StreamReader machinery (a coroutine resume per read, flow-control bookkeeping) was a third
    of the transport's CPU per poll at 10,000 miners (bench/poll.py).
    """

    __slots__ = ("buf", "done", "end", "max_bytes", "miner", "payload")

    def __init__(
        self,
        payload: bytes,
        end: Callable[[bytearray, int], int],
        max_bytes: int,
        miner: str,
        done: asyncio.Future[None],
    ) -> None:
        self.payload = payload
        self.end = end
        self.max_bytes = max_bytes
        self.miner = miner
        self.done = done
        self.buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: cast, never isinstance.
        cast(asyncio.Transport, transport).write(self.payload)

    def data_received(self, data: bytes) -> None:
        done = self.done
        if done.done():
            return
        buf = self.buf
        start = len(buf)
        buf += data
        try:
            stop = self.end(buf, start)
        except MinerError as exc:
            done.set_exception(exc)
            return
        if stop >= 0:
            del buf[stop:]
            done.set_result(None)
        elif len(buf) > self.max_bytes:
            done.set_exception(MinerResponseTooLarge(self.miner, f"reply exceeded {self.max_bytes} bytes"))

    def eof_received(self) -> bool:
        if not self.done.done():
            self.done.set_result(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)


# An overall deadline (event-loop time) across several requests, on top of each one's own timeout.
# The fleet sets one per poll so that identify + poll of a miner never take longer than an
# interval: a context variable read per request costs far less than a second timer per poll.
_DEADLINE: ContextVar[float | None] = ContextVar("asic_overall_deadline", default=None)


def set_deadline(at: float | None) -> Token[float | None]:
    """Make every request of the current task end by `at` (loop.time()) at the latest."""
    return _DEADLINE.set(at)


def reset_deadline(token: Token[float | None]) -> None:
    _DEADLINE.reset(token)


async def _exchange(
    host: str,
    port: int,
    payload: bytes,
    *,
    timeout: float,  # noqa: ASYNC109 (a per-request deadline, applied inside with asyncio.timeout)
    max_bytes: int,
    end: Callable[[bytearray, int], int],
) -> bytes:
    """Connect, send `payload` in one write, read until EOF or `end` finds the end.

    One deadline covers the whole exchange. The transport is aborted on every
    failure path (cancellation included) and closed after a complete reply.
    """
    miner = f"{host}:{port}"
    loop = asyncio.get_running_loop()
    start = loop.time()
    end_at = start + timeout
    overall = _DEADLINE.get()
    if overall is not None and overall < end_at:
        end_at = overall
    done: asyncio.Future[None] = loop.create_future()
    transport: asyncio.BaseTransport | None = None
    complete = False
    try:
        async with asyncio.timeout_at(end_at):
            transport, reply = await loop.create_connection(
                lambda: _Reply(payload, end, max_bytes, miner, done), host, port
            )
            await done
            buf = reply.buf
            if len(buf) > max_bytes:
                raise MinerResponseTooLarge(miner, f"reply exceeded {max_bytes} bytes")
            complete = True
            return bytes(buf)
    except TimeoutError as exc:
        raise MinerTimeout(miner, f"no complete reply within {max(end_at - start, 0.0):.3g}s") from exc
    except ConnectionRefusedError as exc:
        raise MinerRefused(miner, "connection refused") from exc
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
        raise MinerReset(miner, str(exc) or type(exc).__name__) from exc
    except MinerError:
        raise
    except OSError as exc:
        # Unreachable host, no route, address not available: nothing answers there.
        raise MinerRefused(miner, str(exc) or type(exc).__name__) from exc
    finally:
        if not done.done():
            done.cancel()
        if transport is not None:
            if complete:
                transport.close()
            else:
                cast(asyncio.Transport, transport).abort()


def _payload(command: str, parameter: str | None) -> bytes:
    if parameter is None:
        return orjson.dumps({"command": command})
    return orjson.dumps({"command": command, "parameter": parameter})


async def request(
    host: str,
    port: int,
    command: str,
    *,
    parameter: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-request deadline, applied inside with asyncio.timeout)
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """Send one allowlisted command (JSON form) and return the raw reply bytes, NUL stripped."""
    check_command(command, parameter, miner=f"{host}:{port}")
    return await _exchange(host, port, _payload(command, parameter), timeout=timeout, max_bytes=max_bytes, end=_nul_end)


def decode(raw: bytes, miner: str) -> dict[str, Any]:
    """Parse a reply into a dict, repairing known firmware faults; MinerMalformed otherwise."""
    if not raw.strip(b"\x00 \t\r\n"):
        raise MinerMalformed(miner, "empty reply", raw)
    try:
        data = repair.loads(raw)
    except repair.BeyondRepair as exc:
        raise MinerMalformed(miner, f"not JSON: {exc}", raw) from exc
    if not isinstance(data, dict):
        raise MinerMalformed(miner, f"reply is a JSON {type(data).__name__}, not an object", raw)
    return data


def status_of(reply: dict[str, Any]) -> tuple[str, str, int | None]:
    """The (letter, message, code) of a reply's STATUS.

    cgminer sends `STATUS` as a one-element list of objects; btminer's `get_*`
    and error replies send it as a bare string with `Msg`/`Code` beside it.
    A reply without STATUS counts as success (`"S"`).
    """
    status = reply.get("STATUS")
    if isinstance(status, list) and status and isinstance(status[0], dict):
        head = status[0]
        letter, msg, code = head.get("STATUS"), head.get("Msg"), head.get("Code")
    elif isinstance(status, str):
        letter, msg, code = status, reply.get("Msg"), reply.get("Code")
    else:
        return "S", "", None
    return (
        letter if isinstance(letter, str) else "S",
        msg if isinstance(msg, str) else "",
        code if isinstance(code, int) and not isinstance(code, bool) else None,
    )


def _failed(reply: dict[str, Any]) -> tuple[str, int | None] | None:
    letter, msg, code = status_of(reply)
    if letter in ("E", "F"):
        return msg or "error status", code
    return None


async def query(
    host: str,
    port: int,
    commands: str | Iterable[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-request deadline, applied inside with asyncio.timeout)
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, dict[str, Any]]:
    """Send one (multi-)command and return `{command: reply}` for the parts that succeeded.

    A single command that the miner rejects raises `MinerCommandRejected`. For a
    multi-command, a firmware that rejects `+` as a whole raises
    `MinerCommandRejected` (the caller falls back to single commands); a part
    rejected on its own is left out of the result while the others are kept,
    and if every part was rejected the call raises.
    """
    miner = f"{host}:{port}"
    joined = commands if isinstance(commands, str) else "+".join(commands)
    parts = check_command(joined, miner=miner)
    raw = await _exchange(host, port, _payload(joined, None), timeout=timeout, max_bytes=max_bytes, end=_nul_end)
    return split_replies(parts, decode(raw, miner), miner)


def split_replies(parts: tuple[str, ...], reply: dict[str, Any], miner: str = "") -> dict[str, dict[str, Any]]:
    """`{command: reply}` from the decoded reply to `"+".join(parts)` (see `query` for the rules)."""
    joined = "+".join(parts)
    if len(parts) == 1:
        failure = _failed(reply)
        if failure is not None:
            raise MinerCommandRejected(miner, f"{joined}: {failure[0]}", failure[1])
        return {joined: reply}
    if "STATUS" in reply:
        # The multi-command itself was refused (some S19 firmware, btminer for get_*).
        failure = _failed(reply) or ("multi-command not supported", None)
        raise MinerCommandRejected(miner, f"{joined}: {failure[0]}", failure[1])
    out: dict[str, dict[str, Any]] = {}
    rejected: list[str] = []
    for part in parts:
        inner = reply.get(part)
        if isinstance(inner, list) and inner and isinstance(inner[0], dict):
            inner = inner[0]
        if not isinstance(inner, dict) or _failed(inner) is not None:
            rejected.append(part)
            continue
        out[part] = inner
    if not out:
        raise MinerCommandRejected(miner, f"{joined}: every command rejected")
    if rejected:
        log.debug("%s: %s rejected within %s", miner, ",".join(rejected), joined)
    return out


def _v3_frames(buf: bytearray | bytes) -> tuple[int, int]:
    """(offset, length) of the first non-empty v3 frame, skipping zero-length heartbeats.

    Length is -1 while the 4-byte prefix has not fully arrived.
    """
    pos = 0
    while len(buf) - pos >= 4:
        length = int.from_bytes(buf[pos : pos + 4], "little")
        if length:
            return pos + 4, length
        pos += 4
    return pos, -1


async def query_v3(
    host: str,
    port: int,
    command: str,
    param: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-request deadline, applied inside with asyncio.timeout)
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, Any]:
    """One Whatsminer API v3 read: a 4-byte little-endian length then JSON, each way.

    Returns the reply (`code`, `when`, `msg`, `desc`); a non-zero `code` raises
    `MinerCommandRejected`. The v3 server keeps connections open; the client
    closes after one reply.
    """
    miner = f"{host}:{port}"
    check_v3(command, param, miner=miner)
    body = orjson.dumps({"cmd": command} if param is None else {"cmd": command, "param": param})

    def end(buf: bytearray, start: int) -> int:
        offset, length = _v3_frames(buf)
        if length < 0:
            return -1
        if length > max_bytes:
            raise MinerResponseTooLarge(miner, f"v3 frame announces {length} bytes (cap {max_bytes})")
        return offset + length if len(buf) >= offset + length else -1

    frame = len(body).to_bytes(4, "little") + body
    raw = await _exchange(host, port, frame, timeout=timeout, max_bytes=max_bytes, end=end)
    offset, length = _v3_frames(raw)
    if length < 0 or len(raw) < offset + length:
        raise MinerMalformed(miner, "connection closed inside a v3 frame", raw)
    reply = decode(raw[offset : offset + length], miner)
    code = reply.get("code")
    if code != 0:
        msg = reply.get("msg")
        raise MinerCommandRejected(
            miner,
            f"{command}: {msg if isinstance(msg, str) else 'code ' + str(code)}",
            code if isinstance(code, int) else None,
        )
    return reply


def _http_end(buf: bytearray, start: int) -> int:
    """HTTP framing: the end is header + Content-Length when given, else EOF."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return -1
    match = re.search(rb"(?im)^content-length:[ \t]*([0-9]+)[ \t]*\r?$", bytes(buf[:head_end]))
    if match is None:
        return -1
    total = head_end + 4 + int(match.group(1))
    return total if len(buf) >= total else -1


def _dechunk(body: bytes, miner: str) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            raise MinerMalformed(miner, "truncated chunked body", body)
        try:
            size = int(body[pos:line_end].split(b";", 1)[0], 16)
        except ValueError as exc:
            raise MinerMalformed(miner, "bad chunk size", body) from exc
        if size == 0:
            return bytes(out)
        start = line_end + 2
        out += body[start : start + size]
        pos = start + size + 2


async def http_get(
    host: str,
    port: int,
    path: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-request deadline, applied inside with asyncio.timeout)
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, Any]:
    """GET an allowlisted path from a miner's HTTP API (ePIC) and return the JSON body."""
    miner = f"{host}:{port}"
    check_http_path(path, miner=miner)
    payload = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    raw = await _exchange(host, port, payload, timeout=timeout, max_bytes=max_bytes, end=_http_end)
    head, sep, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    fields = status_line.split(b" ", 2)
    if not sep or len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
        raise MinerMalformed(miner, "not an HTTP reply", raw)
    code = int(fields[1])
    if code != 200:
        raise MinerCommandRejected(miner, f"GET {path}: HTTP {code}", code)
    if re.search(rb"(?im)^transfer-encoding:[ \t]*chunked", head):
        body = _dechunk(body, miner)
    return decode(body, miner)
