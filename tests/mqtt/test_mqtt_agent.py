"""`edge-agent run` publishing to a real mosquitto: topics, seq, status, self-metrics."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import jsonschema
from support import free_port as free_http_port
from support import http_get

from .conftest import Broker, Subscriber, async_wait_for

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def validate(name: str, doc: dict[str, object]) -> None:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)


async def test_agent_publishes_host_summary_and_status(
    start_agent, broker: Broker, subscriber_factory: Callable[..., Subscriber], tmp_path: Path
) -> None:
    sub = subscriber_factory(broker.port, "edge/site-a/host-1/#")
    await sub.start()
    http = free_http_port()
    agent = start_agent(
        '[agent]\nsite = "site-a"\nname = "host-1"\n'
        f'[prometheus]\nlisten = "127.0.0.1:{http}"\n[host]\ninterval = 1\n[gpu]\nenabled = false\n'
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\nqos = 1\n'
        f'queue_path = "{tmp_path / "outbox.db"}"\n'
    )
    topics = sub.got.by_topic
    await async_wait_for(
        lambda: len(topics.get("edge/site-a/host-1/host", [])) >= 2 and "edge/site-a/host-1/summary" in topics,
        30,
        "host and summary messages",
    )
    host = topics["edge/site-a/host-1/host"][-1]
    assert host["memory_available_bytes"] > 0 and "load1" in host
    assert isinstance(host["cpus"], list) and {"cpu", "mode", "seconds_total"} <= set(host["cpus"][0])
    validate("host", host)
    summary = topics["edge/site-a/host-1/summary"][-1]
    validate("summary", summary)
    seqs = sorted(sub.got.seqs)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seq has a gap"
    assert sub.got.duplicates == 0
    assert any(s["status"] == "online" for s in sub.got.status)

    _, _, body = http_get(f"http://127.0.0.1:{http}/metrics")
    assert b"edge_agent_mqtt_connected 1" in body
    assert b"edge_agent_mqtt_published_messages_total" in body

    agent.signal(signal.SIGTERM)
    agent.proc.wait(10)
    assert agent.proc.returncode == 0, agent.log
    await async_wait_for(lambda: sub.got.status[-1]["status"] == "offline", 10, "offline status")
    print(f"sent>={len(seqs)} received={len(seqs)} duplicates=0 dropped=0")
