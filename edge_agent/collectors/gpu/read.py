"""NVML answers -> readings for one GPU. Everything here runs on the NVML thread.

Error policy, per call:
- `GPU_IS_LOST` on any call marks the whole GPU down for this collection
  (`GpuLost`); the other GPUs go on.
- `NOT_SUPPORTED`, `FUNCTION_NOT_FOUND` (an older driver), `NOT_FOUND` and
  pynvml's `NVMLLibraryMismatchError` mean the series is absent for this GPU,
  silently: consumer boards and MIG parents lack many readings.
- `UNINITIALIZED`, `DRIVER_NOT_LOADED`, `LIB_RM_VERSION_MISMATCH` mean NVML
  itself is gone; they propagate and fail the whole collection.
- Any other error drops that series and is logged once per GPU and reading.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pynvml as nv

from edge_agent.model import Labels, Reading, Snapshot

log = logging.getLogger(__name__)

# Errors that mean "this reading does not exist on this GPU/driver".
_ABSENT: tuple[type[BaseException], ...] = (
    nv.NVMLError_NotSupported,
    nv.NVMLError_FunctionNotFound,
    nv.NVMLError_NotFound,
    nv.NVMLError_ArgumentVersionMismatch,
    nv.NVMLLibraryMismatchError,
)
# Errors that mean NVML as a whole is unusable.
FATAL: tuple[type[BaseException], ...] = (
    nv.NVMLError_Uninitialized,
    nv.NVMLError_DriverNotLoaded,
    nv.NVMLError_LibRmVersionMismatch,
)

_MHZ = 1e6
_PCT = 0.01
_MILLI = 1e-3

_CLOCKS = (
    (nv.NVML_CLOCK_GRAPHICS, "graphics"),
    (nv.NVML_CLOCK_SM, "sm"),
    (nv.NVML_CLOCK_MEM, "memory"),
    (nv.NVML_CLOCK_VIDEO, "video"),
)

# nvmlClocksEventReason* bits (same values as the deprecated ThrottleReason names;
# literal so an older nvidia-ml-py without the Event names still works).
CLOCK_EVENT_REASONS = (
    (0x001, "gpu_idle"),
    (0x002, "applications_clocks_setting"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal_slowdown"),
    (0x040, "hw_thermal_slowdown"),
    (0x080, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
)

# Per-GPU counters batched into one nvmlDeviceGetFieldValues call:
# field id -> (metric, extra labels, factor).
_FIELDS: tuple[tuple[int, str, Labels, float], ...] = (
    (nv.NVML_FI_DEV_MEMORY_TEMP, "gpu_memory_temperature_celsius", (), 1.0),
    (nv.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION, "gpu_energy_joules_total", (), _MILLI),
    (nv.NVML_FI_DEV_PCIE_REPLAY_COUNTER, "gpu_pcie_replay_total", (), 1.0),
    (nv.NVML_FI_DEV_ECC_SBE_VOL_TOTAL, "gpu_ecc_errors_total", (("type", "corrected"),), 1.0),
    (nv.NVML_FI_DEV_ECC_DBE_VOL_TOTAL, "gpu_ecc_errors_total", (("type", "uncorrected"),), 1.0),
    (nv.NVML_FI_DEV_RETIRED_SBE, "gpu_retired_pages_total", (("cause", "single_bit_ecc"),), 1.0),
    (nv.NVML_FI_DEV_RETIRED_DBE, "gpu_retired_pages_total", (("cause", "double_bit_ecc"),), 1.0),
    (nv.NVML_FI_DEV_REMAPPED_COR, "gpu_remapped_rows_total", (("type", "correctable"),), 1.0),
    (nv.NVML_FI_DEV_REMAPPED_UNC, "gpu_remapped_rows_total", (("type", "uncorrectable"),), 1.0),
    (nv.NVML_FI_DEV_REMAPPED_FAILURE, "gpu_row_remap_failure", (), 1.0),
)
# Per-link NVLink error counters; the link goes in the field's scopeId.
_NVLINK_FIELDS = (
    (nv.NVML_FI_DEV_NVLINK_ERROR_DL_REPLAY, "replay"),
    (nv.NVML_FI_DEV_NVLINK_ERROR_DL_RECOVERY, "recovery"),
    (nv.NVML_FI_DEV_NVLINK_ERROR_DL_CRC, "crc"),
)
_NVLINK_MAX_LINKS = int(getattr(nv, "NVML_NVLINK_MAX_LINKS", 18))

_FIELD_VALUE = {
    nv.NVML_VALUE_TYPE_DOUBLE: "dVal",
    nv.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
    nv.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
    nv.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
    nv.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
    nv.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
    nv.NVML_VALUE_TYPE_UNSIGNED_SHORT: "usVal",
}

# GeForce and L4 boards answer NVML_FI_DEV_MEMORY_TEMP with 0 or a value above
# 200 instead of NOT_SUPPORTED when there is no HBM sensor.
_MEMORY_TEMP_MAX = 200.0


class GpuLost(Exception):
    """NVML answered GPU_IS_LOST for this GPU: it fell off the bus."""


def text(value: object) -> str:
    """NVML strings arrive as str (newer nvidia-ml-py) or bytes (struct fields)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip("\x00 ").strip()


