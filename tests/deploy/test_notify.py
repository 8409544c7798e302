"""The sd_notify protocol against a real datagram socket, bound the way systemd binds it."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.notify import Notifier


class Receiver:
    """The service manager's end: a bound AF_UNIX datagram socket."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value

    def recv(self, timeout: float = 5.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def assert_empty(self) -> None:
        self.sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            self.sock.recv(4096)


@pytest.fixture
def path_receiver(tmp_path: Path) -> Iterator[Receiver]:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        yield Receiver(sock, str(path))


@pytest.fixture
def abstract_receiver() -> Iterator[Receiver]:
    name = f"edge-agent-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        yield Receiver(sock, "@" + name)


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_lifecycle_messages(kind: str, request: pytest.FixtureRequest) -> None:
    receiver: Receiver = request.getfixturevalue(f"{kind}_receiver")
    notifier = Notifier({"NOTIFY_SOCKET": receiver.env_value})
    assert notifier.enabled

    assert notifier.ready()
    assert receiver.recv() == "READY=1"
    assert notifier.watchdog()
    assert receiver.recv() == "WATCHDOG=1"
    assert notifier.status("polling 3 miners")
    assert receiver.recv() == "STATUS=polling 3 miners"
    assert notifier.stopping()
    assert receiver.recv() == "STOPPING=1"
    receiver.assert_empty()


def test_ready_and_stopping_carry_a_one_line_status(path_receiver: Receiver) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": path_receiver.env_value})
    notifier.ready("serving on :9105")
    assert path_receiver.recv() == "READY=1\nSTATUS=serving on :9105"
    # A newline inside the status would start a new assignment; it must be folded.
    notifier.stopping("flushing\nqueue")
    assert path_receiver.recv() == "STOPPING=1\nSTATUS=flushing queue"


def test_reloading_sends_monotonic_timestamp(path_receiver: Receiver) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": path_receiver.env_value})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    fields = dict(line.split("=", 1) for line in path_receiver.recv().split("\n"))
    assert fields["RELOADING"] == "1"
    assert before <= int(fields["MONOTONIC_USEC"]) <= after


def test_extend_timeout(path_receiver: Receiver) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": path_receiver.env_value})
    assert notifier.extend_timeout(2.5)
    assert path_receiver.recv() == "EXTEND_TIMEOUT_USEC=2500000"


def test_reads_os_environ_by_default(path_receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", path_receiver.env_value)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notifier = Notifier()
    assert notifier.watchdog_interval() == 30.0
    assert notifier.watchdog()
    assert path_receiver.recv() == "WATCHDOG=1"


def test_without_notify_socket_everything_is_a_no_op(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.watchdog_interval() is None
    with caplog.at_level(logging.DEBUG, logger="edge_agent.notify"):
        assert not notifier.ready()
        assert not notifier.watchdog()
        assert not notifier.status("x")
        assert not notifier.reloading()
        assert not notifier.stopping()
    assert caplog.records == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "2000000"}, 2.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}, 2.0),
        # Inherited from a parent whose watchdog this is: not ours to feed.
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "abc"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert Notifier(env).watchdog_interval() == expected


def test_unsupported_address_is_ignored_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="edge_agent.notify"):
        notifier = Notifier({"NOTIFY_SOCKET": "vsock:2:1234"})
        assert not notifier.enabled
        assert not notifier.ready()
    assert len(caplog.records) == 1
    assert "vsock:2:1234" in caplog.records[0].getMessage()


def test_missing_listener_never_raises_and_logs_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    with caplog.at_level(logging.INFO, logger="edge_agent.notify"):
        assert not notifier.ready()
        for _ in range(5):
            assert not notifier.watchdog()
        assert not notifier.stopping()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "nobody-listens" in warnings[0].getMessage()


def test_recovers_and_says_so_once_the_listener_appears(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "late"
    notifier = Notifier({"NOTIFY_SOCKET": str(path)})
    with caplog.at_level(logging.INFO, logger="edge_agent.notify"):
        assert not notifier.watchdog()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(path))
            assert notifier.watchdog()
            assert notifier.watchdog()
            sock.settimeout(5)
            assert sock.recv(64) == b"WATCHDOG=1"
            assert sock.recv(64) == b"WATCHDOG=1"
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "failed" in messages[0]
    assert "work again" in messages[1]


def test_full_receiver_queue_drops_watchdog_without_blocking(path_receiver: Receiver) -> None:
    """A manager that stops reading must not wedge the event loop that pings it."""
    notifier = Notifier({"NOTIFY_SOCKET": path_receiver.env_value})
    sent = 0
    # The kernel queues a bounded number of datagrams per receiver (net.unix.max_dgram_qlen,
    # 512 by default); past it a non-waiting send reports failure instead of blocking.
    for _ in range(100_000):
        if not notifier.watchdog():
            break
        sent += 1
    else:
        pytest.fail("the receiver queue never filled")
    assert sent > 0
    assert path_receiver.recv() == "WATCHDOG=1"
