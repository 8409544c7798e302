"""Readings from the fake NVML: counts, the metric table, units, NotSupported, lost GPUs."""

from __future__ import annotations

import logging

import pytest
from fakenvml import FakeNvml, Opener

from edge_agent.metrics import METRICS
from edge_agent.metrics import gpu as gpu_metrics
from edge_agent.model import Reading, Snapshot

MIB = 1 << 20


def values(snap: Snapshot, key: str, **labels: str) -> list[float]:
    """Values of `key` in the snapshot whose labels include `labels`."""
    return [r.value for r in snap.readings if r.key == key and labels.items() <= dict(r.labels).items()]


def series(snap: Snapshot) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """(metric, labels) of each reading, without the labels that differ between GPUs by nature."""
    per_gpu = {"gpu", "uuid", "pid", "name", "serial", "pci_bus_id"}
    return {(r.key, tuple(kv for kv in r.labels if kv[0] not in per_gpu)) for r in snap.readings}


def one(snap: Snapshot, key: str, **labels: str) -> float:
    found = values(snap, key, **labels)
    assert len(found) == 1, (key, labels, found)
    return found[0]


@pytest.mark.parametrize("count", [0, 1, 8])
async def test_one_snapshot_per_gpu(fake: FakeNvml, open_collector: Opener, count: int) -> None:
    fake.reset(count)
    collector = await open_collector()
    assert collector is not None
    assert collector.gpu_count == count
    update = await collector.collect()
    assert len(update.snapshots) == count
    assert [s.attrs["index"] for s in update.snapshots] == [str(i) for i in range(count)]
    assert len({s.device for s in update.snapshots}) == count
    for i, snap in enumerate(update.snapshots):
        assert snap.source == "gpu"
        assert snap.up
        assert snap.device == snap.attrs["uuid"]
        assert snap.device.startswith("GPU-")
        assert one(snap, "gpu_up", gpu=str(i), uuid=snap.device) == 1.0
        assert snap.attrs["name"] == "NVIDIA H100 80GB HBM3"
        assert snap.attrs["driver_version"] == "550.54.15"
        assert snap.attrs["pci_bus_id"] == f"00000000:{0x18 + i:02X}:00.0"


async def test_every_reading_matches_the_table(fake: FakeNvml, open_collector: Opener) -> None:
    fake.reset(2)
    fake.set(1, "mig_current", 1)
    fake.set(1, "gfx_procs", 1)
    collector = await open_collector()
    assert collector is not None
    update = await collector.collect()
    seen = set()
    for snap in update.snapshots:
        index = snap.attrs["index"]
        for r in snap.readings:
            assert r.key in METRICS, r.key
            row = METRICS[r.key]
            assert tuple(name for name, _ in r.labels) == row.labels, r
            assert r.labels[:2] == (("gpu", index), ("uuid", snap.device)), r
            assert all(isinstance(v, str) for _, v in r.labels), r
            assert isinstance(r.value, float), r
            seen.add(r.key)
    xid_rows = {"gpu_xid_errors_total", "gpu_xid_last_timestamp_seconds"}  # covered in test_gpu_threads
    mig_only = {"gpu_mig_memory_used_bytes", "gpu_mig_memory_total_bytes"}
    assert mig_only <= seen
    assert set(gpu_metrics.METRICS) - xid_rows == seen


