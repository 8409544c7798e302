"""The whole agent with GPU collection: on the fake NVML (loaded by name) and with no driver."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from support import free_port, http_get, run_cli, wait_for


def config(port: int, enabled: str) -> str:
    return (
        f'[agent]\nsite = "s"\nname = "gpu-host"\n[prometheus]\nlisten = "127.0.0.1:{port}"\n'
        f"[host]\nenabled = false\n[gpu]\nenabled = {enabled}\ninterval = 1\n"
    )


def test_agent_serves_gpu_metrics_and_site_totals(start_agent, fake_lib_path: Path) -> None:
    port = free_port()
    start_agent(config(port, "true"), env={"LD_LIBRARY_PATH": str(fake_lib_path.parent), "FAKE_NVML_GPUS": "2"})

    def body() -> bytes | None:
        try:
            _, _, data = http_get(f"http://127.0.0.1:{port}/metrics")
        except OSError:
            return None
        return data if b"site_gpus_up 2" in data and b'gpu_power_watts{gpu="1"' in data else None

    data = wait_for(body, 30, "GPU metrics and site totals")
    assert isinstance(data, bytes)
    assert b'edge_agent_collector_up{collector="gpu"} 1' in data
    assert b"site_gpus 2" in data
    assert b"site_gpu_power_watts " in data
    promtool = shutil.which("promtool")
    if promtool:
        check = subprocess.run([promtool, "check", "metrics"], input=data, capture_output=True)
        assert check.returncode == 0 and not check.stdout + check.stderr, check.stdout + check.stderr


def test_no_driver_auto_runs_and_says_so_once(start_agent, tmp_path: Path) -> None:
    port = free_port()
    agent = start_agent(config(port, '"auto"'), env={"LD_LIBRARY_PATH": str(tmp_path)})
    wait_for(lambda: "running" in agent.log, 20, "agent running")
    gpu_lines = [line for line in agent.log.splitlines() if "nvidia" in line.lower()]
    assert len(gpu_lines) == 1, agent.log
    assert http_get(f"http://127.0.0.1:{port}/metrics")[0] == 200


def test_no_driver_required_is_a_startup_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(config(free_port(), "true"))
    result = run_cli("run", "--config", str(path), env={"LD_LIBRARY_PATH": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("edge-agent: error: gpu.enabled = true but no NVIDIA")
