"""The MQTT sink against real mosquitto processes.

Every scenario prints `sent=N received=N duplicates=N dropped=N`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from edge_agent.model import Event, Reading, Snapshot, Update
from edge_agent.sinks.mqtt import MqttSink
from edge_agent.sinks.outbox import Outbox

from .conftest import HOST, Broker, Pki, Subscriber, async_wait_for, env_with_pythonpath, free_port, report
from .helpers import AGENT, PREFIX, mqtt_config, update

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
DRIVER = Path(__file__).resolve().parent / "driver.py"
MQTT_LOGGER = "edge_agent.sinks.mqtt"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / f"{name}.schema.json").read_text()))


async def _stop(sink: MqttSink, runner: asyncio.Task[None]) -> None:
    await sink.aclose()
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == MQTT_LOGGER and r.levelno >= logging.ERROR]


@pytest.mark.parametrize(("protocol", "qos"), [("5", 1), ("3.1.1", 1), ("5", 0)])
async def test_plain(
    broker: Broker, subscriber_factory: Callable[..., Subscriber], tmp_path: Path, protocol: str, qos: int
) -> None:
    sub = subscriber_factory(broker.port, f"{PREFIX}/#")
    await sub.start()
    sink = MqttSink(mqtt_config(broker.port, tmp_path / "q.db", protocol=protocol, qos=qos), AGENT)
    runner = asyncio.create_task(sink.run())
    await sink.flush()
    first = sink.last_seq + 1
    for i in range(20):
        sink.submit(update(i, miners=5))
    sink.submit(
        Update(
            snapshots=(
                Snapshot("gpu", "GPU-5c1d", 1.0, True, (Reading("gpu_power_watts", 301.5),), {"index": "0"}),
                Snapshot("host", "edge-box", 1.0, True, (Reading("host_load1", 0.5),)),
                Snapshot("summary", "site-a", 1.0, True, (Reading("site_hashrate_hashes_per_second", 1e15),)),
                Snapshot("agent", "collector:asic", 1.0, True, ()),  # never published
            ),
            events=(Event("miner_down", "10.0.0.1:4028", 2.0, {"reason": "connection refused"}),),
        )
    )
    sent = 20 * 5 + 4
    await sink.flush()
    assert sink.last_seq == first + sent - 1
    await async_wait_for(lambda: sub.got.has_all(range(first, first + sent)), 20, "every seq")
    await async_wait_for(lambda: sink.self_snapshot().readings[1].value == 0, 10, "outbox drained")
    report(sent, sub.got, 0, range(first, first + sent))
    assert sub.got.duplicates == 0
    assert sub.got.retained_data == 0
    topics = set(sub.got.by_topic)
    assert f"{PREFIX}/asic/10.0.0.1:4028" in topics
    assert {f"{PREFIX}/gpu/GPU-5c1d", f"{PREFIX}/host", f"{PREFIX}/summary", f"{PREFIX}/events"} <= topics
    assert not any("agent" in t for t in topics)
    kinds = {"asic": "asic", "gpu": "gpu", "host": "host", "summary": "summary", "events": "events"}
    for topic, docs in sub.got.by_topic.items():
        validator = _validator(kinds[topic.split("/")[3]])
        for doc in docs:
            validator.validate(doc)
    # Per topic, in order.
    miner = [d["seq"] for d in sub.got.by_topic[f"{PREFIX}/asic/10.0.0.1:4028"]]
    assert miner == sorted(miner)
    assert sub.got.status[-1]["status"] == "online"
    metrics = {r.key: r.value for r in sink.self_snapshot().readings}
    assert metrics["edge_agent_mqtt_connected"] == 1.0
    assert metrics["edge_agent_mqtt_published_messages_total"] == sent
    assert metrics["edge_agent_mqtt_queue_bytes"] == 0
    await _stop(sink, runner)
    await async_wait_for(lambda: sub.got.status[-1]["status"] == "offline", 5, "offline status")
    _validator("status").validate({k: v for k, v in sub.got.status[-1].items() if k != "_retained"})


async def test_tls_trusted_with_client_certificate(
    broker_factory: Callable[..., Broker], subscriber_factory: Callable[..., Subscriber], pki: Pki, tmp_path: Path
) -> None:
    tls_port = free_port()
    broker = broker_factory(
        f"listener {tls_port} {HOST}\ncafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
        "require_certificate true\n"
    )
    sub = subscriber_factory(broker.port, f"{PREFIX}/#")
    await sub.start()
    cfg = mqtt_config(
        tls_port, tmp_path / "q.db", tls=True, ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key
    )
    sink = MqttSink(cfg, AGENT)
    runner = asyncio.create_task(sink.run())
    await sink.flush()
    first = sink.last_seq + 1
    for i in range(10):
        sink.submit(update(i, miners=3))
    await async_wait_for(lambda: sub.got.has_all(range(first, first + 30)), 20, "every seq over TLS")
    report(30, sub.got, 0, range(first, first + 30))
    await _stop(sink, runner)


async def test_tls_untrusted_certificate_one_error_and_retries(
    broker_factory: Callable[..., Broker], pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tls_port = free_port()
    broker_factory(f"listener {tls_port} {HOST}\ncafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}")
    cfg = mqtt_config(tls_port, tmp_path / "q.db", tls=True, ca_file=pki.other_ca)
    sink = MqttSink(cfg, AGENT)
    caplog.set_level(logging.INFO, logger=MQTT_LOGGER)
    runner = asyncio.create_task(sink.run())
    for i in range(5):
        sink.submit(update(i))
    await async_wait_for(lambda: sink.reconnects >= 3, 20, "several retries")
    errors = _errors(caplog)
    assert len(errors) == 1, errors
    assert "not trusted" in errors[0]
    assert "mqtt.ca_file" in errors[0]
    assert "Traceback" not in caplog.text
    assert not sink.connected
    await sink.flush()
    print("sent=5 received=0 duplicates=0 dropped=0 (untrusted broker: nothing delivered, all kept)")
    assert sink.self_snapshot().readings[1].value == 5, "kept in the outbox"
    await _stop(sink, runner)


def _password_broker(broker_factory: Callable[..., Broker], tmp_path: Path) -> tuple[Broker, int]:
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "site-a", "right-secret"], check=True)
    auth_port = free_port()
    broker = broker_factory(
        f"listener {auth_port} {HOST}\nallow_anonymous false\npassword_file {passwd}\n",
        anonymous=True,
        head="per_listener_settings true\n",
    )
    return broker, auth_port


async def test_password_right(
    broker_factory: Callable[..., Broker], subscriber_factory: Callable[..., Subscriber], tmp_path: Path
) -> None:
    broker, auth_port = _password_broker(broker_factory, tmp_path)
    sub = subscriber_factory(broker.port, f"{PREFIX}/#")
    await sub.start()
    sink = MqttSink(mqtt_config(auth_port, tmp_path / "q.db", username="site-a", password="right-secret"), AGENT)
    runner = asyncio.create_task(sink.run())
    await sink.flush()
    first = sink.last_seq + 1
    for i in range(10):
        sink.submit(update(i, miners=2))
    await async_wait_for(lambda: sub.got.has_all(range(first, first + 20)), 20, "every seq with a password")
    report(20, sub.got, 0, range(first, first + 20))
    await _stop(sink, runner)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_password_wrong_one_error_and_retries(
    broker_factory: Callable[..., Broker], tmp_path: Path, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    _, auth_port = _password_broker(broker_factory, tmp_path)
    cfg = mqtt_config(auth_port, tmp_path / "q.db", username="site-a", password="wrong-secret", protocol=protocol)
    sink = MqttSink(cfg, AGENT)
    caplog.set_level(logging.INFO, logger=MQTT_LOGGER)
    runner = asyncio.create_task(sink.run())
    await async_wait_for(lambda: sink.reconnects >= 3, 20, "several retries")
    errors = _errors(caplog)
    assert len(errors) == 1, errors
    assert "refused the login" in errors[0]
    assert "wrong-secret" not in caplog.text
    assert not sink.connected
    await _stop(sink, runner)


async def test_outage_every_seq_arrives(
    broker: Broker, subscriber_factory: Callable[..., Subscriber], tmp_path: Path
) -> None:
    sub = subscriber_factory(broker.port, f"{PREFIX}/#", client_id="outage-sub", persistent=True)
    await sub.start()
    sink = MqttSink(mqtt_config(broker.port, tmp_path / "q.db"), AGENT)
    runner = asyncio.create_task(sink.run())
    await sink.flush()
    first = sink.last_seq + 1
    stop_feeding = asyncio.Event()

    async def feed() -> None:
        i = 0
        while not stop_feeding.is_set():
            sink.submit(update(i, miners=3))
            i += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.01):
                    await stop_feeding.wait()

    feeder = asyncio.create_task(feed())
    await async_wait_for(lambda: len(sub.got.seqs) >= 100, 20, "messages before the outage")
    broker.stop()
    await async_wait_for(lambda: not sink.connected, 20, "the sink to notice the outage")
    during = sink.last_seq
    await async_wait_for(lambda: sink.last_seq >= during + 300, 20, "messages queued during the outage")
    assert sink.self_snapshot().readings[1].value >= 300
    broker.start()
    await async_wait_for(lambda: sink.connected, 20, "reconnect")
    await async_wait_for(lambda: sub.connections >= 2, 20, "subscriber back")
    stop_feeding.set()
    await feeder
    await sink.flush()
    last = sink.last_seq
    await async_wait_for(lambda: sub.got.has_all(range(first, last + 1)), 30, "every seq after the outage")
    sent = last - first + 1
    report(sent, sub.got, int(sink.self_snapshot().readings[5].value), range(first, last + 1))
    assert sink.reconnects >= 1
    assert sink.self_snapshot().readings[5].value == 0
    await _stop(sink, runner)


class Driver:
    """The agent as a separate process, so it can be killed with SIGKILL."""

    def __init__(self, config: dict[str, object], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER), json.dumps(config), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env_with_pythonpath(),
            text=True,
        )
        self.committed = 0

    def read_until(self, predicate: Callable[[str], bool], limit: float = 20) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().strip()
            if not line:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read() if self.proc.stderr else ""
                    raise AssertionError(f"driver exited {self.proc.returncode}: {err}")
                continue
            if line.startswith("committed "):
                self.committed = int(line.split()[1])
            if predicate(line):
                return line
        raise AssertionError("driver did not report in time")

    def kill(self, sig: int) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return code


async def test_crash_kill_9_with_queue_every_seq_arrives(
    broker: Broker, subscriber_factory: Callable[..., Subscriber], tmp_path: Path
) -> None:
    # The subscriber's persistent session exists before the outage starts.
    sub = subscriber_factory(broker.port, f"{PREFIX}/#", client_id="crash-sub", persistent=True)
    await sub.start()
    await sub.stop()
    broker.stop()
    config: dict[str, object] = {"port": broker.port, "queue": str(tmp_path / "q.db")}
    first_run = Driver(config, "--count", "5000", "--per-update", "5", "--interval", "0.002")
    line = await asyncio.to_thread(first_run.read_until, lambda text: text.startswith("start "))
    start = int(line.split()[1])
    # Killed mid-stream, while it is still feeding and the queue holds hundreds.
    await asyncio.to_thread(first_run.read_until, lambda _: first_run.committed >= start + 500)
    assert first_run.kill(signal.SIGKILL) == -signal.SIGKILL
    killed_at = first_run.committed

    second_run = Driver(config, "--count", "20", "--start", "100000", "--per-update", "5")
    await asyncio.to_thread(second_run.read_until, lambda line: line == "idle")
    last = second_run.committed
    assert last >= killed_at + 100, "seq continued after the crash"

    broker.start()
    sub2 = subscriber_factory(broker.port, f"{PREFIX}/#", client_id="crash-sub", persistent=True)
    await sub2.start()
    # The second process was started with the first one's seqs still queued: all of them, then its own.
    first = start + 1
    await async_wait_for(lambda: sub2.got.has_all(range(first, last + 1)), 30, "every seq after the crash")
    report(last - first + 1, sub2.got, 0, range(first, last + 1))
    assert first == min(sub2.got.seqs)
    assert max(sub2.got.seqs) == last
    assert first <= killed_at - 400, "the backlog of the killed process was delivered"
    assert second_run.kill(signal.SIGTERM) == 0


async def test_cap_dropped_counter_equals_gap(
    broker: Broker, subscriber_factory: Callable[..., Subscriber], tmp_path: Path
) -> None:
    sub = subscriber_factory(broker.port, f"{PREFIX}/#", client_id="cap-sub", persistent=True)
    await sub.start()
    sink = MqttSink(mqtt_config(broker.port, tmp_path / "q.db", queue_max_bytes=4096), AGENT)
    runner = asyncio.create_task(sink.run())
    await sink.flush()
    first = sink.last_seq + 1
    for i in range(10):
        sink.submit(update(i))
    await async_wait_for(lambda: sub.got.has_all(range(first, first + 10)), 20, "messages before the outage")
    await async_wait_for(lambda: sink.self_snapshot().readings[1].value == 0, 10, "nothing in flight")
    broker.stop()
    await async_wait_for(lambda: not sink.connected, 20, "the sink to notice the outage")
    for i in range(10, 200):
        sink.submit(update(i))
    await sink.flush()
    last = sink.last_seq
    dropped = int(sink.self_snapshot().readings[5].value)
    assert dropped > 100, "the cap was exceeded by far"
    assert sink.self_snapshot().readings[2].value <= 4096
    broker.start()
    await async_wait_for(lambda: sink.self_snapshot().readings[1].value == 0, 20, "outbox drained")
    await async_wait_for(lambda: last in sub.got.seqs, 20, "the newest message")
    sent = last - first + 1
    received = sum(1 for s in range(first, last + 1) if s in sub.got.seqs)
    report(sent, sub.got, dropped, range(first, last + 1))
    assert sent - received == dropped, "every missing seq is counted as dropped, and nothing else"
    # The gap is the oldest messages of the outage, in one piece.
    missing = [s for s in range(first, last + 1) if s not in sub.got.seqs]
    assert missing == list(range(first + 10, first + 10 + dropped))
    await _stop(sink, runner)


async def test_retained_status_and_will(
    broker: Broker, subscriber_factory: Callable[..., Subscriber], tmp_path: Path
) -> None:
    watcher = subscriber_factory(broker.port, f"{PREFIX}/status", client_id="watcher")
    await watcher.start()
    config: dict[str, object] = {"port": broker.port, "queue": str(tmp_path / "q.db")}
    agent = Driver(config, "--count", "1")
    await async_wait_for(lambda: any(s["status"] == "online" for s in watcher.got.status), 20, "online")
    agent.kill(signal.SIGKILL)
    await async_wait_for(lambda: watcher.got.status[-1]["status"] == "offline", 20, "the will")
    assert watcher.got.status[-1]["reason"] == "connection lost"

    again = Driver(config, "--count", "1")
    await async_wait_for(lambda: watcher.got.status[-1]["status"] == "online", 20, "online again")
    assert again.kill(signal.SIGTERM) == 0
    await async_wait_for(lambda: watcher.got.status[-1]["status"] == "offline", 20, "explicit offline")
    assert watcher.got.status[-1]["reason"] == "stopped"

    # A client arriving later gets the retained status.
    late = subscriber_factory(broker.port, f"{PREFIX}/status", client_id="late")
    await late.start()
    await async_wait_for(lambda: bool(late.got.status), 10, "retained status")
    assert late.got.status[0]["status"] == "offline"
    assert late.got.status[0]["_retained"] is True
    report(0, late.got, 0)


async def test_close_is_quick_when_the_broker_is_gone(tmp_path: Path) -> None:
    sink = MqttSink(mqtt_config(free_port(), tmp_path / "q.db"), AGENT)
    runner = asyncio.create_task(sink.run())
    for i in range(20):
        sink.submit(update(i))
    started = time.monotonic()
    await sink.aclose()
    took = time.monotonic() - started
    await runner
    assert took < 3.5
    box = Outbox(tmp_path / "q.db", 1 << 20)
    box.open()
    assert box.messages == 20, "everything submitted before close is in the outbox"
    box.close()
    print(f"sent=20 received=0 duplicates=0 dropped=0 (queued={box.messages})")


async def test_close_is_quick_when_the_broker_does_not_answer(tmp_path: Path) -> None:
    """A listener that accepts TCP but never sends CONNACK: aclose still returns promptly."""
    silent = socket.socket()
    silent.bind((HOST, 0))
    silent.listen(8)
    try:
        sink = MqttSink(mqtt_config(silent.getsockname()[1], tmp_path / "q.db"), AGENT)
        runner = asyncio.create_task(sink.run())
        sink.submit(update(0))
        await async_wait_for(lambda: sink._running, 5, "run to start")
        await sink.flush()
        started = time.monotonic()
        await sink.aclose()
        took = time.monotonic() - started
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(runner, 1)
        assert took < 3.5
        assert runner.done()
    finally:
        silent.close()


async def test_full_disk_keeps_publishing_from_memory(
    broker: Broker, subscriber_factory: Callable[..., Subscriber], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The outbox runs out of space during an outage: one error, the gauge says so, nothing is lost."""
    sub = subscriber_factory(broker.port, f"{PREFIX}/#", client_id="full-sub", persistent=True)
    await sub.start()
    box = Outbox(tmp_path / "q.db", 1 << 30, max_pages=24)
    sink = MqttSink(mqtt_config(broker.port, tmp_path / "q.db"), AGENT, outbox=box)
    runner = asyncio.create_task(sink.run())
    await sink.flush()
    first = sink.last_seq + 1
    await async_wait_for(lambda: sink.connected, 20, "connected")
    broker.stop()
    await async_wait_for(lambda: not sink.connected, 20, "the outage")
    with caplog.at_level(logging.ERROR, logger="edge_agent.sinks.outbox"):
        for i in range(100):
            sink.submit(update(i, miners=10))
        await sink.flush()
    metrics = {r.key: r.value for r in sink.self_snapshot().readings}
    assert metrics["edge_agent_mqtt_queue_durable"] == 0.0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.endswith("outbox")]
    assert len(errors) == 1
    assert "full" in errors[0]
    broker.start()
    for i in range(100, 110):  # live data after the outage, still without the disk
        sink.submit(update(i, miners=10))
    await sink.flush()
    last = sink.last_seq
    await async_wait_for(lambda: sub.got.has_all(range(first, last + 1)), 30, "every seq, disk and memory")
    report(last - first + 1, sub.got, int(metrics["edge_agent_mqtt_dropped_messages_total"]), range(first, last + 1))
    assert metrics["edge_agent_mqtt_dropped_messages_total"] == 0
    await _stop(sink, runner)


