"""End to end: the agent, run as systemd would run it, speaks the notify protocol.

The test plays the service manager: it binds the datagram socket, hands its path to the
agent in NOTIFY_SOCKET with a 2 s watchdog, and checks READY=1, periodic WATCHDOG=1,
and on SIGTERM STOPPING=1 followed by exit status 0 within 5 s. Credentials on each
datagram prove the messages come from the main process, which is what NotifyAccess=main
in the unit accepts.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass
class Message:
    pid: int
    fields: dict[str, str]


class Manager:
    def __init__(self, sock: socket.socket, path: Path) -> None:
        self.sock = sock
        self.path = path
        self.seen: list[Message] = []

    def wait_for(self, key: str, value: str, deadline: float, proc: subprocess.Popen[bytes], log: Path) -> Message:
        while True:
            for message in self.seen:
                if message.fields.get(key) == value:
                    self.seen.remove(message)
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {key}={value} from the agent; got {self.seen}\nagent stderr:\n{log.read_text()}")
            if proc.poll() is not None and not self._pending():
                pytest.fail(
                    f"agent exited with {proc.returncode} before sending {key}={value}"
                    f"\nagent stderr:\n{log.read_text()}"
                )
            self.sock.settimeout(min(remaining, 0.5))
            try:
                data, ancdata, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(_UCRED.size))
            except TimeoutError:
                continue
            pid = -1
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = _UCRED.unpack(payload[: _UCRED.size])[0]
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            self.seen.append(Message(pid, fields))

    def _pending(self) -> bool:
        try:
            self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, TimeoutError):  # TimeoutError: the socket has a timeout set
            return False
        return True


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        # systemd sets SO_PASSCRED so the kernel attaches the sender's pid to every datagram.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        sock.bind(str(path))
        yield Manager(sock, path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_agent_notifies_ready_watchdog_and_stopping(manager: Manager, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[agent]\nsite = "t"\n\n[prometheus]\nlisten = "127.0.0.1:{free_port()}"\n\n[gpu]\nenabled = false\n'
    )
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(manager.path),
        "WATCHDOG_USEC": "2000000",
        "STATE_DIRECTORY": str(tmp_path / "state"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    (tmp_path / "state").mkdir()
    log = tmp_path / "agent.stderr"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
            cwd=tmp_path,
        )
    try:
        ready = manager.wait_for("READY", "1", time.monotonic() + 30, proc, log)
        assert ready.pid == proc.pid, "READY=1 must come from the main process (NotifyAccess=main)"

        # A 2 s watchdog means a ping at least every second; two show that it repeats.
        for _ in range(2):
            ping = manager.wait_for("WATCHDOG", "1", time.monotonic() + 10, proc, log)
            assert ping.pid == proc.pid

        proc.send_signal(signal.SIGTERM)
        stopped_by = time.monotonic() + 5
        stopping = manager.wait_for("STOPPING", "1", stopped_by, proc, log)
        assert stopping.pid == proc.pid
        try:
            returncode = proc.wait(timeout=max(0.0, stopped_by - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"agent did not exit within 5 s of SIGTERM\nagent stderr:\n{log.read_text()}")
        assert returncode == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
