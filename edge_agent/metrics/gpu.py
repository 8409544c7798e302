"""Metric rows for the gpu domain: NVIDIA GPUs read through NVML.

Every series carries `gpu` (the NVML index) and `uuid` first; they name the
device, so the MQTT payload groups only the series that have labels beyond
those two. Names follow the dcgm-exporter defaults an operator already graphs
(the README maps them field by field), in SI units.
"""

from __future__ import annotations

from edge_agent.metrics.spec import Metric, table

_GPU = ("gpu", "uuid")

METRICS: dict[str, Metric] = table(
    Metric(
        "gpu_info",
        "gauge",
        "Identity of the GPU (always 1).",
        (*_GPU, "name", "pci_bus_id", "driver_version", "vbios_version", "serial"),
        group="info",
    ),
    Metric("gpu_up", "gauge", "1 if the GPU answered NVML, 0 if it is lost (fell off the bus).", _GPU),
    Metric(
        "gpu_utilization_ratio",
        "gauge",
        "Fraction of the last sample period in which a kernel ran on the GPU.",
        _GPU,
        unit="ratio",
    ),
    Metric(
        "gpu_memory_utilization_ratio",
        "gauge",
        "Fraction of the last sample period in which device memory was read or written.",
        _GPU,
        unit="ratio",
    ),
    Metric("gpu_encoder_utilization_ratio", "gauge", "Video encoder utilization.", _GPU, unit="ratio"),
    Metric("gpu_decoder_utilization_ratio", "gauge", "Video decoder utilization.", _GPU, unit="ratio"),
    Metric("gpu_memory_used_bytes", "gauge", "Device memory allocated.", _GPU, unit="bytes"),
    Metric("gpu_memory_total_bytes", "gauge", "Device memory installed.", _GPU, unit="bytes"),
    Metric(
        "gpu_memory_reserved_bytes",
        "gauge",
        "Device memory reserved by the driver and firmware (driver >= 510).",
        _GPU,
        unit="bytes",
    ),
    Metric("gpu_temperature_celsius", "gauge", "GPU die temperature.", _GPU, unit="celsius"),
    Metric("gpu_memory_temperature_celsius", "gauge", "HBM memory temperature.", _GPU, unit="celsius"),
    Metric(
        "gpu_power_watts",
        "gauge",
        "Power drawn by the board (a 1 s average on Ampere and later).",
        _GPU,
        unit="watts",
    ),
    Metric("gpu_power_limit_watts", "gauge", "Power limit the driver enforces.", _GPU, unit="watts"),
    Metric(
        "gpu_energy_joules_total",
        "counter",
        "Energy consumed since the driver was loaded (resets when it reloads).",
        _GPU,
        unit="joules",
    ),
    Metric(
        "gpu_clock_hertz",
        "gauge",
        "Current clock frequency by domain (graphics, sm, memory, video).",
        (*_GPU, "clock"),
        unit="hertz",
        group="clocks",
    ),
    Metric(
        "gpu_fan_speed_ratio",
        "gauge",
        "Intended fan speed as a fraction of its maximum.",
        (*_GPU, "fan"),
        unit="ratio",
        group="fans",
    ),
    Metric(
        "gpu_clock_event_active",
        "gauge",
        "1 while the reason is holding clocks down (power cap, thermal, hardware slowdown...), else 0.",
        (*_GPU, "reason"),
        group="clock_events",
    ),
    Metric("gpu_pstate", "gauge", "Performance state (0 is the highest, 15 the lowest).", _GPU),
    Metric(
        "gpu_ecc_errors_total",
        "counter",
        "ECC errors in device memory since the driver was loaded (volatile counters).",
        (*_GPU, "type"),
        group="ecc",
    ),
    Metric(
        "gpu_remapped_rows_total",
        "counter",
        "Memory rows remapped after correctable or uncorrectable errors.",
        (*_GPU, "type"),
        group="remapped_rows",
    ),
    Metric("gpu_row_remap_failure", "gauge", "1 if a row remapping has failed (the GPU needs service).", _GPU),
    Metric(
        "gpu_retired_pages_total",
        "counter",
        "Memory pages retired (pre-Ampere page retirement), by the ECC error type that caused it.",
        (*_GPU, "cause"),
        group="retired_pages",
    ),
    Metric("gpu_pcie_replay_total", "counter", "PCIe link replays (retransmissions).", _GPU),
    Metric("gpu_pcie_link_generation", "gauge", "Current PCIe link generation.", _GPU),
    Metric("gpu_pcie_link_width", "gauge", "Current PCIe link width in lanes.", _GPU),
    Metric(
        "gpu_nvlink_errors_total",
        "counter",
        "NVLink data-link errors per active link (replay, recovery, crc).",
        (*_GPU, "link", "type"),
        group="nvlink",
    ),
    Metric("gpu_processes", "gauge", "Compute and graphics processes running on the GPU.", _GPU),
    Metric(
        "gpu_process_memory_bytes",
        "gauge",
        "Device memory used by a process (the largest users, up to gpu.max_processes).",
        (*_GPU, "pid", "name"),
        unit="bytes",
        group="processes",
    ),
    Metric("gpu_mig_mode", "gauge", "1 if Multi-Instance GPU mode is enabled, 0 if disabled.", _GPU),
    Metric(
        "gpu_mig_memory_used_bytes",
        "gauge",
        "Device memory used in a MIG instance.",
        (*_GPU, "gpu_instance", "compute_instance"),
        unit="bytes",
        group="mig",
    ),
    Metric(
        "gpu_mig_memory_total_bytes",
        "gauge",
        "Device memory of a MIG instance.",
        (*_GPU, "gpu_instance", "compute_instance"),
        unit="bytes",
        group="mig",
    ),
    Metric(
        "gpu_xid_errors_total",
        "counter",
        "XID critical errors reported by the driver since the agent started, by XID code.",
        (*_GPU, "xid"),
        group="xid",
    ),
    Metric(
        "gpu_xid_last_timestamp_seconds",
        "gauge",
        "Unix time of the last XID error with this code (alert on changes; increase() misses a new code).",
        (*_GPU, "xid"),
        unit="seconds",
        group="xid",
    ),
)
