"""Control of the fake libnvidia-ml.so (see fake_nvml.c) and a deadline-bound wait."""

from __future__ import annotations

import asyncio
import ctypes
import time
from collections.abc import Awaitable, Callable

from edge_agent.collectors.gpu import GpuCollector

# open_collector(**GpuConfig options) -> the opened collector (closed by the fixture).
Opener = Callable[..., Awaitable[GpuCollector | None]]


class FakeNvml:
    """Typed handles on the fake's control functions."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        lib.fake_reset.argtypes = [ctypes.c_int]
        lib.fake_set.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_double]
        lib.fake_get.argtypes = [ctypes.c_int, ctypes.c_char_p]
        lib.fake_get.restype = ctypes.c_double
        lib.fake_unsupported.argtypes = [ctypes.c_int, ctypes.c_char_p]
        lib.fake_lost_after.argtypes = [ctypes.c_int, ctypes.c_long]
        lib.fake_init_error.argtypes = [ctypes.c_int]
        lib.fake_hang.argtypes = [ctypes.c_char_p]
        lib.fake_push_xid.argtypes = [ctypes.c_int, ctypes.c_ulonglong]
        lib.fake_global.argtypes = [ctypes.c_char_p]
        lib.fake_global.restype = ctypes.c_long

    def reset(self, gpus: int) -> None:
        self.lib.fake_reset(gpus)

    def set(self, gpu: int, key: str, value: float) -> None:
        assert self.lib.fake_set(gpu, key.encode(), value) == 0, key

    def get(self, gpu: int, key: str) -> float:
        value = float(self.lib.fake_get(gpu, key.encode()))
        assert value != -1, key
        return value

    def unsupported(self, gpu: int, key: str) -> None:
        assert self.lib.fake_unsupported(gpu, key.encode()) == 0, key

    def lost_after(self, gpu: int, calls: int) -> None:
        self.lib.fake_lost_after(gpu, calls)

    def init_error(self, code: int) -> None:
        self.lib.fake_init_error(code)

    def hang(self, key: str) -> None:
        assert self.lib.fake_hang(key.encode()) == 0, key

    def release(self) -> None:
        self.lib.fake_release()

    def push_xid(self, gpu: int, xid: int) -> None:
        self.lib.fake_push_xid(gpu, xid)

    def count(self, name: str) -> int:
        value = int(self.lib.fake_global(name.encode()))
        assert value != -1, name
        return value


async def wait_until(condition: Callable[[], bool], deadline_s: float = 10.0, what: str = "condition") -> None:
    """Poll `condition` on the event loop until it holds or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)
