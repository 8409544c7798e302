"""A fake libnvidia-ml.so, compiled here with gcc and loaded by the real pynvml.

pynvml loads `libnvidia-ml.so.1` into its module global `nvmlLib` on the first
nvmlInit and resolves every entry point from it by name. Pointing that global
at our compiled fake lets pynvml's own wrappers, structs and error classes run
unchanged, which is the boundary the collector talks to on a real host.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pynvml
import pytest

from edge_agent.collectors.gpu import GpuCollector, open_gpu
from edge_agent.config import GpuConfig

# The helpers beside this file, importable under any pytest import mode.
sys.path.insert(0, str(Path(__file__).parent))
from fakenvml import FakeNvml, Opener, wait_until

SOURCE = Path(__file__).with_name("fake_nvml.c")


@pytest.fixture(scope="session")
def fake_lib_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler to build the fake libnvidia-ml.so")
    out = tmp_path_factory.mktemp("fake-nvml") / "libnvidia-ml.so.1"
    subprocess.run(
        [gcc, "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-o", str(out), str(SOURCE), "-lpthread"],
        check=True,
    )
    return out


def _point_pynvml_at(lib: ctypes.CDLL | None) -> None:
    pynvml.nvmlLib = lib
    pynvml._nvmlGetFunctionPointer_cache.clear()


@pytest.fixture
def fake(fake_lib_path: Path) -> Iterator[FakeNvml]:
    saved = pynvml.nvmlLib
    lib = ctypes.CDLL(str(fake_lib_path))
    _point_pynvml_at(lib)
    nvml = FakeNvml(lib)
    nvml.reset(1)
    yield nvml
    # A test that left a call hanging must not leave the NVML thread stuck forever.
    nvml.release()
    _point_pynvml_at(saved)


@pytest.fixture
def no_library() -> Iterator[None]:
    """pynvml with nothing loaded, so nvmlInit must find libnvidia-ml.so.1 itself."""
    saved = pynvml.nvmlLib
    _point_pynvml_at(None)
    yield
    _point_pynvml_at(saved)


@pytest.fixture
async def open_collector(fake: FakeNvml) -> AsyncIterator[Opener]:
    opened: list[GpuCollector] = []

    async def _open(**options: Any) -> GpuCollector | None:
        collector = await open_gpu(GpuConfig(**{"enabled": True, **options}))
        if collector is not None:
            opened.append(collector)
        return collector

    yield _open
    fake.release()
    for collector in opened:
        await wait_until(lambda c=collector: not c.busy)  # type: ignore[misc]
        await collector.aclose()
