"""One-shot discovery for `edge-agent scan`: probe every address, identify and read what answers.

The fleet's periodic scans run inside its scheduler (fleet.py) so they share the
poll budget; this is the standalone version for the command line, with the same
rule: never more than `concurrency` sockets open, one at a time per miner.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge_agent.collectors.asic import miner as miner_api
from edge_agent.collectors.asic.client import V3_PORT, MinerError, MinerRefused, MinerTimeout
from edge_agent.config import AsicTarget
from edge_agent.model import Reading

Progress = Callable[[int, int, int], None]
"""Called with (addresses probed, addresses in total, miners found)."""


@dataclass(frozen=True, slots=True)
class Found:
    """A miner that answered identification, with what one poll read (or why it failed)."""

    host: str
    port: int
    make: str = ""
    model: str = ""
    firmware: str = ""
    mac: str = ""
    serial: str = ""
    readings: tuple[Reading, ...] = ()
    error: str = ""
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def miner(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def value(self, key: str) -> float | None:
        """The first reading named `key`, or None when the miner did not report it."""
        for r in self.readings:
            if r.key == key:
                return r.value
        return None

    def max_value(self, key: str) -> float | None:
        values = [r.value for r in self.readings if r.key == key]
        return max(values) if values else None


def addresses(targets: Sequence[AsicTarget]) -> Iterator[tuple[str, int]]:
    """Every (address, port) the targets name, each once, in order, first and last of a range included.

    Sites number miners from .0 on /23s and larger, and a probe of a broadcast
    address fails at once (EACCES), so nothing is skipped. An address that an
    earlier target with the same port already covers is skipped without keeping
    a set (a /12 would need 1M entries): overlapping targets would otherwise
    probe one miner twice, possibly at the same time.
    """
    for j, target in enumerate(targets):
        net = target.network
        earlier = [t.network for t in targets[:j] if t.port == target.port and t.network.version == net.version]
        first = int(net.network_address)
        cls = type(net.network_address)
        for i in range(net.num_addresses):
            address = cls(first + i)
            if earlier and any(address in e for e in earlier):
                continue
            yield (str(address), target.port)


def count_addresses(targets: Sequence[AsicTarget]) -> int:
    """How many addresses `addresses()` yields at most (overlaps counted twice)."""
    return sum(t.network.num_addresses for t in targets)


async def listening(host: str, port: int, *, timeout: float) -> bool:  # noqa: ASYNC109
    """Whether something accepts a TCP connection at host:port within `timeout`. Sends nothing."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (host, port))
    except (OSError, TimeoutError):
        return False
    finally:
        sock.close()
    return True


def connected(exc: BaseException) -> bool:
    """Whether the failed request got as far as a TCP connection (something listens there).

    A client error may say so itself (`connected`); otherwise the kinds that
    need a connection to happen (a bad, oversized or reset reply, a rejected
    command) count as connected, and refusals and timeouts do not: a timeout
    may be a connect that never completed, the usual answer of an empty address.
    """
    flag = getattr(exc, "connected", None)
    if isinstance(flag, bool):
        return flag
    return isinstance(exc, MinerError) and exc.kind in _CONNECTED_KINDS


_CONNECTED_KINDS = frozenset({"malformed", "too_large", "reset", "rejected"})


async def reachable(exc: BaseException, host: str, port: int, *, timeout: float) -> bool:  # noqa: ASYNC109
    """Whether the request that failed with `exc` reached something listening at host:port.

    A timeout does not say whether the TCP connect completed: a hung miner
    accepts and never answers, an empty address never accepts. A bare connect
    (nothing sent, so nothing a miner could act on) tells them apart, at the
    cost of one short extra attempt, after a timeout only.
    """
    if connected(exc):
        return True
    if isinstance(exc, MinerRefused) and port != V3_PORT:
        # identify() tries Whatsminer API v3 on 4433 when the cgminer port refuses, and reports a
        # failure there as the refusal: a v3 miner that accepts on 4433 but fails is still there.
        return await listening(host, V3_PORT, timeout=timeout)
    if not isinstance(exc, TimeoutError | MinerTimeout):
        return False
    return await listening(host, port, timeout=timeout)


def _info_field(info: Any, name: str) -> str:
    value = getattr(info, name, None)
    return str(value) if value else ""


async def _one(host: str, port: int, *, request_timeout: float, max_bytes: int) -> Found | None:
    try:
        profile = await miner_api.identify(host, port, timeout=request_timeout, max_bytes=max_bytes)
    except (MinerError, TimeoutError, OSError) as exc:
        if await reachable(exc, host, port, timeout=min(request_timeout, 1.0)):
            # Something listens on the miner port but does not answer the API: worth listing.
            return Found(host, port, error=exc.kind if isinstance(exc, MinerError) else "timeout")
        return None
    try:
        result = await miner_api.poll(host, port, profile, timeout=request_timeout, max_bytes=max_bytes)
    except (MinerError, TimeoutError, OSError) as exc:
        kind = exc.kind if isinstance(exc, MinerError) else "timeout" if isinstance(exc, TimeoutError) else "error"
        return Found(
            host,
            port,
            make=_info_field(profile, "make"),
            model=_info_field(profile, "model"),
            firmware=_info_field(profile, "firmware"),
            error=kind,
        )
    info = getattr(result, "info", None)
    return Found(
        host,
        port,
        make=_info_field(info, "make") or _info_field(profile, "make"),
        model=_info_field(info, "model") or _info_field(profile, "model"),
        firmware=_info_field(info, "firmware") or _info_field(profile, "firmware"),
        mac=_info_field(info, "mac"),
        serial=_info_field(info, "serial"),
        readings=tuple(result.readings),
    )


async def scan(
    targets: Sequence[AsicTarget],
    *,
    request_timeout: float,
    concurrency: int,
    max_bytes: int,
    progress: Progress | None = None,
) -> list[Found]:
    """Probe every address of `targets`; return the miners that answered, in address order."""
    total = count_addresses(targets)
    items = addresses(targets)
    found: list[Found] = []
    done = 0

    async def worker() -> None:
        nonlocal done
        # Workers share one iterator: each holds at most one socket, so `concurrency` workers
        # never hold more than `concurrency` sockets.
        for host, port in items:
            result = await _one(host, port, request_timeout=request_timeout, max_bytes=max_bytes)
            done += 1
            if result is not None:
                found.append(result)
            if progress is not None:
                progress(done, total, len(found))

    async with asyncio.TaskGroup() as tg:
        for i in range(max(1, min(concurrency, total))):
            tg.create_task(worker(), name=f"asic-scan-{i}")
    found.sort(key=lambda f: (ipaddress.ip_address(f.host), f.port))
    return found
