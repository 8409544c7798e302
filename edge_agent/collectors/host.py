"""The host itself through psutil, with node_exporter's semantics under `host_`."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time

import psutil

from edge_agent.errors import CollectorError
from edge_agent.model import Reading, Snapshot, Update

log = logging.getLogger(__name__)

# node_exporter's defaults (collector/filesystem_linux.go, diskstats_linux.go): pseudo and
# container filesystems and partitions would only duplicate what their parents show.
MOUNT_EXCLUDE = re.compile(r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)")
FSTYPE_EXCLUDE = re.compile(
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|"
    r"overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$"
)
DISK_EXCLUDE = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


class HostCollector:
    """Reads the host in one worker-thread hop per collection."""

    name = "host"

    def __init__(self, host_name: str) -> None:
        self.host_name = host_name
        self._busy = threading.Lock()
        uname = os.uname()
        self._uname = Reading(
            "host_uname_info",
            1.0,
            (
                ("sysname", uname.sysname),
                ("release", uname.release),
                ("version", uname.version),
                ("machine", uname.machine),
                ("nodename", uname.nodename),
            ),
        )

    async def collect(self) -> Update:
        # A statvfs on a hung NFS mount can block forever; the runtime's timeout frees the
        # event loop, and this lock keeps a stuck thread from being joined by another.
        if not self._busy.acquire(blocking=False):
            raise CollectorError("previous host collection is still running (hung filesystem?)")
        try:
            fut = asyncio.to_thread(self._read_locked)
        except BaseException:
            self._busy.release()
            raise
        return await fut

    async def aclose(self) -> None:
        return None

    def _read_locked(self) -> Update:
        try:
            readings = self.read()
        finally:
            self._busy.release()
        snap = Snapshot("host", self.host_name, time.time(), True, tuple(readings), {"name": self.host_name})
        return Update(snapshots=(snap,))

    def read(self) -> list[Reading]:
        out: list[Reading] = [self._uname]
        self._cpu(out)
        self._memory(out)
        self._filesystems(out)
        self._network(out)
        self._disks(out)
        self._sensors(out)
        out.append(Reading("host_boot_time_seconds", float(psutil.boot_time())))
        return out

    @staticmethod
    def _cpu(out: list[Reading]) -> None:
        for i, times in enumerate(psutil.cpu_times(percpu=True)):
            cpu = str(i)
            for mode in CPU_MODES:
                value = getattr(times, mode, None)
                if value is not None:
                    out.append(Reading("host_cpu_seconds_total", float(value), (("cpu", cpu), ("mode", mode))))
        load1, load5, load15 = os.getloadavg()
        out += [Reading("host_load1", load1), Reading("host_load5", load5), Reading("host_load15", load15)]
        stats = psutil.cpu_stats()
        out.append(Reading("host_context_switches_total", float(stats.ctx_switches)))
        out.append(Reading("host_intr_total", float(stats.interrupts)))

    @staticmethod
    def _memory(out: list[Reading]) -> None:
        vm = psutil.virtual_memory()
        out += [
            Reading("host_memory_total_bytes", float(vm.total)),
            Reading("host_memory_available_bytes", float(vm.available)),
            Reading("host_memory_free_bytes", float(vm.free)),
        ]
        for field, key in (("buffers", "host_memory_buffers_bytes"), ("cached", "host_memory_cached_bytes")):
            value = getattr(vm, field, None)
            if value is not None:
                out.append(Reading(key, float(value)))
        sw = psutil.swap_memory()
        out += [Reading("host_swap_total_bytes", float(sw.total)), Reading("host_swap_free_bytes", float(sw.free))]

    @staticmethod
    def _filesystems(out: list[Reading]) -> None:
        seen: set[str] = set()
        for part in psutil.disk_partitions(all=True):
            if MOUNT_EXCLUDE.match(part.mountpoint) or FSTYPE_EXCLUDE.match(part.fstype):
                continue
            if part.mountpoint in seen:
                continue
            seen.add(part.mountpoint)
            try:
                st = os.statvfs(part.mountpoint)
            except OSError as exc:
                log.debug("host: cannot statvfs %s: %s", part.mountpoint, exc)
                continue
            # psutil's disk_usage().free is f_bavail (node's "avail"); node's "free" is
            # f_bfree, which includes root-reserved blocks, so read statvfs directly.
            lab = (("device", part.device), ("mountpoint", part.mountpoint), ("fstype", part.fstype))
            out += [
                Reading("host_filesystem_size_bytes", float(st.f_blocks * st.f_frsize), lab),
                Reading("host_filesystem_free_bytes", float(st.f_bfree * st.f_frsize), lab),
                Reading("host_filesystem_avail_bytes", float(st.f_bavail * st.f_frsize), lab),
                Reading("host_filesystem_files", float(st.f_files), lab),
                Reading("host_filesystem_files_free", float(st.f_ffree), lab),
                Reading("host_filesystem_readonly", 1.0 if st.f_flag & os.ST_RDONLY else 0.0, lab),
            ]

    @staticmethod
    def _network(out: list[Reading]) -> None:
        for dev, c in sorted(psutil.net_io_counters(pernic=True).items()):
            lab = (("device", dev),)
            out += [
                Reading("host_network_receive_bytes_total", float(c.bytes_recv), lab),
                Reading("host_network_transmit_bytes_total", float(c.bytes_sent), lab),
                Reading("host_network_receive_packets_total", float(c.packets_recv), lab),
                Reading("host_network_transmit_packets_total", float(c.packets_sent), lab),
                Reading("host_network_receive_errs_total", float(c.errin), lab),
                Reading("host_network_transmit_errs_total", float(c.errout), lab),
                Reading("host_network_receive_drop_total", float(c.dropin), lab),
                Reading("host_network_transmit_drop_total", float(c.dropout), lab),
            ]

    @staticmethod
    def _disks(out: list[Reading]) -> None:
        counters = psutil.disk_io_counters(perdisk=True, nowrap=True) or {}
        for dev, c in sorted(counters.items()):
            if DISK_EXCLUDE.match(dev):
                continue
            lab = (("device", dev),)
            out += [
                Reading("host_disk_read_bytes_total", float(c.read_bytes), lab),
                Reading("host_disk_written_bytes_total", float(c.write_bytes), lab),
                Reading("host_disk_reads_completed_total", float(c.read_count), lab),
                Reading("host_disk_writes_completed_total", float(c.write_count), lab),
                Reading("host_disk_read_time_seconds_total", c.read_time / 1000.0, lab),
                Reading("host_disk_write_time_seconds_total", c.write_time / 1000.0, lab),
            ]
            busy = getattr(c, "busy_time", None)
            if busy is not None:
                out.append(Reading("host_disk_io_time_seconds_total", busy / 1000.0, lab))

    @staticmethod
    def _sensors(out: list[Reading]) -> None:
        # Some chips repeat a label (several "Composite" entries); the first one wins so
        # no series is exposed twice.
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        temps = getattr(psutil, "sensors_temperatures", None)
        if temps is not None:
            for chip, entries in sorted(temps().items()):
                for i, t in enumerate(entries):
                    lab = (("chip", chip), ("sensor", t.label or f"temp{i + 1}"))
                    if t.current is not None and ("t", lab) not in seen:
                        seen.add(("t", lab))
                        out.append(Reading("host_hwmon_temp_celsius", float(t.current), lab))
        fans = getattr(psutil, "sensors_fans", None)
        if fans is not None:
            for chip, entries in sorted(fans().items()):
                for i, f in enumerate(entries):
                    lab = (("chip", chip), ("sensor", f.label or f"fan{i + 1}"))
                    if ("f", lab) not in seen:
                        seen.add(("f", lab))
                        out.append(Reading("host_hwmon_fan_rpm", float(f.current), lab))
