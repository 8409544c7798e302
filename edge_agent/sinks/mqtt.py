"""MQTT sink: every message goes through the durable outbox, then to the broker.

Flow: `submit()` (any thread, never blocks) appends the update to a pending
list and wakes the outbox thread; that thread renders the payloads and commits
them, with their `seq`, in one transaction per batch. The connection task
reads the outbox oldest-first and publishes with up to `WINDOW` messages in
flight; rows are deleted, in batches, only after their PUBACK (QoS 1) or once
handed to the socket (QoS 0). A dropped connection leaves unacknowledged rows
in the outbox; the next connection starts again from the oldest, so delivery
is at-least-once.

Live data and backlog share one ordered queue: per topic, a consumer always
sees messages in the order they were produced. After an outage the backlog
drains at the pipelined publish rate (thousands of messages per second), far
above what a site produces (10,000 miners every 30 s is ~330 messages/s), so
live data is delayed by the drain, never starved, and the queue shrinks at the
difference of the two rates.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import aiomqtt
from paho.mqtt import client as paho_client

from edge_agent import __version__
from edge_agent.config import AgentConfig, MqttConfig
from edge_agent.model import Event, Reading, Snapshot, Update
from edge_agent.sinks.outbox import Outbox, Row
from edge_agent.sinks.payload import PayloadBuilder, snapshot_topic, status_payload

log = logging.getLogger(__name__)

R = TypeVar("R")

WINDOW = 256  # QoS 1 publishes in flight: over an uplink the rate is at most WINDOW / round-trip time
FETCH = 512  # rows read from the outbox per query
DELETE_BATCH = 512  # acknowledged rows deleted per transaction
PENDING_MAX = 200_000  # messages waiting for the outbox thread before the oldest are dropped
CLOSE_TIMEOUT = 2.5  # aclose() budget for flushing and saying goodbye
INITIAL_BACKOFF = 0.5
STABLE_SESSION = 10.0  # seconds connected before a drop resets the backoff
STOP_GRACE = 0.8  # on a clean stop, time for in-flight messages to be acknowledged


class MqttSink:
    """Publishes snapshots and events to an MQTT broker through a durable outbox."""

    name = "mqtt"

    def __init__(self, cfg: MqttConfig, agent: AgentConfig, *, outbox: Outbox | None = None) -> None:
        self._cfg = cfg
        self._agent = agent
        self.prefix = f"{cfg.topic_prefix}/{agent.site}/{agent.name}"
        self.status_topic = f"{self.prefix}/status"
        self._client_id = cfg.client_id or f"{agent.site}-{agent.name}"
        self._outbox = outbox if outbox is not None else Outbox(cfg.queue_path, cfg.queue_max_bytes)
        self._builder = PayloadBuilder()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqtt-outbox")
        self._executor.submit(self._outbox.open)
        self._lock = threading.Lock()
        self._pending: deque[Update] = deque()
        self._pending_messages = 0
        self._write_scheduled = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # asyncio.Event binds to a loop only when first awaited (3.10+), so
        # these can exist before run(): aclose() may come first.
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self._run_task: asyncio.Task[Any] | None = None
        self._tls: ssl.SSLContext | None = None
        self._window = WINDOW  # lowered to the broker's Receive Maximum (MQTT 5)
        # Self-metrics: plain numbers, read from any thread.
        self.connected = False
        self.published = 0
        self.reconnects = 0
        self._dropped_pending = 0
        self._submit_failed = False

    # ------------------------------------------------------------------ submit

    def submit(self, update: Update) -> None:
        """Queue an update for the outbox thread. Never blocks, never raises."""
        try:
            count = len(update.events) + sum(1 for s in update.snapshots if s.source != "agent")
            if not count:
                return
            with self._lock:
                if self._closed:
                    self._dropped_pending += count
                    return
                self._pending.append(update)
                self._pending_messages += count
                while self._pending_messages > PENDING_MAX and len(self._pending) > 1:
                    # The outbox thread is stuck (disk stalled): shed the oldest
                    # updates rather than grow without bound. They have no seq
                    # yet, so they are counted as dropped but leave no gap.
                    old = self._pending.popleft()
                    n = len(old.events) + sum(1 for s in old.snapshots if s.source != "agent")
                    self._pending_messages -= n
                    self._dropped_pending += n
                if self._write_scheduled:
                    return
                self._write_scheduled = True
            self._executor.submit(self._write_pending)
        except Exception:
            if not self._submit_failed:
                log.exception("mqtt: cannot queue an update")
                self._submit_failed = True

    def _write_pending(self) -> None:
        """Outbox thread: commit everything submitted so far in one transaction."""
        with self._lock:
            updates = list(self._pending)
            self._pending.clear()
            self._pending_messages = 0
            self._write_scheduled = False
        items: list[Snapshot | Event] = []
        for update in updates:
            items.extend(s for s in update.snapshots if s.source != "agent")
            items.extend(update.events)
        if items and self._outbox.append(items, self._render):
            self._notify()

    def _render(self, item: Snapshot | Event, seq: int) -> tuple[str, bytes]:
        if isinstance(item, Snapshot):
            return snapshot_topic(self.prefix, item), self._builder.snapshot(item, seq)
        return f"{self.prefix}/events", self._builder.event(item, seq)

    def _notify(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(wake.set)

    async def _call(self, fn: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def flush(self) -> None:
        """Wait until everything submitted so far is committed to the outbox."""
        await self._call(self._write_pending)

    @property
    def last_seq(self) -> int:
        """The seq of the newest message committed (or held) by the outbox."""
        return self._outbox.last_seq

    # ------------------------------------------------------------- self-metrics

    def self_snapshot(self) -> Snapshot:
        """The sink's own health as an "agent" snapshot; safe from any thread."""
        box = self._outbox
        readings = (
            Reading("edge_agent_mqtt_connected", 1.0 if self.connected else 0.0),
            Reading("edge_agent_mqtt_queue_messages", float(box.messages + self._pending_messages)),
            Reading("edge_agent_mqtt_queue_bytes", float(box.bytes)),
            Reading("edge_agent_mqtt_queue_durable", 1.0 if box.durable else 0.0),
            Reading("edge_agent_mqtt_published_messages_total", float(self.published)),
            Reading("edge_agent_mqtt_dropped_messages_total", float(box.dropped + self._dropped_pending)),
            Reading("edge_agent_mqtt_reconnects_total", float(self.reconnects)),
        )
        return Snapshot("agent", "mqtt", time.time(), True, readings)

    # -------------------------------------------------------------- connection

    def _status(self, status: str, reason: str = "") -> bytes:
        agent = self._agent
        return status_payload(
            status,
            time.time(),
            site=agent.site,
            name=agent.name,
            client_id=self._client_id,
            version=__version__,
            reason=reason,
        )

    def _make_tls(self) -> ssl.SSLContext:
        cfg = self._cfg
        ctx = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
        if cfg.cert_file is not None and cfg.key_file is not None:
            ctx.load_cert_chain(str(cfg.cert_file), str(cfg.key_file))
        return ctx

    def _make_client(self) -> aiomqtt.Client:
        cfg = self._cfg
        v5 = cfg.protocol == "5"
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=cfg.username,
            password=cfg.password.value if cfg.password is not None else None,
            identifier=self._client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            # The outbox is the session: a broker-side session would only make
            # the broker re-deliver what the outbox re-sends anyway.
            clean_session=None if v5 else True,
            # paho rejects clean_start for 3.1.1 unless left at its default.
            clean_start=True if v5 else paho_client.MQTT_CLEAN_START_FIRST_ONLY,
            will=aiomqtt.Will(self.status_topic, self._status("offline", "connection lost"), qos=1, retain=True),
            keepalive=cfg.keepalive,
            timeout=max(10.0, 2.0 * cfg.keepalive),
            max_inflight_messages=WINDOW,
            tls_context=self._tls,
        )
        # aiomqtt warns on every publish beyond 10 outstanding ones; the window
        # is deliberate.
        client.pending_calls_threshold = WINDOW + 16
        self._window = WINDOW
        if v5:
            self._honour_receive_maximum(client)
        return client

    def _honour_receive_maximum(self, client: aiomqtt.Client) -> None:
        """Keep QoS 1 publishes in flight within the broker's MQTT 5 Receive Maximum.

        paho 2.x ignores the property (brokers such as HiveMQ announce 10 and
        disconnect a client that exceeds it) and aiomqtt 2.x does not expose
        the CONNACK properties, so the paho callback is wrapped here.
        """
        paho = client._client
        on_connect = paho.on_connect

        def wrapped(*args: Any) -> None:
            props = args[4] if len(args) > 4 else None
            limit = getattr(props, "ReceiveMaximum", None)
            if isinstance(limit, int) and 0 < limit < WINDOW:
                self._window = limit
                # The public setter refuses once connected; nothing is in
                # flight yet when CONNACK arrives, so setting it here is safe.
                paho._max_inflight_messages = limit
            if on_connect is not None:
                on_connect(*args)

        paho.on_connect = wrapped

    async def run(self) -> None:
        """Connect, publish, reconnect with backoff, forever (until cancelled or closed)."""
        self._loop = asyncio.get_running_loop()
        self._run_task = asyncio.current_task()
        self._running = True
        self._stopped.clear()
        backoff = INITIAL_BACKOFF
        last_error = ""
        attempts = 0
        try:
            while not self._closing.is_set():
                if attempts:
                    self.reconnects += 1
                attempts += 1
                started = time.monotonic()
                error, was_connected = await self._attempt()
                if not error:
                    return  # closed cleanly
                if was_connected and time.monotonic() - started >= STABLE_SESSION:
                    # A session that worked for a while and then broke is news
                    # every time; one cut short (client id taken over, kicked
                    # by an ACL) is handled like a failed connect: backoff, and
                    # logged once.
                    log.warning(
                        "mqtt %s:%d: %s; reconnecting (%d messages queued)",
                        self._cfg.host,
                        self._cfg.port,
                        error,
                        self._outbox.messages,
                    )
                    last_error = ""
                    backoff = INITIAL_BACKOFF
                elif error != last_error:
                    log.error("mqtt %s:%d: %s; retrying with backoff", self._cfg.host, self._cfg.port, error)
                    last_error = error
                else:
                    log.debug("mqtt %s:%d: still failing: %s", self._cfg.host, self._cfg.port, error)
                delay = random.uniform(backoff / 2, backoff)
                backoff = min(backoff * 2, self._cfg.backoff_max)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._closing.wait()
        finally:
            self.connected = False
            self._running = False
            self._stopped.set()

    async def _attempt(self) -> tuple[str, bool]:
        """One connection: ("", _) after a clean stop, else (the error in words, whether it had connected)."""
        if self._cfg.tls and self._tls is None:
            try:
                self._tls = await asyncio.to_thread(self._make_tls)
            except (OSError, ssl.SSLError) as exc:
                return f"cannot set up TLS from mqtt.ca_file/cert_file/key_file: {exc}", False
        connected = False
        try:
            client = self._make_client()
            async with client:
                connected = self.connected = True
                log.info(
                    "mqtt %s:%d: connected as %s (%d messages queued)",
                    self._cfg.host,
                    self._cfg.port,
                    self._client_id,
                    self._outbox.messages,
                )
                try:
                    await self._connected(client)
                finally:
                    self.connected = False
                    if self._closing.is_set() or _cancelling():
                        await self._goodbye(client)
            return "", connected
        except aiomqtt.MqttError as exc:
            return self._describe(exc), connected
        except Exception as exc:
            # Whatever paho or aiomqtt raise beyond MqttError must not end
            # publishing for good: log it with its traceback and retry.
            log.exception("mqtt %s:%d: unexpected error", self._cfg.host, self._cfg.port)
            return f"unexpected error: {exc!r}", connected

    def _describe(self, exc: BaseException) -> str:
        """One line an operator can act on, stable across retries of the same problem."""
        text = str(exc)
        if isinstance(exc, aiomqtt.MqttCodeError) and exc.rc is not None:
            reason = text.split("] ", 1)[-1]
            lowered = reason.lower()
            if "password" in lowered or "authori" in lowered or "username" in lowered:
                return f"broker refused the login: {reason} (check mqtt.username and the password)"
            return reason
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            detail = text.split("certificate verify failed:", 1)[-1].split("(_ssl.c", maxsplit=1)[0].strip()
            return f"TLS certificate of the broker not trusted ({detail}); check mqtt.ca_file and mqtt.host"
        if "SSL" in text or "TLS" in text:
            return f"TLS handshake failed: {text}"
        return text or type(exc).__name__

    async def _connected(self, client: aiomqtt.Client) -> None:
        """Run while connected; raises MqttError when the connection is lost."""
        await client.publish(self.status_topic, self._status("online"), qos=1, retain=True)
        # aiomqtt 2.x resolves this future when the link drops but does not
        # fail the publishes waiting for PUBACK (they wait for their timeout),
        # so the connection is watched directly.
        disconnected: asyncio.Future[None] = client._disconnected
        pump = asyncio.create_task(self._pump(client), name="mqtt-pump")
        closing = asyncio.create_task(self._closing.wait(), name="mqtt-closing")
        try:
            watched: set[asyncio.Future[Any]] = {pump, closing, disconnected}
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if closing.done():
                return
            if disconnected.done():
                exc = disconnected.exception() if not disconnected.cancelled() else None
                raise aiomqtt.MqttError(f"connection lost: {exc}" if exc else "connection closed by the broker")
            pump.result()
        finally:
            closing.cancel()
            if not pump.done():
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await pump

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(1.0):
                await client.publish(self.status_topic, self._status("offline", "stopped"), qos=1, retain=True)
                log.info("mqtt %s:%d: published offline status", self._cfg.host, self._cfg.port)

    async def _pump(self, client: aiomqtt.Client) -> None:
        """Publish the outbox oldest-first with a window of messages in flight."""
        qos = self._cfg.qos
        window = asyncio.Semaphore(self._window)
        inflight: dict[asyncio.Task[None], int] = {}
        acked: list[int] = []
        failure: list[BaseException] = []
        cursor = 0

        def flush_acks() -> None:
            if acked:
                self._executor.submit(self._outbox.delete, acked.copy())
                acked.clear()

        def done(task: asyncio.Task[None]) -> None:
            seq = inflight.pop(task)
            window.release()
            if task.cancelled():
                return
            exc = task.exception()
            if exc is not None:
                failure.append(exc)
                return
            acked.append(seq)
            self.published += 1
            if len(acked) >= DELETE_BATCH:
                flush_acks()

        try:
            while True:
                if failure:
                    raise failure[0]
                self._wake.clear()
                rows: list[Row] = await self._call(self._outbox.fetch, cursor, FETCH)
                if not rows:
                    flush_acks()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            await self._wake.wait()
                    continue
                for row in rows:
                    await window.acquire()
                    if failure:
                        raise failure[0]
                    task = asyncio.create_task(client.publish(row.topic, row.payload, qos=qos))
                    inflight[task] = row.seq
                    task.add_done_callback(done)
                    cursor = row.seq
        finally:
            # On a clean stop give what is in flight a moment to be
            # acknowledged (fewer duplicates next time); on a lost link the
            # rest stays in the outbox and goes out again after reconnecting.
            if inflight and self._closing.is_set():
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    async with asyncio.timeout(STOP_GRACE):
                        await asyncio.wait(set(inflight))
            for task in list(inflight):
                task.cancel()
            if inflight:
                await asyncio.wait(set(inflight))
            flush_acks()

    # ------------------------------------------------------------------- close

    async def aclose(self) -> None:
        """Say offline, commit what was submitted, close the outbox; ~3 s at most."""
        with self._lock:
            self._closed = True
        deadline = asyncio.get_running_loop().time() + CLOSE_TIMEOUT
        self._closing.set()
        if self._running:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.1, deadline - 0.5 - asyncio.get_running_loop().time())):
                    await self._stopped.wait()
            task = self._run_task
            if self._running and task is not None and not task.done():
                # Still inside a connection attempt (waiting for CONNACK from
                # a broker that does not answer): stop waiting for it.
                task.cancel()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.3):
                        await self._stopped.wait()
        # The final write and close run on the outbox thread after anything
        # already queued there; the executor is not waited for beyond the budget.
        final = self._executor.submit(self._close_outbox)
        with contextlib.suppress(TimeoutError, concurrent.futures.TimeoutError):
            remaining = max(0.2, deadline - asyncio.get_running_loop().time() + 0.5)
            await asyncio.wait_for(asyncio.wrap_future(final), remaining)
        self._executor.shutdown(wait=False)

    def _close_outbox(self) -> None:
        self._write_pending()
        self._outbox.close()


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