async def test_units_are_converted_from_raw_nvml_values(fake: FakeNvml, open_collector: Opener) -> None:
    fake.reset(2)
    collector = await open_collector()
    assert collector is not None
    update = await collector.collect()
    for i, snap in enumerate(update.snapshots):

        def raw(key: str, gpu: int = i) -> float:
            return fake.get(gpu, key)

        assert one(snap, "gpu_utilization_ratio") == pytest.approx(raw("util_gpu") / 100)
        assert one(snap, "gpu_memory_utilization_ratio") == pytest.approx(raw("util_mem") / 100)
        assert one(snap, "gpu_encoder_utilization_ratio") == pytest.approx(raw("enc_util") / 100)
        assert one(snap, "gpu_decoder_utilization_ratio") == pytest.approx(raw("dec_util") / 100)
        # NVML's memory info is already in bytes.
        assert one(snap, "gpu_memory_used_bytes") == raw("mem_used")
        assert one(snap, "gpu_memory_total_bytes") == raw("mem_total")
        assert one(snap, "gpu_memory_reserved_bytes") == raw("mem_reserved")
        assert one(snap, "gpu_temperature_celsius") == raw("temp")
        assert one(snap, "gpu_memory_temperature_celsius") == raw("mem_temp")
        assert one(snap, "gpu_power_watts") == pytest.approx(raw("power") / 1000)  # mW
        assert one(snap, "gpu_power_limit_watts") == pytest.approx(raw("power_limit") / 1000)
        assert one(snap, "gpu_energy_joules_total") == pytest.approx(raw("energy") / 1000)  # mJ
        for clock, key in (("graphics", "clock_graphics"), ("sm", "clock_sm"), ("memory", "clock_mem")):
            assert one(snap, "gpu_clock_hertz", clock=clock) == raw(key) * 1e6  # MHz
        assert one(snap, "gpu_clock_hertz", clock="video") == raw("clock_video") * 1e6
        assert len(values(snap, "gpu_fan_speed_ratio")) == raw("num_fans")
        assert one(snap, "gpu_fan_speed_ratio", fan="0") == pytest.approx(raw("fan") / 100)
        assert one(snap, "gpu_fan_speed_ratio", fan="1") == pytest.approx((raw("fan") + 1) / 100)
        # reasons_current = 0x5: gpu idle and software power cap.
        active = {dict(r.labels)["reason"] for r in snap.readings if r.key == "gpu_clock_event_active" and r.value}
        assert active == {"gpu_idle", "sw_power_cap"}
        assert len(values(snap, "gpu_clock_event_active")) == 9
        assert one(snap, "gpu_pstate") == raw("pstate")
        assert one(snap, "gpu_ecc_errors_total", type="corrected") == raw("ecc_sbe")
        assert one(snap, "gpu_ecc_errors_total", type="uncorrected") == raw("ecc_dbe")
        assert one(snap, "gpu_remapped_rows_total", type="correctable") == raw("remap_cor")
        assert one(snap, "gpu_remapped_rows_total", type="uncorrectable") == raw("remap_unc")
        assert one(snap, "gpu_row_remap_failure") == raw("remap_failure")
        assert one(snap, "gpu_retired_pages_total", cause="single_bit_ecc") == raw("retired_sbe")
        assert one(snap, "gpu_retired_pages_total", cause="double_bit_ecc") == raw("retired_dbe")
        assert one(snap, "gpu_pcie_replay_total") == raw("pcie_replay")
        assert one(snap, "gpu_pcie_link_generation") == raw("pcie_gen")
        assert one(snap, "gpu_pcie_link_width") == raw("pcie_width")
        links = int(raw("nvlinks"))
        assert len(values(snap, "gpu_nvlink_errors_total")) == links * 3
        for link in range(links):
            # The fake adds the link number so a mixed-up scopeId would show.
            assert one(snap, "gpu_nvlink_errors_total", link=str(link), type="replay") == raw("nvl_replay") + link
            assert one(snap, "gpu_nvlink_errors_total", link=str(link), type="recovery") == raw("nvl_recovery") + link
            assert one(snap, "gpu_nvlink_errors_total", link=str(link), type="crc") == raw("nvl_crc") + link
        assert one(snap, "gpu_processes") == raw("nprocs")
        assert one(snap, "gpu_mig_mode") == 0.0
        info = [r for r in snap.readings if r.key == "gpu_info"]
        assert len(info) == 1 and info[0].value == 1.0
        assert dict(info[0].labels)["serial"] == f"165232300{i:04d}"
        assert dict(info[0].labels)["vbios_version"] == "96.00.74.00.01"


