"""The runtime: schedules collectors, hands their updates to sinks, reloads, stops.

Collectors never see sinks and sinks never call collectors: everything passes
through `Hub.emit`, which keeps what the site totals need of every device and
submits to each sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import resource
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from edge_agent import config as config_mod
from edge_agent.collectors.asic.fleet import AsicFleet
from edge_agent.collectors.gpu import GpuCollector, open_gpu
from edge_agent.collectors.host import HostCollector
from edge_agent.config import Config
from edge_agent.errors import CollectorError, ConfigError
from edge_agent.model import Collector, Emit, Sink, Snapshot, Source, Update
from edge_agent.notify import Notifier
from edge_agent.selfstats import CollectorStats
from edge_agent.sinks.mqtt import MqttSink
from edge_agent.sinks.prometheus import MetricStore, PrometheusSink
from edge_agent.summary import DeviceTotals, site_summary, totals_of

log = logging.getLogger(__name__)

STOP_TIMEOUT = 4.0  # the whole stop must fit in systemd's and the 5 s


class Periodic:
    """Runs a `Collector` every `interval` seconds on a monotonic deadline.

    The first run waits a random offset within one interval so that many agents
    (or collectors) started together do not fire together. A run that exceeds
    `timeout` is cancelled and counted; a run that overruns its slot skips the
    missed ticks instead of piling up. The collector is logged once when it
    fails and once when it recovers.
    """

    def __init__(self, collector: Collector, interval: float, timeout: float, *, first_delay: float | None = None):
        self.collector = collector
        self.name = collector.name
        self.interval = interval
        self.timeout = timeout
        self.first_delay = random.uniform(0, interval) if first_delay is None else first_delay
        self.stats = CollectorStats(collector.name)
        self._failing = False
        self._last_keys: tuple[tuple[str, str], ...] = ()

    async def run(self, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.first_delay
        try:
            while True:
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                emit(await self.run_once())
                deadline += self.interval
                late = loop.time() - deadline
                if late > 0:
                    deadline += (int(late // self.interval) + 1) * self.interval
        finally:
            await self.collector.aclose()

    async def run_once(self) -> Update:
        clock = time.perf_counter
        start = clock()
        problem = ""
        try:
            async with asyncio.timeout(self.timeout):
                update = await self.collector.collect()
        except TimeoutError:
            problem = f"timed out after {self.timeout:g}s"
            self.stats.failure(clock() - start, timed_out=True)
        except CollectorError as exc:
            problem = str(exc)
            self.stats.failure(clock() - start)
        except Exception as exc:
            problem = f"unexpected {type(exc).__name__}: {exc}"
            if not self._failing:
                log.debug("collector %s: traceback", self.name, exc_info=True)
            self.stats.failure(clock() - start)
        else:
            self.stats.success(clock() - start)
            if self._failing:
                log.warning("collector %s: recovered", self.name)
                self._failing = False
            keys = tuple(s.key for s in update.snapshots)
            present = set(keys)
            gone = tuple(k for k in self._last_keys if k not in present) + update.removed
            self._last_keys = keys
            return Update((*update.snapshots, self.stats.snapshot()), update.events, gone)
        if not self._failing:
            log.error("collector %s: failed: %s (logged once until it recovers)", self.name, problem)
            self._failing = True
        # Stale readings are worse than none: drop what the last good run showed.
        gone, self._last_keys = self._last_keys, ()
        return Update((self.stats.snapshot(),), (), gone)


@dataclass
class Hub:
    """Fans updates out to sinks and keeps the few numbers per device the site totals need."""

    sinks: dict[str, Sink] = field(default_factory=dict)
    totals: dict[tuple[str, str], DeviceTotals] = field(default_factory=dict)

    def emit(self, update: Update) -> None:
        for snap in update.snapshots:
            t = totals_of(snap)
            if t is not None:
                self.totals[snap.key] = t
        for key in update.removed:
            self.totals.pop(key, None)
        for sink in self.sinks.values():
            try:
                sink.submit(update)
            except Exception:
                log.exception("sink %s: submit raised; update dropped for this sink", sink.name)


@dataclass
class _Running:
    key: object
    task: asyncio.Task[None]
    close: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class _Spec:
    """How to build one component, and the config slice it depends on."""

    key: object
    build: Callable[[], Awaitable[list[Source]]]


def source_specs(cfg: Config) -> dict[str, _Spec]:
    """The collectors a config asks for. A spec's build raises ConfigError for startup failures."""
    specs: dict[str, _Spec] = {}
    if cfg.host.enabled:

        async def host() -> list[Source]:
            return [Periodic(HostCollector(cfg.agent.name), cfg.host.interval, cfg.host.timeout)]

        specs["host"] = _Spec((cfg.host, cfg.agent), host)
    if cfg.asic.enabled:

        async def asic() -> list[Source]:
            return [AsicFleet(cfg.asic)]

        specs["asic"] = _Spec(cfg.asic, asic)
    if cfg.gpu.enabled is not False:

        async def gpu() -> list[Source]:
            collector = await open_gpu_or_config_error(cfg)
            if collector is None:
                return []
            sources: list[Source] = [Periodic(collector, cfg.gpu.interval, cfg.gpu.timeout)]
            xid = collector.xid_source()
            if xid is not None:
                sources.append(xid)
            return sources

        specs["gpu"] = _Spec(cfg.gpu, gpu)
    return specs


