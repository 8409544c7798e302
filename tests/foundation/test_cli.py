"""The `edge-agent` command as a user types it: simulate, scan, once, --version."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from support import ROOT, run_cli

from edge_agent import __version__


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"edge-agent {__version__}"


def test_simulate_then_scan_and_once(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sim = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "simulate", "--count", "6", "--base", "127.98.0.0", "--seed", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert sim.stdout is not None
        cidr = sim.stdout.readline().strip()
        assert cidr.startswith("127.98.0.0/"), sim.stderr.read() if sim.stderr else ""
        scan = run_cli("scan", cidr, "--json", "--timeout", "2")
        assert scan.returncode == 0, scan.stderr
        found = json.loads(scan.stdout)
        assert len(found) == 6
        config = tmp_path / "c.toml"
        config.write_text(f'[agent]\nsite = "s"\n[asic]\ntargets = ["{cidr}"]\ntimeout = 2\n[gpu]\nenabled = false\n')
        once = run_cli("once", "--config", str(config))
        assert once.returncode == 0, once.stderr
        snapshots = json.loads(once.stdout)
        miners = [s for s in snapshots if s["source"] == "asic"]
        assert len(miners) == 6 and all(m["up"] for m in miners)
        assert {s["source"] for s in snapshots} == {"asic", "host", "summary"}
    finally:
        sim.send_signal(signal.SIGTERM)
        assert sim.wait(10) == 0