# fake keys made NOT_SUPPORTED on GPU 0 -> (metric, labels) that must be absent there.
NOT_SUPPORTED = [
    (("util_gpu",), [("gpu_utilization_ratio", {}), ("gpu_memory_utilization_ratio", {})]),
    (("enc_util",), [("gpu_encoder_utilization_ratio", {})]),
    (("dec_util",), [("gpu_decoder_utilization_ratio", {})]),
    (
        ("mem_total",),
        [("gpu_memory_used_bytes", {}), ("gpu_memory_total_bytes", {}), ("gpu_memory_reserved_bytes", {})],
    ),
    (("mem_reserved",), [("gpu_memory_reserved_bytes", {})]),
    (("temp",), [("gpu_temperature_celsius", {})]),
    (("mem_temp",), [("gpu_memory_temperature_celsius", {})]),
    (("power",), [("gpu_power_watts", {})]),
    (("power_limit",), [("gpu_power_limit_watts", {})]),
    (("energy",), [("gpu_energy_joules_total", {})]),
    (("clock_sm",), [("gpu_clock_hertz", {"clock": "sm"})]),
    (("clock_video",), [("gpu_clock_hertz", {"clock": "video"})]),
    (("num_fans",), [("gpu_fan_speed_ratio", {})]),
    (("fan",), [("gpu_fan_speed_ratio", {})]),
    (("reasons_current",), [("gpu_clock_event_active", {})]),
    (("pstate",), [("gpu_pstate", {})]),
    (("ecc_sbe",), [("gpu_ecc_errors_total", {"type": "corrected"})]),
    (("ecc_sbe", "ecc_dbe"), [("gpu_ecc_errors_total", {})]),
    (("remap_cor", "remap_unc"), [("gpu_remapped_rows_total", {})]),
    (("remap_failure",), [("gpu_row_remap_failure", {})]),
    (("retired_sbe", "retired_dbe"), [("gpu_retired_pages_total", {})]),
    (("pcie_replay",), [("gpu_pcie_replay_total", {})]),
    (("pcie_gen",), [("gpu_pcie_link_generation", {})]),
    (("pcie_width",), [("gpu_pcie_link_width", {})]),
    (("nvlinks",), [("gpu_nvlink_errors_total", {})]),
    (("nvl_crc",), [("gpu_nvlink_errors_total", {"type": "crc"})]),
    (("nprocs", "gfx_procs"), [("gpu_processes", {}), ("gpu_process_memory_bytes", {})]),
    (("mig_current",), [("gpu_mig_mode", {})]),
]


@pytest.mark.parametrize(("keys", "absent"), NOT_SUPPORTED, ids=["+".join(k) for k, _ in NOT_SUPPORTED])
async def test_not_supported_means_absent_never_zero(
    fake: FakeNvml, open_collector: Opener, keys: tuple[str, ...], absent: list[tuple[str, dict[str, str]]]
) -> None:
    fake.reset(2)
    for key in keys:
        fake.unsupported(0, key)
    collector = await open_collector()
    assert collector is not None
    gpu0, gpu1 = (await collector.collect()).snapshots
    assert gpu0.up and gpu1.up
    for metric, labels in absent:
        assert values(gpu0, metric, **labels) == [], (metric, labels)
        assert values(gpu1, metric, **labels), (metric, labels)  # the other GPU still has it
    # Everything else is still read on the GPU that lacks these readings.
    missing = series(gpu1) - series(gpu0)
    for key, extra in missing:
        assert any(key == m and dict(extra).items() >= lab.items() for m, lab in absent), (key, extra)


async def test_not_supported_serial_leaves_an_empty_label(fake: FakeNvml, open_collector: Opener) -> None:
    fake.unsupported(0, "serial")
    collector = await open_collector()
    assert collector is not None
    (snap,) = (await collector.collect()).snapshots
    info = next(r for r in snap.readings if r.key == "gpu_info")
    assert dict(info.labels)["serial"] == ""
    assert "serial" not in snap.attrs


@pytest.mark.parametrize("raw", [0, 255])
async def test_memory_temperature_placeholder_values_are_absent(
    fake: FakeNvml, open_collector: Opener, raw: int
) -> None:
    # GeForce and L4 boards answer 0 or > 200 instead of NOT_SUPPORTED.
    fake.set(0, "mem_temp", raw)
    collector = await open_collector()
    assert collector is not None
    (snap,) = (await collector.collect()).snapshots
    assert values(snap, "gpu_memory_temperature_celsius") == []


async def test_processes_are_bounded_by_max_processes(fake: FakeNvml, open_collector: Opener) -> None:
    fake.set(0, "nprocs", 10)
    collector = await open_collector(max_processes=3)
    assert collector is not None
    (snap,) = (await collector.collect()).snapshots
    assert one(snap, "gpu_processes") == 10
    procs = [r for r in snap.readings if r.key == "gpu_process_memory_bytes"]
    # The largest users: the fake gives process i (pid 1000+i) (i+1) x 100 MiB.
    assert [dict(r.labels)["pid"] for r in procs] == ["1009", "1008", "1007"]
    assert [r.value for r in procs] == [1000 * MIB, 900 * MIB, 800 * MIB]
    assert dict(procs[0].labels)["name"] == "trainer-1009"


