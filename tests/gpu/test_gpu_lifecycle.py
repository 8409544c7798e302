"""Startup (driver or not), a hanging driver call, XID events and shutdown, on the fake NVML."""

from __future__ import annotations

import asyncio
import ctypes.util
import logging
import socket
import time
from pathlib import Path

import pytest
from fakenvml import FakeNvml, Opener, wait_until

from edge_agent import config as config_mod
from edge_agent.collectors.gpu import open_gpu
from edge_agent.config import Config, GpuConfig
from edge_agent.errors import CollectorError, ConfigError
from edge_agent.model import Update
from edge_agent.runtime import Agent

NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_NO_PERMISSION = 4


def agent_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("edge_agent")]


# -- startup -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (NVML_ERROR_LIBRARY_NOT_FOUND, "no NVIDIA driver"),
        (NVML_ERROR_DRIVER_NOT_LOADED, "kernel driver is not loaded"),
        (NVML_ERROR_LIB_RM_VERSION_MISMATCH, "versions differ"),
    ],
)
async def test_no_driver_with_auto_logs_one_line_and_stays_off(
    fake: FakeNvml, caplog: pytest.LogCaptureFixture, code: int, words: str
) -> None:
    fake.init_error(code)
    caplog.set_level(logging.DEBUG)
    assert await open_gpu(GpuConfig(enabled="auto")) is None
    lines = agent_lines(caplog)
    assert len(lines) == 1, lines
    assert words in lines[0] and "GPU collection off" in lines[0]
    assert caplog.records[-1].levelno == logging.INFO


@pytest.mark.parametrize("code", [NVML_ERROR_LIBRARY_NOT_FOUND, NVML_ERROR_DRIVER_NOT_LOADED])
async def test_no_driver_with_true_is_a_startup_error(fake: FakeNvml, code: int) -> None:
    fake.init_error(code)
    with pytest.raises(CollectorError, match=r"gpu.enabled = true but .*driver"):
        await open_gpu(GpuConfig(enabled=True))


async def test_other_init_failure_with_auto_warns_once(fake: FakeNvml, caplog: pytest.LogCaptureFixture) -> None:
    fake.init_error(NVML_ERROR_NO_PERMISSION)
    caplog.set_level(logging.DEBUG)
    assert await open_gpu(GpuConfig(enabled="auto")) is None
    lines = agent_lines(caplog)
    assert len(lines) == 1 and "NoPermission" in lines[0], lines
    with pytest.raises(CollectorError, match="NoPermission"):
        await open_gpu(GpuConfig(enabled=True))