def handle_id(handle: Any) -> int:
    """A device handle's address, to match event data against known GPUs."""
    return int(ctypes.cast(handle, ctypes.c_void_p).value or 0)


@dataclass(slots=True)
class GpuState:
    """What the collector knows about one GPU between collections."""

    index: int
    handle: Any = None
    uuid: str = ""
    name: str = ""
    pci_bus_id: str = ""
    vbios_version: str = ""
    serial: str = ""
    num_fans: int = 0
    reasons_supported: int | None = None
    nvlinks: tuple[int, ...] = ()
    max_mig: int = 0
    identified: bool = False
    lost: bool = False
    reported_device: str = ""
    warned: set[str] = field(default_factory=set)
    process_names: dict[int, str] = field(default_factory=dict)
    field_ids: list[tuple[int, int]] = field(default_factory=list)

    @property
    def device(self) -> str:
        return self.uuid or f"gpu{self.index}"

    @property
    def labels(self) -> Labels:
        return (("gpu", str(self.index)), ("uuid", self.uuid))


class XidBook:
    """XID counts per GPU, written by the event thread and read by collections."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[int, dict[int, tuple[int, float]]] = {}

    def record(self, gpu: int, xid: int, ts: float) -> None:
        with self._lock:
            per_gpu = self._seen.setdefault(gpu, {})
            count, _ = per_gpu.get(xid, (0, 0.0))
            per_gpu[xid] = (count + 1, ts)

    def readings(self, g: GpuState) -> list[Reading]:
        with self._lock:
            seen = sorted(self._seen.get(g.index, {}).items())
        out: list[Reading] = []
        for xid, (count, ts) in seen:
            labels = (*g.labels, ("xid", str(xid)))
            out.append(Reading("gpu_xid_errors_total", float(count), labels))
            out.append(Reading("gpu_xid_last_timestamp_seconds", ts, labels))
        return out


class Reader:
    """Reads GPUs through NVML. Not thread-safe: used only on the NVML thread."""

    def __init__(self, driver_version: str, max_processes: int, xids: XidBook) -> None:
        self.driver_version = driver_version
        self.max_processes = max_processes
        self.xids = xids

    # -- calls ---------------------------------------------------------------

    def _call(self, g: GpuState, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """One NVML call under the error policy in the module docstring. None means absent."""
        try:
            return fn(*args)
        except nv.NVMLError_GpuIsLost as exc:
            raise GpuLost(what) from exc
        except FATAL:
            raise
        except _ABSENT:
            return None
        except nv.NVMLError as exc:
            if what not in g.warned:
                g.warned.add(what)
                log.warning("gpu %s: %s failed (%s); series omitted", g.device, what, exc)
            return None

    # -- identity (cached; retried until it succeeds) -------------------------

    def identify(self, g: GpuState) -> None:
        if g.handle is None:
            g.handle = self._require(g, "handle", nv.nvmlDeviceGetHandleByIndex, g.index)
        h = g.handle
        g.uuid = text(self._require(g, "uuid", nv.nvmlDeviceGetUUID, h))
        g.name = text(self._call(g, "name", nv.nvmlDeviceGetName, h) or "")
        pci = self._call(g, "pci info", nv.nvmlDeviceGetPciInfo, h)
        g.pci_bus_id = text(pci.busId) if pci is not None else ""
        g.vbios_version = text(self._call(g, "vbios version", nv.nvmlDeviceGetVbiosVersion, h) or "")
        g.serial = text(self._call(g, "serial", nv.nvmlDeviceGetSerial, h) or "")
        g.num_fans = int(self._call(g, "fan count", nv.nvmlDeviceGetNumFans, h) or 0)
        g.reasons_supported = self._call(g, "supported clock event reasons", _supported_reasons, h)
        g.nvlinks = self._active_nvlinks(g)
        g.max_mig = int(self._call(g, "max MIG devices", nv.nvmlDeviceGetMaxMigDeviceCount, h) or 0)
        g.field_ids = [(fid, 0) for fid, *_ in _FIELDS]
        g.field_ids += [(fid, link) for link in g.nvlinks for fid, _ in _NVLINK_FIELDS]
        g.identified = True

    def _require(self, g: GpuState, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """An identity call the GPU cannot be reported without: any failure counts as lost."""
        try:
            return fn(*args)
        except FATAL:
            raise
        except (nv.NVMLError, nv.NVMLLibraryMismatchError) as exc:
            raise GpuLost(f"{what}: {exc}") from exc

    def _active_nvlinks(self, g: GpuState) -> tuple[int, ...]:
        links = []
        for link in range(_NVLINK_MAX_LINKS):
            try:
                if nv.nvmlDeviceGetNvLinkState(g.handle, link) == nv.NVML_FEATURE_ENABLED:
                    links.append(link)
            except nv.NVMLError_GpuIsLost as exc:
                raise GpuLost("nvlink state") from exc
            except nv.NVMLError:
                # NOT_SUPPORTED on a board without NVLink, INVALID_ARGUMENT past its last link.
                break
        return tuple(links)

    # -- one collection ------------------------------------------------------

    def snapshot(self, g: GpuState, ts: float) -> Snapshot:
        try:
            if not g.identified:
                self.identify(g)
            readings = self._read(g)
        except GpuLost as exc:
            if not g.lost:
                g.lost = True
                log.warning("gpu %s (index %d): lost (%s); reporting gpu_up 0", g.device, g.index, exc)
            readings = [Reading("gpu_up", 0.0, g.labels)]
            if g.identified:
                readings.append(self._info(g))
            readings += self.xids.readings(g)
            return Snapshot("gpu", g.device, ts, False, tuple(readings), self._attrs(g))
        if g.lost:
            g.lost = False
            log.info("gpu %s (index %d): answering again", g.device, g.index)
        return Snapshot("gpu", g.device, ts, True, tuple(readings), self._attrs(g))

    def _info(self, g: GpuState) -> Reading:
        labels = (
            *g.labels,
            ("name", g.name),
            ("pci_bus_id", g.pci_bus_id),
            ("driver_version", self.driver_version),
            ("vbios_version", g.vbios_version),
            ("serial", g.serial),
        )
        return Reading("gpu_info", 1.0, labels)

    def _attrs(self, g: GpuState) -> dict[str, str]:
        attrs = {
            "index": str(g.index),
            "uuid": g.uuid,
            "name": g.name,
            "pci_bus_id": g.pci_bus_id,
            "driver_version": self.driver_version,
            "vbios_version": g.vbios_version,
            "serial": g.serial,
        }
        return {k: v for k, v in attrs.items() if v}

    def _read(self, g: GpuState) -> list[Reading]:
        h = g.handle
        lab = g.labels
        out = [Reading("gpu_up", 1.0, lab), self._info(g)]

        def add(key: str, value: float | None, factor: float = 1.0, extra: Labels = ()) -> None:
            if value is not None:
                out.append(Reading(key, float(value) * factor, (*lab, *extra) if extra else lab))

        util = self._call(g, "utilization", nv.nvmlDeviceGetUtilizationRates, h)
        if util is not None:
            add("gpu_utilization_ratio", util.gpu, _PCT)
            add("gpu_memory_utilization_ratio", util.memory, _PCT)
        enc = self._call(g, "encoder utilization", nv.nvmlDeviceGetEncoderUtilization, h)
        add("gpu_encoder_utilization_ratio", enc[0] if enc else None, _PCT)
        dec = self._call(g, "decoder utilization", nv.nvmlDeviceGetDecoderUtilization, h)
        add("gpu_decoder_utilization_ratio", dec[0] if dec else None, _PCT)

        mem = self._call(g, "memory info", _memory_info, h)
        if mem is not None:
            add("gpu_memory_used_bytes", mem.used)
            add("gpu_memory_total_bytes", mem.total)
            add("gpu_memory_reserved_bytes", getattr(mem, "reserved", None))

        add(
            "gpu_temperature_celsius",
            self._call(g, "temperature", nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
        )
        add("gpu_power_watts", self._call(g, "power usage", nv.nvmlDeviceGetPowerUsage, h), _MILLI)
        add("gpu_power_limit_watts", self._call(g, "power limit", nv.nvmlDeviceGetEnforcedPowerLimit, h), _MILLI)

        for clock_type, clock in _CLOCKS:
            mhz = self._call(g, f"{clock} clock", nv.nvmlDeviceGetClockInfo, h, clock_type)
            add("gpu_clock_hertz", mhz, _MHZ, (("clock", clock),))
        for fan in range(g.num_fans):
            pct = self._call(g, f"fan {fan} speed", nv.nvmlDeviceGetFanSpeed_v2, h, fan)
            add("gpu_fan_speed_ratio", pct, _PCT, (("fan", str(fan)),))

        reasons = self._call(g, "clock event reasons", _current_reasons, h)
        if reasons is not None:
            supported = g.reasons_supported if g.reasons_supported is not None else -1
            for bit, reason in CLOCK_EVENT_REASONS:
                if supported & bit:
                    add("gpu_clock_event_active", 1.0 if reasons & bit else 0.0, extra=(("reason", reason),))

        pstate = self._call(g, "performance state", nv.nvmlDeviceGetPerformanceState, h)
        if pstate is not None and pstate != nv.NVML_PSTATE_UNKNOWN:
            add("gpu_pstate", pstate)
        add("gpu_pcie_link_generation", self._call(g, "pcie generation", nv.nvmlDeviceGetCurrPcieLinkGeneration, h))
        add("gpu_pcie_link_width", self._call(g, "pcie width", nv.nvmlDeviceGetCurrPcieLinkWidth, h))

        out += self._fields(g)
        out += self._processes(g)
        out += self._mig(g)
        out += self.xids.readings(g)
        return out

    def _fields(self, g: GpuState) -> list[Reading]:
        values = self._call(g, "field values", nv.nvmlDeviceGetFieldValues, g.handle, g.field_ids)
        if values is None:
            return []
        out: list[Reading] = []
        n_plain = len(_FIELDS)
        for i, entry in enumerate(values):
            # The call succeeds if any entry was filled: each entry has its own return code.
            if entry.nvmlReturn == nv.NVML_ERROR_GPU_IS_LOST:
                raise GpuLost("field values")
            if entry.nvmlReturn != nv.NVML_SUCCESS:
                continue
            attr = _FIELD_VALUE.get(entry.valueType)
            if attr is None:
                continue
            value = float(getattr(entry.value, attr))
            if i < n_plain:
                fid, key, extra, factor = _FIELDS[i]
                if fid == nv.NVML_FI_DEV_MEMORY_TEMP and not 0 < value <= _MEMORY_TEMP_MAX:
                    continue
                out.append(Reading(key, value * factor, (*g.labels, *extra)))
            else:
                fid, link = g.field_ids[i]
                kind = next(name for f, name in _NVLINK_FIELDS if f == fid)
                out.append(Reading("gpu_nvlink_errors_total", value, (*g.labels, ("link", str(link)), ("type", kind))))
        return out

    def _processes(self, g: GpuState) -> list[Reading]:
        compute = self._call(g, "compute processes", nv.nvmlDeviceGetComputeRunningProcesses, g.handle)
        graphics = self._call(g, "graphics processes", nv.nvmlDeviceGetGraphicsRunningProcesses, g.handle)
        if compute is None and graphics is None:
            return []
        used: dict[int, int | None] = {}
        for proc in [*(compute or ()), *(graphics or ())]:
            pid = int(proc.pid)
            mem = proc.usedGpuMemory
            # A process in both lists (CUDA + graphics) is one process; keep its known memory.
            if used.get(pid) is None:
                used[pid] = None if mem is None else int(mem)
        out = [Reading("gpu_processes", float(len(used)), g.labels)]
        known = sorted(((m, pid) for pid, m in used.items() if m is not None), reverse=True)
        names: dict[int, str] = {}
        for mem, pid in known[: self.max_processes]:
            # A pid keeps its name while it lives; look it up once, not every collection.
            name = g.process_names.get(pid)
            if name is None:
                raw = self._call(g, "process name", nv.nvmlSystemGetProcessName, pid)
                name = os.path.basename(text(raw)) if raw else ""
            names[pid] = name
            labels = (*g.labels, ("pid", str(pid)), ("name", name))
            out.append(Reading("gpu_process_memory_bytes", float(mem), labels))
        g.process_names = names
        return out

    def _mig(self, g: GpuState) -> list[Reading]:
        mode = self._call(g, "MIG mode", nv.nvmlDeviceGetMigMode, g.handle)
        if mode is None:
            return []
        enabled = mode[0] == nv.NVML_DEVICE_MIG_ENABLE
        out = [Reading("gpu_mig_mode", 1.0 if enabled else 0.0, g.labels)]
        if not enabled:
            return out
        for i in range(g.max_mig):
            mig = self._call(g, "MIG device", nv.nvmlDeviceGetMigDeviceHandleByIndex, g.handle, i)
            if mig is None:
                continue
            gi = self._call(g, "MIG GPU instance", nv.nvmlDeviceGetGpuInstanceId, mig)
            ci = self._call(g, "MIG compute instance", nv.nvmlDeviceGetComputeInstanceId, mig)
            mem = self._call(g, "MIG memory", nv.nvmlDeviceGetMemoryInfo, mig)
            if gi is None or ci is None or mem is None:
                continue
            labels = (*g.labels, ("gpu_instance", str(gi)), ("compute_instance", str(ci)))
            out.append(Reading("gpu_mig_memory_used_bytes", float(mem.used), labels))
            out.append(Reading("gpu_mig_memory_total_bytes", float(mem.total), labels))
        return out


def _memory_info(h: Any) -> Any:
    # v2 adds `reserved`; drivers before 510 lack it, so fall back to v1.
    try:
        return nv.nvmlDeviceGetMemoryInfo(h, version=nv.nvmlMemory_v2)
    except (nv.NVMLError_FunctionNotFound, nv.NVMLError_ArgumentVersionMismatch):
        return nv.nvmlDeviceGetMemoryInfo(h)


def _current_reasons(h: Any) -> Any:
    # The ClocksEvent names replaced ClocksThrottle in driver 535; older drivers only have the latter.
    try:
        return nv.nvmlDeviceGetCurrentClocksEventReasons(h)
    except nv.NVMLError_FunctionNotFound:
        return nv.nvmlDeviceGetCurrentClocksThrottleReasons(h)


def _supported_reasons(h: Any) -> Any:
    try:
        return nv.nvmlDeviceGetSupportedClocksEventReasons(h)
    except nv.NVMLError_FunctionNotFound:
        return nv.nvmlDeviceGetSupportedClocksThrottleReasons(h)
