"""The GPU collector: NVML on one dedicated thread, XID events on another.

`open_gpu()` initialises NVML once and enumerates the GPUs; `GpuCollector.collect()`
reads every GPU in one hop to the NVML thread; `GpuCollector.xid_source()` is a
self-driving source that watches XID critical errors on its own event thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pynvml as nv

from edge_agent.collectors.gpu.read import GpuLost, GpuState, Reader, XidBook, handle_id, text
from edge_agent.collectors.gpu.worker import NvmlThread
from edge_agent.config import GpuConfig
from edge_agent.errors import CollectorError
from edge_agent.model import Emit, Event, Snapshot, Update

if TYPE_CHECKING:
    from edge_agent.model import Collector, Source

log = logging.getLogger(__name__)

# nvmlInit without persistence mode can take seconds per GPU; past this the driver is wedged.
OPEN_TIMEOUT = 60.0
# nvmlEventSetWait_v2 timeout: bounds how long the event thread takes to notice a stop.
XID_WAIT_MS = 500
XID_STOP_TIMEOUT = 2.0
SHUTDOWN_TIMEOUT = 5.0

_NO_DRIVER: dict[type[BaseException], str] = {
    nv.NVMLError_LibraryNotFound: "no NVIDIA driver (libnvidia-ml.so.1 not found)",
    nv.NVMLError_DriverNotLoaded: "the NVIDIA kernel driver is not loaded",
    nv.NVMLError_LibRmVersionMismatch: (
        "the NVIDIA driver and libnvidia-ml versions differ (driver upgraded without a reboot?)"
    ),
}


class _InitError(Exception):
    def __init__(self, message: str, *, no_driver: bool) -> None:
        super().__init__(message)
        self.message = message
        self.no_driver = no_driver


def describe(exc: BaseException) -> str:
    """An NVML error as text, without calling into the library (str() may call nvmlErrorString)."""
    if isinstance(exc, nv.NVMLError):
        name = type(exc).__name__.removeprefix("NVMLError_") or "NVMLError"
        return f"{name} (NVML error {exc.value})"
    return f"{type(exc).__name__}: {exc}"


async def open_gpu(cfg: GpuConfig, *, open_timeout: float = OPEN_TIMEOUT) -> GpuCollector | None:
    """Initialise NVML and enumerate GPUs according to `cfg.enabled`.

    - False: returns None without loading NVML.
    - "auto": returns None after one log line if there is no driver, NVML fails
      to start, or the driver sees no GPU.
    - True: raises CollectorError when NVML cannot start (a startup error).

    Either way, NVML that does not answer within `open_timeout` counts as not starting.
    """
    if cfg.enabled is False:
        return None
    worker = NvmlThread("nvml")
    try:
        async with asyncio.timeout(open_timeout):
            reader, gpus = await worker.call(functools.partial(_open_sync, cfg))
    except TimeoutError:
        worker.stop()
        _refuse(cfg, f"NVML did not start within {open_timeout:g} s", no_driver=False, cause=None)
        return None
    except _InitError as exc:
        worker.stop()
        _refuse(cfg, exc.message, no_driver=exc.no_driver, cause=exc)
        return None
    if not gpus:
        if cfg.enabled == "auto":
            log.info("gpu: NVIDIA driver %s sees no GPU; GPU collection off", reader.driver_version or "?")
            with contextlib.suppress(Exception):
                await worker.call(nv.nvmlShutdown)
            worker.stop()
            return None
        log.warning("gpu: gpu.enabled = true but NVIDIA driver %s sees no GPU", reader.driver_version or "?")
    log.info(
        "gpu: NVML up, driver %s, %d GPU(s): %s",
        reader.driver_version or "?",
        len(gpus),
        ", ".join(f"{g.index}={g.name or '?'} {g.device}" for g in gpus),
    )
    return GpuCollector(worker, reader, gpus)


def _refuse(cfg: GpuConfig, message: str, *, no_driver: bool, cause: BaseException | None) -> None:
    if cfg.enabled is True:
        raise CollectorError(f"gpu.enabled = true but {message}") from cause
    if no_driver:
        log.info('gpu: %s; GPU collection off (gpu.enabled = "auto")', message)
    else:
        log.warning('gpu: %s; GPU collection off (gpu.enabled = "auto")', message)


def _open_sync(cfg: GpuConfig) -> tuple[Reader, list[GpuState]]:
    """nvmlInit and enumeration; runs on the NVML thread."""
    try:
        nv.nvmlInit()
    except nv.NVMLError as exc:
        for cls, message in _NO_DRIVER.items():
            if isinstance(exc, cls):
                raise _InitError(message, no_driver=True) from exc
        raise _InitError(f"nvmlInit failed: {describe(exc)}", no_driver=False) from exc
    except (nv.NVMLLibraryMismatchError, OSError) as exc:
        raise _InitError(f"nvmlInit failed: {describe(exc)}", no_driver=False) from exc
    try:
        try:
            driver = text(nv.nvmlSystemGetDriverVersion())
        except nv.NVMLError:
            driver = ""
        reader = Reader(driver, cfg.max_processes, XidBook())
        gpus = [GpuState(i) for i in range(nv.nvmlDeviceGetCount())]
        for g in gpus:
            with contextlib.suppress(GpuLost):
                # A GPU that cannot be identified now is retried (and reported down) on each collection.
                reader.identify(g)
    except (nv.NVMLError, nv.NVMLLibraryMismatchError) as exc:
        with contextlib.suppress(nv.NVMLError):
            nv.nvmlShutdown()
        raise _InitError(f"NVML could not enumerate GPUs: {describe(exc)}", no_driver=False) from exc
    return reader, gpus


class GpuCollector:
    """Reads every GPU on the host; one Snapshot per GPU, keyed by its UUID."""

    name = "gpu"

    def __init__(self, worker: NvmlThread, reader: Reader, gpus: list[GpuState]) -> None:
        self._worker = worker
        self._reader = reader
        self._gpus = gpus
        self._closed = False
        self._xid: _XidThread | None = None

    @property
    def gpu_count(self) -> int:
        return len(self._gpus)

    @property
    def driver_version(self) -> str:
        return self._reader.driver_version

    @property
    def busy(self) -> bool:
        """True while an NVML call from a collection is still running (or stuck) on the NVML thread."""
        return self._worker.busy

    async def collect(self) -> Update:
        """Read all GPUs in one hop to the NVML thread.

        Raises CollectorError immediately if the previous NVML call is still
        stuck, or if NVML as a whole failed. A lost GPU is a snapshot with
        up=False, not an error.
        """
        if self._closed:
            raise CollectorError("GPU collector is closed")
        try:
            return await self._worker.call(self._collect_sync)
        except (nv.NVMLError, nv.NVMLLibraryMismatchError) as exc:
            raise CollectorError(f"NVML failed: {describe(exc)}") from exc

    def _collect_sync(self) -> Update:
        ts = time.time()
        snapshots: list[Snapshot] = []
        removed: list[tuple[str, str]] = []
        for g in self._gpus:
            snap = self._reader.snapshot(g, ts)
            if g.reported_device and g.reported_device != snap.device:
                # Identified after being reported by index: drop the placeholder.
                removed.append(("gpu", g.reported_device))
            g.reported_device = snap.device
            snapshots.append(snap)
        return Update(snapshots=tuple(snapshots), removed=tuple(removed))

    def xid_source(self) -> XidSource | None:
        """The XID event source for these GPUs, or None when there are none."""
        if not self._gpus:
            return None
        return XidSource(self)

    async def aclose(self) -> None:
        """Stop the XID thread, then nvmlShutdown on the NVML thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        stopped = await self._stop_xid()
        if not stopped:
            log.warning("gpu: XID event thread still in NVML; skipping nvmlShutdown")
        elif self._worker.busy:
            log.warning("gpu: an NVML call is still stuck; skipping nvmlShutdown")
        else:
            try:
                async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                    await self._worker.call(nv.nvmlShutdown)
            except (TimeoutError, CollectorError, nv.NVMLError) as exc:
                log.warning("gpu: nvmlShutdown failed: %s", describe(exc))
        self._worker.stop()

    # -- XID event thread -----------------------------------------------------

    def _start_xid(self, deliver: Callable[[Event | None], None], loop: asyncio.AbstractEventLoop) -> _XidThread:
        if self._closed:
            raise CollectorError("GPU collector is closed")
        if self._xid is not None:
            raise CollectorError("the GPU XID source is already running")
        xid = _XidThread(self._gpus, self._reader.xids, deliver, loop)
        self._xid = xid
        xid.thread.start()
        return xid

    async def _stop_xid(self) -> bool:
        xid = self._xid
        if xid is None:
            return True
        xid.stop.set()
        xid.closed.set()
        try:
            async with asyncio.timeout(XID_STOP_TIMEOUT):
                await xid.exited.wait()
        except TimeoutError:
            return False
        finally:
            if self._xid is xid and xid.exited.is_set():
                self._xid = None
        xid.thread.join(0.5)  # it has posted `exited` as its last act
        return True