def test_self_snapshot_readings_are_in_the_metric_table(tmp_path: Path) -> None:
    from edge_agent.metrics import METRICS

    box = Outbox(tmp_path / "q.db", 1 << 20)
    sink = MqttSink(mqtt_config(1, tmp_path / "q.db"), AGENT, outbox=box)
    snap = sink.self_snapshot()
    assert snap.source == "agent"
    assert snap.device == "mqtt"
    for reading in snap.readings:
        assert reading.key in METRICS, reading.key
        assert tuple(name for name, _ in reading.labels) == METRICS[reading.key].labels
    asyncio.run(sink.aclose())


async def test_mqtt5_receive_maximum_is_honoured(
    broker_factory: Callable[..., Broker], subscriber_factory: Callable[..., Subscriber], tmp_path: Path
) -> None:
    """A broker announcing a small Receive Maximum gets no more than that many unacknowledged publishes."""
    broker = broker_factory("max_inflight_messages 5\n")
    sub = subscriber_factory(broker.port, f"{PREFIX}/#")
    await sub.start()
    sink = MqttSink(mqtt_config(broker.port, tmp_path / "q.db"), AGENT)
    runner = asyncio.create_task(sink.run())
    await sink.flush()
    first = sink.last_seq + 1
    for i in range(40):
        sink.submit(update(i, miners=10))
    await async_wait_for(lambda: sub.got.has_all(range(first, first + 400)), 20, "every seq")
    report(400, sub.got, 0, range(first, first + 400))
    assert sink._window == 5
    assert sink.reconnects == 0, "the broker never had to cut the client off"
    await _stop(sink, runner)