@pytest.mark.skipif(ctypes.util.find_library("nvidia-ml") is not None, reason="a real libnvidia-ml is installed")
async def test_no_library_at_all(no_library: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert await open_gpu(GpuConfig(enabled="auto")) is None
    lines = agent_lines(caplog)
    assert len(lines) == 1 and "libnvidia-ml.so.1 not found" in lines[0], lines
    with pytest.raises(CollectorError, match=r"libnvidia-ml\.so\.1 not found"):
        await open_gpu(GpuConfig(enabled=True))


async def test_disabled_never_touches_nvml(fake: FakeNvml) -> None:
    assert await open_gpu(GpuConfig(enabled=False)) is None
    assert fake.count("inits") == 0


async def test_driver_without_gpus_with_auto_is_off(fake: FakeNvml, caplog: pytest.LogCaptureFixture) -> None:
    fake.reset(0)
    caplog.set_level(logging.DEBUG)
    assert await open_gpu(GpuConfig(enabled="auto")) is None
    lines = agent_lines(caplog)
    assert len(lines) == 1 and "sees no GPU" in lines[0], lines
    assert fake.count("inits") == fake.count("shutdowns") == 1


@pytest.mark.parametrize("enabled", ["auto", True])
async def test_nvml_that_never_starts_is_given_up(
    fake: FakeNvml, caplog: pytest.LogCaptureFixture, enabled: str | bool
) -> None:
    fake.hang("uuid")  # wedged while enumerating GPUs
    caplog.set_level(logging.DEBUG)
    if enabled is True:
        with pytest.raises(CollectorError, match="did not start within"):
            await open_gpu(GpuConfig(enabled=True), open_timeout=0.05)
    else:
        assert await open_gpu(GpuConfig(enabled="auto"), open_timeout=0.05) is None
        lines = agent_lines(caplog)
        assert len(lines) == 1 and "did not start within" in lines[0], lines
    assert fake.count("hanging") == 1
    fake.release()


# -- a wedged driver call ------------------------------------------------------------


async def test_hanging_call_times_out_and_the_loop_keeps_running(fake: FakeNvml, open_collector: Opener) -> None:
    fake.reset(2)
    collector = await open_collector()
    assert collector is not None
    assert (await collector.collect()).snapshots

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticking = asyncio.create_task(ticker())
    try:
        fake.hang("power")
        collecting = asyncio.create_task(collector.collect())
        await wait_until(lambda: fake.count("hanging") == 1, what="the NVML call to hang")
        # The driver call is stuck on the NVML thread; the event loop is not.
        before = ticks
        await wait_until(lambda: ticks >= before + 20, what="the event loop to keep serving")
        assert not collecting.done()
        assert collector.busy

        # The runtime's timeout cancels the collection...
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await collecting
        # ...and the next one refuses at once instead of queueing behind the stuck call.
        with pytest.raises(CollectorError, match="previous NVML call still running"):
            await collector.collect()
        assert fake.count("hanging") == 1  # answered while the driver call is still stuck

        fake.release()
        await wait_until(lambda: not collector.busy, what="the NVML thread to come back")
        assert len((await collector.collect()).snapshots) == 2
    finally:
        fake.release()
        ticking.cancel()


async def test_aclose_with_a_stuck_call_does_not_block(fake: FakeNvml, caplog: pytest.LogCaptureFixture) -> None:
    collector = await open_gpu(GpuConfig(enabled=True))
    assert collector is not None
    fake.hang("temp")
    collecting = asyncio.create_task(collector.collect())
    await wait_until(lambda: fake.count("hanging") == 1, what="the NVML call to hang")
    collecting.cancel()
    await collector.aclose()
    assert fake.count("shutdowns") == 0  # nvmlShutdown would queue behind the stuck call
    assert any("still stuck" in m for m in agent_lines(caplog))
    fake.release()
    await wait_until(lambda: not collector.busy)


# -- XID events and shutdown -------------------------------------------------------------


async def test_xid_events_are_emitted_and_counted(fake: FakeNvml, open_collector: Opener) -> None:
    fake.reset(3)
    collector = await open_collector()
    assert collector is not None
    source = collector.xid_source()
    assert source is not None and source.name == "gpu-xid"
    updates: list[Update] = []
    running = asyncio.create_task(source.run(updates.append))
    try:
        await wait_until(lambda: fake.count("registered") == 3, what="XID registration")
        t0 = time.time()
        fake.push_xid(1, 79)
        fake.push_xid(1, 79)
        fake.push_xid(2, 13)
        events = lambda: [e for u in updates for e in u.events]  # noqa: E731
        await wait_until(lambda: len(events()) == 3, what="three XID events")
        t1 = time.time()
        snaps = (await collector.collect()).snapshots
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    uuids = [s.device for s in snaps]
    assert [(e.kind, e.device, dict(e.detail)) for e in events()] == [
        ("gpu_xid", uuids[1], {"gpu": 1, "xid": 79}),
        ("gpu_xid", uuids[1], {"gpu": 1, "xid": 79}),
        ("gpu_xid", uuids[2], {"gpu": 2, "xid": 13}),
    ]
    assert all(not u.snapshots for u in updates)  # counters ride in the collector's snapshots

    def xid_readings(i: int) -> dict[tuple[str, str], float]:
        return {(r.key, dict(r.labels)["xid"]): r.value for r in snaps[i].readings if r.key.startswith("gpu_xid")}

    assert xid_readings(0) == {}
    one = xid_readings(1)
    assert one[("gpu_xid_errors_total", "79")] == 2.0
    assert t0 <= one[("gpu_xid_last_timestamp_seconds", "79")] <= t1
    two = xid_readings(2)
    assert two[("gpu_xid_errors_total", "13")] == 1.0
    for r in snaps[1].readings:
        if r.key.startswith("gpu_xid"):
            assert r.labels == (("gpu", "1"), ("uuid", uuids[1]), ("xid", "79"))


async def test_xid_skips_gpus_without_event_support(fake: FakeNvml, open_collector: Opener) -> None:
    fake.reset(2)
    fake.unsupported(0, "events")
    collector = await open_collector()
    assert collector is not None
    source = collector.xid_source()
    assert source is not None
    updates: list[Update] = []
    running = asyncio.create_task(source.run(updates.append))
    try:
        await wait_until(lambda: fake.count("registered") == 1, what="XID registration")
        fake.push_xid(1, 48)
        await wait_until(lambda: len(updates) == 1, what="the XID event")
        assert updates[0].events[0].detail == {"gpu": 1, "xid": 48}
    finally:
        running.cancel()


async def test_no_xid_source_without_gpus(fake: FakeNvml, open_collector: Opener) -> None:
    fake.reset(0)
    collector = await open_collector()
    assert collector is not None
    assert collector.xid_source() is None
    assert (await collector.collect()).snapshots == ()


async def test_cancelling_the_xid_source_stops_its_thread(fake: FakeNvml, open_collector: Opener) -> None:
    collector = await open_collector()
    assert collector is not None
    source = collector.xid_source()
    assert source is not None
    running = asyncio.create_task(source.run(lambda update: None))
    await wait_until(lambda: fake.count("registered") == 1, what="XID registration")
    thread = source.thread
    assert thread is not None and thread.is_alive()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert not thread.is_alive()
    assert fake.count("eventsets") == 0  # nvmlEventSetFree ran


async def test_aclose_stops_everything_cleanly(fake: FakeNvml) -> None:
    fake.reset(2)
    collector = await open_gpu(GpuConfig(enabled=True))
    assert collector is not None
    source = collector.xid_source()
    assert source is not None
    running = asyncio.create_task(source.run(lambda update: None))
    await wait_until(lambda: fake.count("registered") == 2, what="XID registration")
    thread = source.thread
    assert thread is not None
    await collector.collect()

    await collector.aclose()
    assert not thread.is_alive()
    await asyncio.wait_for(running, 5)  # the source returns by itself once the collector is closed
    assert running.result() is None
    assert fake.count("eventsets") == 0
    assert fake.count("shutdowns") == 1
    await collector.aclose()  # idempotent
    assert fake.count("shutdowns") == 1
    with pytest.raises(CollectorError, match="closed"):
        await collector.collect()


async def test_a_refused_reload_lets_go_of_the_nvml_handle_it_opened(fake: FakeNvml, tmp_path: Path) -> None:
    """A reload that opens NVML for a changed [gpu] and then fails on a busy port closes what it opened."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    free_port = free.getsockname()[1]
    free.close()

    def cfg(port: int, interval: int) -> Config:
        path = tmp_path / f"agent-{port}-{interval}.toml"
        path.write_text(
            f'[agent]\nsite = "s"\n[prometheus]\nlisten = "127.0.0.1:{port}"\n'
            f"[host]\nenabled = false\n[gpu]\nenabled = true\ninterval = {interval}\n"
        )
        return config_mod.load(path)

    first = cfg(free_port, 10)
    agent = Agent(first)
    try:
        await agent._apply(first, first=True)
        assert fake.count("inits") - fake.count("shutdowns") == 1
        with pytest.raises(ConfigError, match=r"prometheus\.listen"):
            await agent._apply(cfg(busy.getsockname()[1], 20))
        # The running collector's handle stays open; the refused one's is closed again.
        assert fake.count("inits") == 2
        assert fake.count("inits") - fake.count("shutdowns") == 1
    finally:
        await agent._shutdown()
        busy.close()
    assert fake.count("inits") == fake.count("shutdowns")