class XidSource:
    """Emits an Update with a `gpu_xid` Event for each XID critical error.

    The counters (gpu_xid_errors_total, gpu_xid_last_timestamp_seconds) ride in
    the collector's next per-GPU snapshots, so this source never emits a
    partial snapshot that would replace a full one in the sinks.
    """

    name = "gpu-xid"

    def __init__(self, collector: GpuCollector) -> None:
        self._collector = collector

    @property
    def thread(self) -> threading.Thread | None:
        xid = self._collector._xid
        return xid.thread if xid is not None else None

    async def run(self, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        xid = self._collector._start_xid(queue.put_nowait, loop)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    if xid.stop.is_set():
                        return  # the collector was closed
                    # Nothing to watch (no GPU supports XID events): idle until closed.
                    await xid.closed.wait()
                    return
                batch = [item]
                while not queue.empty():
                    more = queue.get_nowait()
                    if more is not None:
                        batch.append(more)
                emit(Update(events=tuple(batch)))
        finally:
            xid.closed.set()
            await self._collector._stop_xid()


class _XidThread:
    """nvmlEventSetCreate / RegisterEvents / EventSetWait_v2 on a dedicated thread."""

    def __init__(
        self,
        gpus: list[GpuState],
        book: XidBook,
        deliver: Callable[[Event | None], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.gpus = gpus
        self.book = book
        self.deliver = deliver
        self.loop = loop
        self.stop = threading.Event()
        self.exited = asyncio.Event()
        self.closed = asyncio.Event()
        self.thread = threading.Thread(target=self._main, name="nvml-xid", daemon=True)

    def _post(self, fn: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed
            self.loop.call_soon_threadsafe(fn, *args)

    def _main(self) -> None:
        try:
            self._watch()
        except Exception:
            log.exception("gpu: XID event thread failed; XID errors are no longer reported")
        finally:
            self._post(self.deliver, None)
            self._post(self.exited.set)

    def _watch(self) -> None:
        try:
            evset = nv.nvmlEventSetCreate()
        except nv.NVMLError as exc:
            log.warning("gpu: cannot create an NVML event set (%s); XID errors not reported", describe(exc))
            return
        try:
            watched = self._register(evset)
            if not watched:
                log.info("gpu: no GPU supports XID event notification; XID errors not reported")
                return
            failing = False
            while not self.stop.is_set():
                try:
                    data = nv.nvmlEventSetWait_v2(evset, XID_WAIT_MS)
                except nv.NVMLError_Timeout:
                    failing = False
                    continue
                except nv.NVMLError as exc:
                    # A lost GPU can make every wait fail at once; don't spin on it.
                    if not failing:
                        failing = True
                        log.warning("gpu: waiting for XID events failed: %s", describe(exc))
                    self.stop.wait(1.0)
                    continue
                failing = False
                if not data.eventType & nv.nvmlEventTypeXidCriticalError:
                    continue
                self._report(watched.get(handle_id(data.device)), int(data.eventData))
        finally:
            with contextlib.suppress(nv.NVMLError):
                nv.nvmlEventSetFree(evset)

    def _register(self, evset: Any) -> dict[int, GpuState]:
        watched: dict[int, GpuState] = {}
        for g in self.gpus:
            if g.handle is None:
                continue
            try:
                nv.nvmlDeviceRegisterEvents(g.handle, nv.nvmlEventTypeXidCriticalError, evset)
            except nv.NVMLError_NotSupported:
                log.info("gpu %s: XID events not supported", g.device)
                continue
            except nv.NVMLError as exc:
                log.warning("gpu %s: cannot register for XID events: %s", g.device, describe(exc))
                continue
            watched[handle_id(g.handle)] = g
        return watched

    def _report(self, g: GpuState | None, xid: int) -> None:
        ts = time.time()
        if g is None:
            log.warning("gpu: XID %d from a device not being collected", xid)
            return
        self.book.record(g.index, xid, ts)
        log.warning("gpu %s (index %d): XID %d", g.device, g.index, xid)
        self._post(self.deliver, Event("gpu_xid", g.device, ts, {"gpu": g.index, "xid": xid}))


if TYPE_CHECKING:

    def _conforms(collector: GpuCollector, source: XidSource) -> tuple[Collector, Source]:
        # mypy checks here that both satisfy the runtime's protocols.
        return collector, source
