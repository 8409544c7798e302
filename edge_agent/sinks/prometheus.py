"""The Prometheus endpoint: latest snapshots, rendered as they arrive, served over HTTP(S).

The store keeps the latest snapshot per device and its chunks, rendered when
the snapshot is submitted. A scrape joins them in a worker thread; the joined
body (and its gzip) is cached until the next update.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import gzip
import logging
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent import __version__
from edge_agent.config import PrometheusConfig
from edge_agent.errors import ConfigError
from edge_agent.model import Reading, Snapshot, Update, now
from edge_agent.sinks import exposition
from edge_agent.sinks.webconfig import BasicAuth, WebConfig, load_web_config

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 16 * 1024
REQUEST_TIMEOUT = 30.0
# Level 1 costs a few percent of the render; level 9 costs more than the render itself
# for ~10% smaller bodies (measured in bench/scrape.py).
GZIP_LEVEL = 1

Provider = Callable[[], Snapshot | None]


@dataclass(slots=True)
class _Entry:
    """A device's rendered chunks. The readings are kept only when rendering failed (the scrape
    retries): at 10,000 miners they are ~300,000 objects the garbage collector must traverse on
    every full collection (a `Reading` is a tuple subclass, which CPython never untracks), and
    keeping them made each full collection take 150-250 ms (bench/fleet.py)."""

    readings: tuple[Reading, ...]
    chunks: exposition.Chunks | None = None


def _render(snap: Snapshot) -> exposition.Chunks | None:
    try:
        return exposition.render_readings(snap.readings)
    except Exception:
        # Left for the scrape to render (and report) rather than losing the whole update here.
        log.exception("prometheus: cannot render %s %s", snap.source, snap.device)
        return None


class MetricStore:
    """Latest rendering per (source, device), and the cached joined body. Thread-safe."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._version = 0
        self._cache: dict[tuple[bool, bool], tuple[int, tuple[bytes, ...]]] = {}

    def apply(self, update: Update) -> None:
        # Each snapshot is rendered here, once, as it arrives: spread over the poll interval, a few
        # tens of microseconds per miner, instead of piling up in the next scrape (10,000 miners
        # rendered at scrape time cost ~0.5 s of CPU holding the GIL). A scrape only joins chunks.
        entries = []
        for snap in update.snapshots:
            chunks = _render(snap)
            entries.append((snap.key, _Entry(() if chunks is not None else snap.readings, chunks)))
        with self._lock:
            for key, entry in entries:
                self._entries[key] = entry
            for key in update.removed:
                self._entries.pop(key, None)
            if update.snapshots or update.removed:
                self._version += 1

    def adopt(self, other: MetricStore) -> None:
        """Take over another store's devices (a rebuilt endpoint keeps serving them)."""
        with other._lock:
            entries = dict(other._entries)
        with self._lock:
            for key, entry in entries.items():
                self._entries.setdefault(key, entry)
            self._version += 1

    def render(self, *, openmetrics: bool, gzipped: bool, extra: list[Snapshot]) -> list[bytes]:
        """One body, as parts to send in order: the cached join of every stored snapshot, then `extra`.

        `extra` holds self-metrics read at scrape time (the MQTT uplink's); their
        families are emitted by nobody else, so they can follow the cached part.
        A gzip body is two gzip members back to back, which RFC 1952 and every
        HTTP client (Go's included) read as one stream. Call from a worker thread.
        """
        parts = list(self._main(openmetrics, gzipped))
        tail = exposition.join((exposition.render_readings(s.readings) for s in extra), openmetrics=openmetrics)
        if gzipped and tail:
            tail = gzip.compress(tail, compresslevel=GZIP_LEVEL, mtime=0)
        if tail:
            parts.append(tail)
        return parts

    def _main(self, openmetrics: bool, gzipped: bool) -> tuple[bytes, ...]:
        with self._lock:
            version = self._version
            cached = self._cache.get((openmetrics, gzipped))
            if cached is not None and cached[0] == version:
                return cached[1]
            entries = list(self._entries.values())
        chunk_sets: list[exposition.Chunks] = []
        for entry in entries:
            chunks = entry.chunks
            if chunks is None:
                # Benign race: two scrapes may render the same entry; both results are equal.
                chunks = entry.chunks = exposition.render_readings(entry.readings)
            chunk_sets.append(chunks)
        body = exposition.join_parts(chunk_sets, openmetrics=openmetrics, eof=False)
        if gzipped:
            # One gzip member fed a family at a time: zlib lets go of the GIL while it compresses,
            # and no call copies the whole body.
            z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
            body = [z.compress(part) for part in body]
            body.append(z.flush())
        parts = tuple(part for part in body if part)
        with self._lock:
            self._cache[(openmetrics, gzipped)] = (version, parts)
        return parts


