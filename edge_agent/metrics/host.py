"""Metric rows for the host domain: node_exporter's semantics under the prefix `host_`."""

from __future__ import annotations

from edge_agent.metrics.spec import Metric, table

_FS = ("device", "mountpoint", "fstype")

METRICS: dict[str, Metric] = table(
    Metric(
        "host_cpu_seconds_total", "counter", "Seconds the CPUs spent in each mode.", ("cpu", "mode"), "seconds", "cpus"
    ),
    Metric("host_load1", "gauge", "1-minute load average."),
    Metric("host_load5", "gauge", "5-minute load average."),
    Metric("host_load15", "gauge", "15-minute load average."),
    Metric("host_context_switches_total", "counter", "Context switches since boot."),
    Metric("host_intr_total", "counter", "Interrupts serviced since boot."),
    Metric("host_memory_total_bytes", "gauge", "Physical memory (MemTotal).", unit="bytes"),
    Metric(
        "host_memory_available_bytes",
        "gauge",
        "Memory available for new work without swapping (MemAvailable).",
        unit="bytes",
    ),
    Metric("host_memory_free_bytes", "gauge", "Memory not used at all (MemFree).", unit="bytes"),
    Metric("host_memory_buffers_bytes", "gauge", "Memory in block device buffers (Buffers).", unit="bytes"),
    Metric("host_memory_cached_bytes", "gauge", "Memory in the page cache (Cached).", unit="bytes"),
    Metric("host_swap_total_bytes", "gauge", "Swap space (SwapTotal).", unit="bytes"),
    Metric("host_swap_free_bytes", "gauge", "Unused swap space (SwapFree).", unit="bytes"),
    Metric("host_filesystem_size_bytes", "gauge", "Filesystem size.", _FS, "bytes", "filesystems"),
    Metric(
        "host_filesystem_free_bytes",
        "gauge",
        "Free space, including root-reserved blocks.",
        _FS,
        "bytes",
        "filesystems",
    ),
    Metric(
        "host_filesystem_avail_bytes",
        "gauge",
        "Space available to unprivileged users.",
        _FS,
        "bytes",
        "filesystems",
    ),
    Metric("host_filesystem_files", "gauge", "Inodes in the filesystem.", _FS, group="filesystems"),
    Metric("host_filesystem_files_free", "gauge", "Free inodes.", _FS, group="filesystems"),
    Metric("host_filesystem_readonly", "gauge", "1 if mounted read-only.", _FS, group="filesystems"),
    Metric(
        "host_network_receive_bytes_total",
        "counter",
        "Bytes received by the interface.",
        ("device",),
        "bytes",
        "network",
    ),
    Metric(
        "host_network_transmit_bytes_total",
        "counter",
        "Bytes sent by the interface.",
        ("device",),
        "bytes",
        "network",
    ),
    Metric("host_network_receive_packets_total", "counter", "Packets received.", ("device",), group="network"),
    Metric("host_network_transmit_packets_total", "counter", "Packets sent.", ("device",), group="network"),
    Metric("host_network_receive_errs_total", "counter", "Receive errors.", ("device",), group="network"),
    Metric("host_network_transmit_errs_total", "counter", "Transmit errors.", ("device",), group="network"),
    Metric("host_network_receive_drop_total", "counter", "Received packets dropped.", ("device",), group="network"),
    Metric("host_network_transmit_drop_total", "counter", "Sent packets dropped.", ("device",), group="network"),
    Metric("host_disk_read_bytes_total", "counter", "Bytes read from the disk.", ("device",), "bytes", "disks"),
    Metric("host_disk_written_bytes_total", "counter", "Bytes written to the disk.", ("device",), "bytes", "disks"),
    Metric("host_disk_reads_completed_total", "counter", "Reads completed.", ("device",), group="disks"),
    Metric("host_disk_writes_completed_total", "counter", "Writes completed.", ("device",), group="disks"),
    Metric("host_disk_read_time_seconds_total", "counter", "Time spent reading.", ("device",), "seconds", "disks"),
    Metric("host_disk_write_time_seconds_total", "counter", "Time spent writing.", ("device",), "seconds", "disks"),
    Metric(
        "host_disk_io_time_seconds_total",
        "counter",
        "Time the disk spent doing I/O (busy time).",
        ("device",),
        "seconds",
        "disks",
    ),
    Metric(
        "host_hwmon_temp_celsius",
        "gauge",
        "Hardware sensor temperature.",
        ("chip", "sensor"),
        "celsius",
        "temperatures",
    ),
    Metric("host_hwmon_fan_rpm", "gauge", "Hardware fan speed.", ("chip", "sensor"), group="fans"),
    Metric("host_boot_time_seconds", "gauge", "Unix time the host booted.", unit="seconds"),
    Metric(
        "host_uname_info",
        "gauge",
        "Kernel and machine identity (always 1).",
        ("sysname", "release", "version", "machine", "nodename"),
        group="uname",
    ),
)
