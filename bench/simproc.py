"""A simulated miner fleet in a child process, so its CPU is never counted as the agent's.

Used by bench/poll.py and bench/fleet.py:

    with SimProcess(10_000, faults=0.1, ...) as sim:
        sim.network, sim.manifest          # where to point the agent, who is faulty
        sim.mark()                         # start a coverage window now
        sim.coverage(interval)             # per healthy miner: polls and longest gap since mark()

The child runs `edge_agent.sim.server.SimFleet` under uvloop and records, per
miner, when it served a reply. A poll of one miner is one or a few requests
within milliseconds, so replies closer than `_SAME_POLL` seconds count as one
poll. Only counters and two floats per miner are kept: memory stays flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from typing import Any

from edge_agent.sim.server import FAULT_KINDS, SimFleet, SimMiner

_SAME_POLL = 1.0


class _RecordingFleet(SimFleet):
    """SimFleet that remembers when each miner last answered and its longest gap between polls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        n = len(self.miners)
        self.mark_at = time.monotonic()
        self.last = [self.mark_at] * n
        self.polls = [0] * n
        self.gap = [0.0] * n

    def mark(self) -> None:
        now = time.monotonic()
        self.mark_at = now
        self.last = [now] * len(self.miners)
        self.polls = [0] * len(self.miners)
        self.gap = [0.0] * len(self.miners)

    def _reply(self, miner: SimMiner, request: bytes) -> bytes:
        now = time.monotonic()
        i = miner.index
        since = now - self.last[i]
        if since >= _SAME_POLL or self.polls[i] == 0:
            self.polls[i] += 1
            if since > self.gap[i]:
                self.gap[i] = since
        self.last[i] = now
        return super()._reply(miner, request)


def _child(conn: multiprocessing.connection.Connection, count: int, kwargs: dict[str, Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through the pipe

    async def main() -> None:
        fleet = _RecordingFleet(count, **kwargs)
        await fleet.start()
        manifest = [{"key": m.key, "firmware": m.firmware, "fault": m.fault, "index": m.index} for m in fleet.miners]
        conn.send({"network": str(fleet.network), "port": fleet.port, "manifest": manifest, "pid": os.getpid()})
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(conn.fileno(), ready.set)
        try:
            while True:
                await ready.wait()
                ready.clear()
                while conn.poll():
                    cmd = conn.recv()
                    if cmd == "stop":
                        return
                    if cmd == "mark":
                        fleet.mark()
                        conn.send(None)
                    elif cmd == "coverage":
                        now = time.monotonic()
                        # The time since the last poll counts as a gap too: a miner that stopped
                        # being polled shows up even if nothing else happens.
                        gaps = [max(g, now - last) for g, last in zip(fleet.gap, fleet.last, strict=True)]
                        conn.send({"polls": fleet.polls, "gaps": gaps, "window": now - fleet.mark_at})
        finally:
            loop.remove_reader(conn.fileno())
            await fleet.stop()

    import uvloop

    uvloop.run(main())


class SimProcess:
    """Start a simulated fleet in a child process; use as a context manager."""

    def __init__(self, count: int, **kwargs: Any) -> None:
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child, args=(child, count, kwargs), daemon=True, name="simfleet")
        self._proc.start()
        child.close()
        if not self._conn.poll(120):
            self.close()
            raise RuntimeError("the simulated fleet did not start within 120 s")
        info = self._conn.recv()
        self.network: str = info["network"]
        self.port: int = info["port"]
        self.manifest: list[dict[str, Any]] = info["manifest"]
        self.pid: int = info["pid"]

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def mark(self) -> None:
        self._conn.send("mark")
        self._conn.recv()

    def coverage(self) -> dict[str, Any]:
        self._conn.send("coverage")
        result: dict[str, Any] = self._conn.recv()
        return result

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def close(self) -> None:
        if self._proc.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send("stop")
            self._proc.join(15)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc/<pid>/stat, in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        # The command name may hold spaces; fields resume after its closing parenthesis.
        fields = f.read().rsplit(b")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_bytes(pid: int) -> int:
    """VmRSS of a process from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


__all__ = ["FAULT_KINDS", "SimProcess", "proc_cpu_seconds", "proc_rss_bytes"]