async def open_gpu_or_config_error(cfg: Config) -> GpuCollector | None:
    """Open NVML as the config asks; a required GPU that cannot be read is a startup error."""
    try:
        return await open_gpu(cfg.gpu)
    except CollectorError as exc:
        # The collector's message already names gpu.enabled and the cause.
        raise ConfigError("", f'{exc}; set gpu.enabled = "auto" on hosts that may have no NVIDIA GPU') from exc


async def _discard(source: Source) -> None:
    """Close a source that was built but never run (a running one closes itself when cancelled)."""
    if isinstance(source, Periodic):
        with contextlib.suppress(Exception):
            await source.collector.aclose()


class Agent:
    """Runs until SIGTERM/SIGINT; SIGHUP reloads the config file."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.hub = Hub()
        self.notifier = Notifier()
        self._sources: dict[str, list[_Running]] = {}
        self._source_keys: dict[str, object] = {}
        self._sinks: dict[str, _Running] = {}
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self.prometheus: PrometheusSink | None = None
        self.mqtt: MqttSink | None = None
        self.started = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        raise_nofile_limit()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        try:
            await self._apply(self.cfg, first=True)
            self.notifier.ready()
            self.notifier.status(self._status_line())
            self.started.set()
            log.info("agent %s/%s: running", self.cfg.agent.site, self.cfg.agent.name)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._watchdog(), name="watchdog")
                tg.create_task(self._summaries(), name="summary")
                tg.create_task(self._control(), name="control")
        except* _Stopped:
            pass
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            self.notifier.stopping()
            await self._shutdown()
        return 0

    async def _control(self) -> None:
        while True:
            waits = {asyncio.create_task(self._stop.wait()), asyncio.create_task(self._reload.wait())}
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            if self._stop.is_set():
                log.info("agent: stopping")
                raise _Stopped
            self._reload.clear()
            await self._do_reload()

    async def _do_reload(self) -> None:
        path = self.cfg.path
        if path is None:
            log.warning("reload: no config file to reload (demo mode); ignoring SIGHUP")
            return
        self.notifier.reloading()
        try:
            new = config_mod.load(path)
            await self._apply(new)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config: %s", exc)
        else:
            self.cfg = new
            log.info("reload: applied %s", path)
        self.notifier.ready()

    async def _apply(self, cfg: Config, *, first: bool = False) -> None:
        """Start what `cfg` adds, restart what it changes, stop what it removes.

        New collectors are built before old ones stop, so a config that fails at
        startup (no GPU driver with gpu.enabled = true) leaves the old ones running.
        """
        specs = source_specs(cfg)
        changed = {n: s for n, s in specs.items() if first or self._source_keys.get(n, _ABSENT) != s.key}
        built: dict[str, list[Source]] = {}
        try:
            for name, spec in changed.items():
                built[name] = await spec.build()
            await self._apply_sinks(cfg, first=first)
        except BaseException:
            # Nothing of the refused config runs: let go of what was built for it (an NVML
            # handle and its thread) instead of leaving it open until the process exits.
            for sources in built.values():
                for source in sources:
                    await _discard(source)
            raise
        for name in [n for n in self._sources if n not in specs or n in changed]:
            for running in self._sources.pop(name):
                await self._stop_one(running)
            self._source_keys.pop(name, None)
        for name, sources in built.items():
            self._source_keys[name] = specs[name].key
            self._sources[name] = [self._start_source(s) for s in sources]

    async def _apply_sinks(self, cfg: Config, *, first: bool) -> None:
        old = self._sinks.get("prometheus")
        known = self.prometheus.store if self.prometheus is not None else None
        if old is not None and (first or old.key != cfg.prometheus):
            # Often the same address: the old listener must let go before the new one binds.
            await self._stop_one(self._sinks.pop("prometheus"))
            self.hub.sinks.pop("prometheus", None)
            self.prometheus = None
        if cfg.prometheus.enabled and "prometheus" not in self._sinks:
            sink = PrometheusSink(cfg.prometheus)
            try:
                await sink.start()
            except ConfigError:
                if old is not None and not first:
                    restored = PrometheusSink(self.cfg.prometheus)
                    await restored.start()
                    self._start_sink("prometheus", self.cfg.prometheus, restored, known)
                raise
            self._start_sink("prometheus", cfg.prometheus, sink, known)

        old_mqtt = self._sinks.get("mqtt")
        mqtt_key = (cfg.mqtt, cfg.agent)
        if old_mqtt is not None and (not cfg.mqtt.enabled or old_mqtt.key != mqtt_key):
            # aclose publishes the retained "offline" and closes the outbox file
            # before a new sink opens it again.
            self.hub.sinks.pop("mqtt", None)
            self.mqtt = None
            await self._stop_one(self._sinks.pop("mqtt"))
        if cfg.mqtt.enabled and "mqtt" not in self._sinks:
            mqtt = MqttSink(cfg.mqtt, cfg.agent)
            self.mqtt = mqtt
            self._start_sink("mqtt", mqtt_key, mqtt)

    def _mqtt_self_snapshot(self) -> Snapshot | None:
        return self.mqtt.self_snapshot() if self.mqtt is not None else None

    def _start_sink(self, name: str, key: object, sink: Sink, known: MetricStore | None = None) -> None:
        if isinstance(sink, PrometheusSink):
            self.prometheus = sink
            sink.add_provider(self._mqtt_self_snapshot)
            if known is not None:
                # A rebuilt endpoint starts from what the old one served, not from nothing.
                sink.store.adopt(known)
        self.hub.sinks[name] = sink
        task = asyncio.create_task(sink.run(), name=f"sink:{name}")
        self._sinks[name] = _Running(key, task, sink.aclose)

    def _start_source(self, source: Source) -> _Running:
        return _Running(None, asyncio.create_task(self._guard(source), name=f"source:{source.name}"))

    async def _guard(self, source: Source) -> None:
        """A source that crashes is restarted after a pause instead of taking the agent down."""
        backoff = 1.0
        while True:
            try:
                await source.run(self.hub.emit)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("source %s crashed; restarting in %.0fs", source.name, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    async def _stop_one(self, running: _Running) -> None:
        """Stop a component. A sink is closed first so it can flush and say goodbye
        over its live connection; only then is its task cancelled."""
        if running.close is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_TIMEOUT * 0.8):
                    await running.close()
        running.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            async with asyncio.timeout(STOP_TIMEOUT / 4):
                await running.task

    async def _shutdown(self) -> None:
        sources = [r for group in self._sources.values() for r in group]
        self._sources.clear()
        await asyncio.gather(*(self._stop_one(r) for r in sources))
        sinks = list(self._sinks.values())
        self._sinks.clear()
        await asyncio.gather(*(self._stop_one(r) for r in sinks))
        log.info("agent: stopped")

    def _summary_period(self) -> float:
        """The shortest collection interval, at least 5 s: totals change no faster than that."""
        cfg = self.cfg
        intervals = [cfg.host.interval]
        if cfg.asic.enabled:
            intervals.append(cfg.asic.interval)
        if cfg.gpu.enabled is not False:
            intervals.append(cfg.gpu.interval)
        return max(5.0, min(intervals))

    async def _summaries(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while True:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            # Read each round: a reload that changes the intervals changes the summary's period too.
            deadline = max(deadline + self._summary_period(), loop.time())
            self.hub.emit(Update(snapshots=(site_summary(list(self.hub.totals.values()), self.cfg.agent.site),)))

    async def _watchdog(self) -> None:
        interval = self.notifier.watchdog_interval()
        if interval is None:
            await asyncio.Event().wait()
            return
        # Pinging from the event loop itself: if the loop wedges, systemd restarts us.
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval / 2)

    def _status_line(self) -> str:
        parts = [f"site {self.cfg.agent.site}"]
        if self.prometheus is not None:
            parts.append(f"metrics on :{self.cfg.prometheus.port}")
        parts.append(f"{len(self._sources)} collectors")
        return ", ".join(parts)


class _Stopped(Exception):
    pass


_ABSENT = object()


def raise_nofile_limit() -> None:
    """Raise the open-file soft limit to the hard limit: every miner poll is a socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