class PrometheusSink:
    """Serves /metrics from the latest snapshots. `submit` renders each snapshot once and keeps the bytes."""

    name = "prometheus"

    def __init__(self, cfg: PrometheusConfig, providers: list[Provider] | None = None) -> None:
        self.cfg = cfg
        self.store = MetricStore()
        self._providers = list(providers or [])
        web = load_web_config(cfg.web_config_file) if cfg.web_config_file else WebConfig()
        self._ssl = web.ssl_context
        self._auth = BasicAuth(web.users)
        self._server: asyncio.Server | None = None
        build = Reading("edge_agent_build_info", 1.0, (("version", __version__),))
        self.store.apply(Update(snapshots=(Snapshot("agent", "build", now(), True, (build,)),)))

    def add_provider(self, provider: Provider) -> None:
        self._providers.append(provider)

    def submit(self, update: Update) -> None:
        try:
            self.store.apply(update)
        except Exception:  # a sink must never take the collector down with it
            log.exception("prometheus: dropping an update that could not be stored")

    async def start(self) -> None:
        """Bind the listener. Raises ConfigError if the address cannot be used."""
        try:
            self._server = await asyncio.start_server(
                self._handle,
                self.cfg.host or None,
                self.cfg.port,
                ssl=self._ssl,
                limit=MAX_REQUEST_BYTES,
                reuse_address=True,
            )
        except OSError as exc:
            raise ConfigError(
                "prometheus.listen",
                f"cannot listen on {self.cfg.host or '*'}:{self.cfg.port}: {exc.strerror}; "
                'pick a free port or set listen = "" to disable the endpoint',
            ) from exc
        addrs = ", ".join(str(s.getsockname()[:2]) for s in self._server.sockets)
        log.info("prometheus: serving /metrics on %s%s", addrs, " (TLS)" if self._ssl else "")

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def run(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._server.wait_closed()
            self._server = None

    async def render(self, *, openmetrics: bool = False, gzipped: bool = False) -> list[bytes]:
        extra = []
        for provider in self._providers:
            try:
                snap = provider()
            except Exception:
                snap = None
                log.exception("prometheus: a self-metrics provider failed")
            if snap is not None:
                extra.append(snap)
        return await asyncio.to_thread(self.store.render, openmetrics=openmetrics, gzipped=gzipped, extra=extra)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    head = await reader.readuntil(b"\r\n\r\n")
                keep_alive = await self._respond(head, writer)
                await writer.drain()
                if not keep_alive:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError, OSError):
            pass
        except Exception:
            log.exception("prometheus: error while serving a request")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _respond(self, head: bytes, writer: asyncio.StreamWriter) -> bool:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._send(writer, 400, b"bad request\n", keep_alive=False)
            return False
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if "content-length" in headers or "transfer-encoding" in headers:
            self._send(writer, 400, b"request bodies are not accepted\n", keep_alive=False)
            return False
        if self._auth.enabled and not await self._authorized(headers.get("authorization", "")):
            self._send(
                writer, 401, b"unauthorized\n", keep_alive, extra={"WWW-Authenticate": 'Basic realm="edge-agent"'}
            )
            return keep_alive
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            self._send(writer, 405, b"method not allowed\n", keep_alive, extra={"Allow": "GET, HEAD"})
            return keep_alive
        if path == "/metrics":
            openmetrics = "application/openmetrics-text" in headers.get("accept", "")
            gzipped = "gzip" in headers.get("accept-encoding", "")
            body = await self.render(openmetrics=openmetrics, gzipped=gzipped)
            ctype = exposition.OPENMETRICS_CONTENT_TYPE if openmetrics else exposition.TEXT_CONTENT_TYPE
            extra = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"} if gzipped else {}
            self._send(writer, 200, body, keep_alive, ctype=ctype, extra=extra, head=method == "HEAD")
        elif path == "/healthz":
            self._send(writer, 200, b"ok\n", keep_alive, head=method == "HEAD")
        elif path == "/":
            page = b"<html><head><title>edge-agent</title></head><body><h1>edge-agent</h1>"
            page += b'<p><a href="/metrics">Metrics</a></p></body></html>\n'
            self._send(writer, 200, page, keep_alive, ctype="text/html; charset=utf-8", head=method == "HEAD")
        else:
            self._send(writer, 404, b"not found\n", keep_alive)
        return keep_alive

    async def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        return await asyncio.to_thread(self._auth.check, user, password)

    @staticmethod
    def _send(
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes | list[bytes],
        keep_alive: bool,
        *,
        ctype: str = "text/plain; charset=utf-8",
        extra: dict[str, str] | None = None,
        head: bool = False,
    ) -> None:
        parts = [body] if isinstance(body, bytes) else body
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}
        lines = [
            f"HTTP/1.1 {status} {reason.get(status, 'Error')}",
            f"Content-Type: {ctype}",
            f"Content-Length: {sum(map(len, parts))}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
        ]
        lines.extend(f"{k}: {v}" for k, v in (extra or {}).items())
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head:
            # One write per part: asyncio's writelines joins them into one buffer first (a copy of the
            # whole body in the event loop); uvloop queues each part without copying.
            for part in parts:
                writer.write(part)
