"""A simulated miner fleet: one cgminer-style TCP listener per miner on loopback addresses.

Miner i listens on `base + i` (Linux routes all of 127.0.0.0/8 to `lo`, so any
127.x address can be bound without setup), port 4028 by default. Each miner
serves one connection at a time, as cgminer does: a second connection is
accepted by the kernel but waits until the first is answered and closed. The
reply bytes come from `edge_agent.sim.firmwares.respond`, quirks included.

Cost matters: benchmarks run 10,000 miners in one process next to the agent on a
2-core host. So there is no `asyncio.Server` per miner: each miner is one
non-blocking listening socket with a reader callback on the event loop, and a
coroutine exists only while a connection is being served. Measured on the
development host (2 cores, Python 3.11, uvloop, 2026-11): `edge-agent simulate
--count 10000 --faults 0.1` holds one descriptor per listening miner (9,845)
and 60 MB RSS, and serves 10,000 miners polled every 30 s with about 8 % of
one core.

Faults are injected per miner (see `FAULT_KINDS`); every counter a test needs
(connections accepted, replies served, the most connections open at once across
the fleet and on one miner) is kept as a plain integer, so memory stays flat no
matter how long the fleet runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from edge_agent.collectors.asic.limits import raise_nofile_limit
from edge_agent.sim import firmwares

log = logging.getLogger(__name__)

FAULT_KINDS: tuple[str, ...] = ("refused", "blackhole", "garbage", "endless", "slow", "sleeping")
"""refused: no listener (connection refused). blackhole: accepts, reads, never answers.
garbage: answers random bytes. endless: streams bytes forever, never a NUL.
slow: answers correctly after `slow_delay` seconds. sleeping: answers correctly, not hashing."""

DEFAULT_PORT = 4028
V3_PORT = 4433
SIM_FIRMWARES: tuple[str, ...] = (*firmwares.FIRMWARES, *firmwares.V3_FIRMWARES)
"""Every firmware the fleet can simulate: the cgminer-port ones and Whatsminer API v3 (on 4433)."""
# cgminer reads a request with a single recv() into a buffer of about this size.
_RECV_BYTES = 4096
# Like a listen() backlog: connections beyond this many waiting on one busy miner are dropped.
_PENDING_MAX = 16
# A client that connects and never sends a request is dropped after this long (cgminer does the same
# with its socket timeout); a blackhole holds a connection at most this long after the client's request.
_IDLE_SECONDS = 30.0
_HOLD_SECONDS = 600.0
_ENDLESS_CHUNK = b'{"STATUS":[{"STATUS":"S","When":0,"Code":70,"Msg":"CGMiner stats"}],"STATS":[' + b"1," * 4000


class SimMiner:
    """One simulated miner: its identity, its state, its fault, and what it has seen."""

    __slots__ = (
        "accepted",
        "address",
        "busy",
        "current",
        "evolved_at",
        "fault",
        "firmware",
        "index",
        "listen_port",
        "max_open",
        "open_now",
        "pending",
        "port",
        "served",
        "sock",
        "state",
    )

    def __init__(self, index: int, address: str, port: int, *, firmware: str, fault: str | None, state: Any) -> None:
        self.index = index
        self.address = address
        self.port = port
        # Whatsminer API v3 firmware listens on 4433 instead; the miner is still known (and found by a
        # scan of port 4028, whose refusal makes the agent try 4433) as "ip:4028".
        self.listen_port = V3_PORT if firmware in firmwares.V3_FIRMWARES else port
        self.firmware = firmware
        self.fault = fault
        self.state = state
        self.sock: socket.socket | None = None
        self.busy = False
        self.current: socket.socket | None = None
        self.pending: deque[socket.socket] = deque()
        self.evolved_at = time.monotonic()
        self.accepted = 0  # connections accepted (attempts that reached a listener)
        self.served = 0  # complete replies sent
        self.open_now = 0
        self.max_open = 0  # most connections open to this miner at once; > 1 means a client broke the rule

    @property
    def key(self) -> str:
        """The device id the agent uses for this miner: "ip:port"."""
        return f"{self.address}:{self.port}"

    def manifest(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "address": self.address,
            "port": self.port,
            "listen_port": self.listen_port,
            "miner": self.key,
            "firmware": self.firmware,
            "fault": self.fault,
        }


def covering_network(first: str, count: int) -> ipaddress.IPv4Network:
    """The smallest CIDR range that holds `count` addresses from `first`."""
    start = ipaddress.IPv4Address(first)
    last = start + max(count, 1) - 1
    prefix = 32
    while True:
        net = ipaddress.IPv4Network((int(start) & ~((1 << (32 - prefix)) - 1) & 0xFFFFFFFF, prefix))
        if last in net:
            return net
        prefix -= 1


class SimFleet:
    """`count` simulated miners on `base`, `base + 1`, ... with a seeded mix of firmware and faults.

    Use in-process (`await fleet.start()`, then `fleet.miners`, `fleet.state_of(...)`,
    `await fleet.stop()`) or through `edge-agent simulate`.

    `faults` is the fraction of miners given a fault, spread round-robin over
    `fault_kinds` so every kind appears; `fault_map` sets the fault of given
    indexes exactly (it wins over `faults`). `slow_delay` is how long a `slow`
    miner waits before answering. The state a miner serves changes a little
    (hashrate jitter, share counters grow) at most once per `evolve_interval`
    seconds; 0 freezes it so tests can compare exactly, and `freeze()` does the
    same at run time.
    """

    def __init__(
        self,
        count: int,
        *,
        base: str = "127.11.0.0",
        port: int = DEFAULT_PORT,
        seed: int = 1,
        faults: float = 0.0,
        fault_kinds: Sequence[str] = FAULT_KINDS,
        fault_map: Mapping[int, str | None] | None = None,
        firmware_names: Sequence[str] | None = None,
        slow_delay: float = 10.0,
        evolve_interval: float = 5.0,
    ) -> None:
        if count < 0:
            raise ValueError("count must be >= 0")
        if not 0.0 <= faults <= 1.0:
            raise ValueError("faults must be a fraction from 0 to 1")
        for kind in list(fault_kinds) + [k for k in (fault_map or {}).values() if k is not None]:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
        self.base = ipaddress.IPv4Address(base)
        if not self.base.is_loopback:
            raise ValueError(f"base {base} is not a loopback (127.0.0.0/8) address")
        if self.base + max(count, 1) - 1 not in ipaddress.IPv4Network("127.0.0.0/8"):
            raise ValueError("the fleet does not fit in 127.0.0.0/8")
        self.port = port
        self.seed = seed
        self.slow_delay = slow_delay
        self.evolve_interval = evolve_interval
        self.recorder = firmwares.Recorder()
        known = SIM_FIRMWARES
        self._names = list(firmware_names) if firmware_names else list(known)
        for name in self._names:
            if name not in known:
                raise ValueError(f"unknown firmware {name!r} (known: {', '.join(known)})")
        self._rng = random.Random(seed)
        self._kinds = list(fault_kinds)
        self.miners: list[SimMiner] = []
        self._by_key: dict[str, SimMiner] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._frozen = evolve_interval <= 0
        self._open: set[socket.socket] = set()
        self.peak_open = 0  # most client connections open at once across the whole fleet

        fault_of: dict[int, str | None] = {}
        n_faulty = round(count * faults)
        if n_faulty and self._kinds:
            chosen = sorted(self._rng.sample(range(count), n_faulty))
            for j, i in enumerate(chosen):
                fault_of[i] = self._kinds[j % len(self._kinds)]
        fault_of.update(fault_map or {})
        for i in range(count):
            self._make_miner(i, self._firmware_for(i), fault_of.get(i))

    def _firmware_for(self, index: int) -> str:
        # A shuffled round-robin: every firmware appears in every block of len(names) miners.
        block, pos = divmod(index, len(self._names))
        order = list(self._names)
        random.Random(self.seed * 7919 + block).shuffle(order)
        return order[pos]

    def _make_miner(self, index: int, firmware: str, fault: str | None) -> SimMiner:
        address = str(self.base + index)
        # A Random per miner only while building its state: kept, 10,000 of them would cost 25 MB.
        state = firmwares.random_state(firmware, random.Random(self.seed * 1_000_003 + index), index)
        if fault == "sleeping":
            state = firmwares.asleep(state)
        miner = SimMiner(index, address, self.port, firmware=firmware, fault=fault, state=state)
        self.miners.append(miner)
        self._by_key[miner.key] = miner
        return miner

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> SimFleet:
        """Bind every miner's listener. Raises OSError if an address is taken."""
        self._loop = asyncio.get_running_loop()
        raise_nofile_limit(len(self.miners) + 64)
        try:
            for miner in self.miners:
                if miner.fault != "refused":
                    self._listen(miner)
        except BaseException:
            await self.stop()
            raise
        log.info("simulated fleet of %d miners on %s port %d", len(self.miners), self.network, self.port)
        return self

    async def stop(self) -> None:
        for miner in self.miners:
            self._unlisten(miner)
            while miner.pending:
                self._close(miner, miner.pending.popleft())
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> SimFleet:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def network(self) -> ipaddress.IPv4Network:
        """The smallest CIDR range covering every miner: what to point the agent at."""
        return covering_network(str(self.base), len(self.miners))

    # -- what tests look at ------------------------------------------------------------------------

    def miner(self, key: str) -> SimMiner:
        """The miner at "ip:port" (or "ip" on the fleet's port)."""
        return self._by_key[key if ":" in key else f"{key}:{self.port}"]

    def state_of(self, key: str) -> Any:
        """The state the miner at `key` serves right now (the one its last reply came from)."""
        return self.miner(key).state

    def manifest(self) -> list[dict[str, Any]]:
        return [m.manifest() for m in self.miners]

    def freeze(self) -> None:
        """Stop state evolution: from now on every reply comes from the same state."""
        self._frozen = True

    def thaw(self) -> None:
        self._frozen = self.evolve_interval <= 0

    def reset_counters(self) -> None:
        self.peak_open = self.open_now
        for miner in self.miners:
            miner.accepted = miner.served = 0
            miner.max_open = miner.open_now

    # -- changing the fleet at run time ------------------------------------------------------------

    def add_miner(self, firmware: str | None = None, fault: str | None = None) -> SimMiner:
        """Add a miner at the next address and start it (the fleet must be started)."""
        index = len(self.miners)
        miner = self._make_miner(index, firmware or self._firmware_for(index), fault)
        if self._loop is not None and fault != "refused":
            self._listen(miner)
        return miner

    def set_fault(self, key: str, fault: str | None) -> None:
        """Change a miner's fault now: `refused` closes its listener, anything else opens it."""
        if fault is not None and fault not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault!r}")
        miner = self.miner(key)
        was_sleeping = miner.fault == "sleeping"
        miner.fault = fault
        if fault == "sleeping" and not was_sleeping:
            miner.state = firmwares.asleep(miner.state)
        elif was_sleeping and fault != "sleeping":
            miner.state = firmwares.random_state(miner.firmware, random.Random(self.seed + miner.index), miner.index)
        if fault == "refused":
            self._unlisten(miner)
        elif miner.sock is None and self._loop is not None:
            self._listen(miner)

    def replace_miner(self, key: str, firmware: str) -> SimMiner:
        """Swap the machine at `key` for a new one of `firmware` (a different MAC and serial)."""
        miner = self.miner(key)
        if firmware not in SIM_FIRMWARES:
            raise ValueError(f"unknown firmware {firmware!r}")
        self._unlisten(miner)
        miner.firmware = firmware
        miner.listen_port = V3_PORT if firmware in firmwares.V3_FIRMWARES else miner.port
        miner.state = firmwares.random_state(firmware, random.Random(self.seed * 31 + miner.index + 1), miner.index)
        miner.fault = None
        if miner.sock is None and self._loop is not None:
            self._listen(miner)
        return miner

    # -- serving -----------------------------------------------------------------------------------

    def _listen(self, miner: SimMiner) -> None:
        assert self._loop is not None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((miner.address, miner.listen_port))
            sock.listen(_PENDING_MAX)
            sock.setblocking(False)
            self._loop.add_reader(sock.fileno(), self._on_accept, miner)
        except BaseException:
            sock.close()
            raise
        miner.sock = sock

    def _unlisten(self, miner: SimMiner) -> None:
        if miner.sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(miner.sock.fileno())
        miner.sock.close()
        miner.sock = None

    def _on_accept(self, miner: SimMiner) -> None:
        if miner.sock is None:
            return
        for _ in range(_PENDING_MAX):
            try:
                conn, _peer = miner.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("%s: accept failed: %s", miner.key, exc)
                return
            conn.setblocking(False)
            miner.accepted += 1
            self._count_open(miner, conn)
            if miner.busy:
                if len(miner.pending) >= _PENDING_MAX:
                    self._close(miner, conn)
                else:
                    miner.pending.append(conn)
                continue
            miner.busy = True
            assert self._loop is not None
            task = self._loop.create_task(self._serve(miner, conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _count_open(self, miner: SimMiner, conn: socket.socket) -> None:
        """Update the peak counters for a newly accepted connection.

        The counts are what the client has open: a connection the client has
        already closed but whose EOF this loop has not processed yet (a blackhole
        miner's, say) is not counted, or the peak would depend on callback order.
        """
        self._open.add(conn)
        miner.open_now += 1
        if len(self._open) > self.peak_open:
            self.peak_open = max(self.peak_open, sum(1 for c in self._open if _client_open(c)))
        if miner.open_now > max(miner.max_open, 1):
            conns = [*miner.pending, conn] + ([miner.current] if miner.current is not None else [])
            miner.max_open = max(miner.max_open, sum(1 for c in conns if _client_open(c)))
        miner.max_open = max(miner.max_open, 1)

    @property
    def open_now(self) -> int:
        return len(self._open)

    def _close(self, miner: SimMiner, conn: socket.socket) -> None:
        conn.close()
        if conn is miner.current:
            miner.current = None
        self._open.discard(conn)
        miner.open_now -= 1

    async def _serve(self, miner: SimMiner, conn: socket.socket) -> None:
        """Serve `conn`, then each connection that queued behind it, one at a time."""
        try:
            while True:
                miner.current = conn
                try:
                    await self._serve_one(miner, conn)
                except (OSError, TimeoutError):
                    pass  # the client went away or idled out: exactly what real miners see
                finally:
                    self._close(miner, conn)
                if not miner.pending:
                    break
                conn = miner.pending.popleft()
        finally:
            miner.busy = False

    async def _serve_one(self, miner: SimMiner, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(_IDLE_SECONDS):
            request = await loop.sock_recv(conn, _RECV_BYTES)
        if not request:
            return
        fault = miner.fault
        if fault == "blackhole":
            async with asyncio.timeout(_HOLD_SECONDS):
                while await loop.sock_recv(conn, _RECV_BYTES):
                    pass
            return
        if fault == "garbage":
            await loop.sock_sendall(conn, self._rng.randbytes(self._rng.randrange(64, 2048)))
            return
        if fault == "endless":
            # Valid-looking JSON that never ends and never sends the NUL terminator.
            async with asyncio.timeout(_HOLD_SECONDS):
                while True:
                    await loop.sock_sendall(conn, _ENDLESS_CHUNK)
        if fault == "slow":
            await asyncio.sleep(self.slow_delay)
        reply = self._reply(miner, request)
        await loop.sock_sendall(conn, reply)
        miner.served += 1
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)

    def _reply(self, miner: SimMiner, request: bytes) -> bytes:
        if not self._frozen:
            now = time.monotonic()
            if now - miner.evolved_at >= self.evolve_interval:
                miner.evolved_at = now
                miner.state = firmwares.evolve(miner.state, self._rng)
        return firmwares.respond(miner.state, request, self.recorder)


_TCP_ESTABLISHED = 1


def _client_open(conn: socket.socket) -> bool:
    """False once the client has closed its end or the connection failed.

    The kernel's TCP state says it even when the client's request is still
    unread (a connection queued behind a busy miner whose client gave up):
    after the client's FIN the state is CLOSE_WAIT, after a reset CLOSE.
    """
    try:
        info = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
    except OSError:
        return False
    return info[0] == _TCP_ESTABLISHED


def fleet_summary(fleet: SimFleet) -> dict[str, int]:
    """Miners per fault kind ("ok" for none): for the CLI and benchmarks."""
    out: dict[str, int] = {}
    for m in fleet.miners:
        out[m.fault or "ok"] = out.get(m.fault or "ok", 0) + 1
    return out


__all__ = [
    "DEFAULT_PORT",
    "FAULT_KINDS",
    "SIM_FIRMWARES",
    "V3_PORT",
    "SimFleet",
    "SimMiner",
    "covering_network",
    "fleet_summary",
    "raise_nofile_limit",
]