async def test_process_memory_not_available_is_absent(fake: FakeNvml, open_collector: Opener) -> None:
    fake.set(0, "proc_mem_na", 1)
    collector = await open_collector()
    assert collector is not None
    (snap,) = (await collector.collect()).snapshots
    assert one(snap, "gpu_processes") == 2
    assert values(snap, "gpu_process_memory_bytes") == []


async def test_process_counted_once_when_both_compute_and_graphics(fake: FakeNvml, open_collector: Opener) -> None:
    fake.set(0, "gfx_procs", 3)
    collector = await open_collector()
    assert collector is not None
    (snap,) = (await collector.collect()).snapshots
    assert one(snap, "gpu_processes") == 5
    assert len(values(snap, "gpu_process_memory_bytes")) == 5


async def test_mig_instances_report_their_memory(fake: FakeNvml, open_collector: Opener) -> None:
    fake.set(0, "mig_current", 1)
    fake.set(0, "mig_count", 3)
    collector = await open_collector()
    assert collector is not None
    (snap,) = (await collector.collect()).snapshots
    assert one(snap, "gpu_mig_mode") == 1.0
    for i in range(3):
        gi = str(i + 1)
        assert one(snap, "gpu_mig_memory_total_bytes", gpu_instance=gi) == fake.get(0, "mig_mem_total")
        assert one(snap, "gpu_mig_memory_used_bytes", gpu_instance=gi) == fake.get(0, "mig_mem_used") * (i + 1)
    assert len(values(snap, "gpu_mig_memory_used_bytes")) == 3


async def test_lost_gpu_is_down_while_the_others_go_on(
    fake: FakeNvml, open_collector: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    fake.reset(3)
    collector = await open_collector()
    assert collector is not None
    first = await collector.collect()
    assert all(s.up for s in first.snapshots)
    full = len(first.snapshots[1].readings)

    fake.lost_after(1, 5)  # falls off the bus in the middle of the next collection
    caplog.set_level(logging.WARNING, logger="edge_agent")
    for _ in range(3):
        update = await collector.collect()
        gpu0, gpu1, gpu2 = update.snapshots
        assert gpu0.up and gpu2.up
        assert len(gpu0.readings) == full and len(gpu2.readings) == full
        assert not gpu1.up
        assert gpu1.device == first.snapshots[1].device
        assert one(gpu1, "gpu_up", gpu="1") == 0.0
        assert one(gpu1, "gpu_info") == 1.0  # identity is kept so dashboards can name it
        assert values(gpu1, "gpu_power_watts") == []  # nothing half-read survives
        assert update.removed == ()
    lost_lines = [r for r in caplog.records if "lost" in r.getMessage()]
    assert len(lost_lines) == 1, [r.getMessage() for r in caplog.records]
    # Site totals: power sums only GPUs that answered; up/total counts all.
    assert sum(sum(values(s, "gpu_power_watts")) for s in update.snapshots) == pytest.approx(
        (fake.get(0, "power") + fake.get(2, "power")) / 1000
    )
    assert [one(s, "gpu_up") for s in update.snapshots] == [1.0, 0.0, 1.0]


async def test_gpu_lost_before_open_is_reported_by_index(fake: FakeNvml, open_collector: Opener) -> None:
    fake.reset(2)
    fake.lost_after(0, 0)
    collector = await open_collector()
    assert collector is not None
    gpu0, gpu1 = (await collector.collect()).snapshots
    assert (gpu0.device, gpu0.up) == ("gpu0", False)
    assert gpu0.readings == (Reading("gpu_up", 0.0, (("gpu", "0"), ("uuid", ""))),)
    assert gpu1.up


async def test_gpu_identified_late_replaces_its_placeholder(
    fake: FakeNvml, open_collector: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    fake.reset(2)
    fake.lost_after(0, 0)
    collector = await open_collector()
    assert collector is not None
    caplog.set_level(logging.INFO, logger="edge_agent")
    first = await collector.collect()
    assert first.snapshots[0].device == "gpu0" and not first.snapshots[0].up

    fake.lost_after(0, 1_000_000)  # back on the bus (after a reset)
    second = await collector.collect()
    gpu0 = second.snapshots[0]
    assert gpu0.up and gpu0.device.startswith("GPU-")
    assert second.removed == (("gpu", "gpu0"),)
    assert (await collector.collect()).removed == ()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("lost" in m for m in messages) == 1
    assert sum("answering again" in m for m in messages) == 1
