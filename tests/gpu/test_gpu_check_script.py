"""scripts/gpu-check against the fake, loaded the way pynvml loads the real one: by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from edge_agent.metrics import gpu as gpu_metrics

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu-check"


def run_check(lib: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "LD_LIBRARY_PATH": str(lib.parent), **env}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--xid", "0.1"], env=environ, capture_output=True, text=True, timeout=60
    )


def test_gpu_check_prints_every_metric(fake_lib_path: Path) -> None:
    done = run_check(fake_lib_path, FAKE_NVML_GPUS="2")
    assert done.returncode == 0, done.stderr
    printed = {line.split("{")[0] for line in done.stdout.splitlines() if line and not line.startswith("#")}
    expected = set(gpu_metrics.METRICS) - {
        "gpu_mig_memory_used_bytes",  # MIG is off on the fake by default
        "gpu_mig_memory_total_bytes",
        "gpu_xid_errors_total",  # no XID events queued
        "gpu_xid_last_timestamp_seconds",
    }
    assert expected <= printed
    assert "!!" not in done.stdout
    assert 'gpu_power_watts{gpu="1",uuid="GPU-fa4e0000-0000-4000-8000-000000000001"} 250.124 (gauge, watts)' in (
        done.stdout.splitlines()
    )


def test_gpu_check_fails_when_nvml_cannot_start(fake_lib_path: Path) -> None:
    done = run_check(fake_lib_path, FAKE_NVML_INIT_ERROR="9")
    assert done.returncode == 2
    assert "kernel driver is not loaded" in done.stderr
