"""Real mosquitto brokers on free loopback ports, certificates made with openssl, a recording subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import orjson
import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


async def async_wait_for(condition: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what}")
        await asyncio.sleep(0.02)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


@dataclass
class Broker:
    """One mosquitto process; restartable on the same port with the same persistence."""

    workdir: Path
    port: int
    extra: str = ""
    head: str = ""  # global options that must precede the first listener
    proc: subprocess.Popen[bytes] | None = None
    conf: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf = self.workdir / "mosquitto.conf"
        self.conf.write_text(
            self.head
            # mosquitto started as root drops to user "mosquitto", which cannot
            # read the test's private temp dirs; stay the current user.
            + f"user {getpass.getuser()}\n"
            + f"listener {self.port} {HOST}\n"
            f"persistence true\npersistence_location {self.workdir}/\n"
            # Unlimited queue for offline persistent sessions (default 1000).
            "max_queued_messages 0\n"
            f"log_dest file {self.workdir}/mosquitto.log\nlog_type error\nlog_type warning\n" + self.extra
        )

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        cmd = [MOSQUITTO, "-c", str(self.conf)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not _port_open(self.port):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited: {err} {self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto did not start listening")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM lets mosquitto save its persistence (queued messages of offline sessions)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.close_pipes()
        wait_for(lambda: not _port_open(self.port), 5, "broker port to close")

    def close_pipes(self) -> None:
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def log(self) -> str:
        p = self.workdir / "mosquitto.log"
        return p.read_text(errors="replace") if p.exists() else ""


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    made: list[Broker] = []

    def make(extra: str = "", *, start: bool = True, anonymous: bool = True, head: str = "") -> Broker:
        port = free_port()
        text = ("allow_anonymous true\n" if anonymous else "allow_anonymous false\n") + extra
        b = Broker(tmp_path / f"broker-{port}", port, text, head)
        made.append(b)
        if start:
            b.start()
        return b

    yield make
    for b in made:
        if b.proc is not None and b.proc.poll() is None:
            b.proc.kill()
            b.proc.wait(5)
        b.close_pipes()


@pytest.fixture
def broker(broker_factory: Callable[..., Broker]) -> Broker:
    return broker_factory()


# ------------------------------------------------------------------ certificates


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that did not sign the server certificate


def _make_ca(d: Path, name: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
        "-keyout", str(key), "-out", str(cert), cwd=d,
    )  # fmt: skip
    return key, cert


def _make_leaf(d: Path, name: str, ca_key: Path, ca_cert: Path, san: str) -> tuple[Path, Path]:
    key, csr, cert, ext = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem", d / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr), cwd=d
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(cert), cwd=d,
    )  # fmt: skip
    return key, cert


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca = _make_ca(d, "test-ca")
    server_key, server_cert = _make_leaf(d, "server", ca_key, ca, "IP:127.0.0.1,DNS:localhost")
    client_key, client_cert = _make_leaf(d, "client", ca_key, ca, "DNS:edge-agent")
    _, other_ca = _make_ca(d, "other-ca")
    return Pki(ca, server_cert, server_key, client_cert, client_key, other_ca)


# -------------------------------------------------------------------- subscriber


@dataclass
class Received:
    seqs: dict[int, int] = field(default_factory=dict)  # seq -> times received
    by_topic: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    status: list[dict[str, object]] = field(default_factory=list)
    retained_data: int = 0

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.seqs.values())

    def has_all(self, seqs: range | list[int]) -> bool:
        return all(s in self.seqs for s in seqs)


class Subscriber:
    """Records every message under a prefix; reconnects by itself, optionally with a persistent session."""

    def __init__(self, port: int, topic: str, *, client_id: str, persistent: bool, keep_payloads: bool = True) -> None:
        self.port = port
        self.topic = topic
        self.client_id = client_id
        self.persistent = persistent
        self.keep_payloads = keep_payloads
        self.got = Received()
        self.connected = asyncio.Event()
        self.connections = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            try:
                client = aiomqtt.Client(
                    HOST,
                    self.port,
                    identifier=self.client_id,
                    protocol=aiomqtt.ProtocolVersion.V311,
                    clean_session=not self.persistent,
                    keepalive=5,
                    max_queued_incoming_messages=0,
                )
                async with client:
                    await client.subscribe(self.topic, qos=1)
                    self.connections += 1
                    self.connected.set()
                    async for msg in client.messages:
                        payload = bytes(msg.payload) if isinstance(msg.payload, bytes) else b""
                        self._record(str(msg.topic), payload, retain=msg.retain)
            except aiomqtt.MqttError:
                self.connected.clear()
                await asyncio.sleep(0.1)

    def _record(self, topic: str, payload: bytes, *, retain: bool) -> None:
        doc = orjson.loads(payload)
        if topic.endswith("/status"):
            doc["_retained"] = retain
            self.got.status.append(doc)
            return
        if retain:
            self.got.retained_data += 1
        seq = int(doc["seq"])
        self.got.seqs[seq] = self.got.seqs.get(seq, 0) + 1
        if self.keep_payloads:
            self.got.by_topic.setdefault(topic, []).append(doc)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"subscriber-{self.client_id}")
        await asyncio.wait_for(self.connected.wait(), 10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@pytest.fixture
async def subscriber_factory() -> AsyncIterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(port: int, topic: str, *, client_id: str = "test-sub", persistent: bool = False) -> Subscriber:
        s = Subscriber(port, topic, client_id=client_id, persistent=persistent)
        made.append(s)
        return s

    yield make
    for s in made:
        await s.stop()


def report(sent: int, received: Received, dropped: int, seqs: range | None = None) -> str:
    got = len(received.seqs) if seqs is None else sum(1 for s in seqs if s in received.seqs)
    line = f"sent={sent} received={got} duplicates={received.duplicates} dropped={dropped}"
    print(line)
    return line


def env_with_pythonpath() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
