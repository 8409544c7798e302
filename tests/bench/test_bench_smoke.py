"""The benchmarks still run: every script at --quick sizes, through bench/run, printing its table.

No figure is checked (timings are not assertions); only that each benchmark runs end to end
against real peers (a simulated fleet in a child process, mosquitto, the agent as a
subprocess) and prints what the README's Performance section is built from.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("poll.py", "scrape.py", "mqtt_outbox.py", "fleet.py", "all.py")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHON": sys.executable}


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_help(script: str) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--help"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "--quick" in out.stdout


@pytest.mark.skipif(
    shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(), reason="no mosquitto"
)
@pytest.mark.timeout(180)
def test_every_benchmark_runs_quick_and_prints_its_table() -> None:
    out = subprocess.run(
        [str(ROOT / "bench" / "run"), "--quick"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=170,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    for heading in (
        "poll benchmark:",
        "raw asyncio + json",
        "agent fleet (uvloop)",
        "scrape benchmark:",
        "prometheus_client generate_latest",
        "event loop max stall during scrapes",
        "live publish QoS 1 through the outbox",
        "fleet benchmark:",
        "healthy miners missing an interval",
        "== summary:",
        "1.2 M message backlog drains in",
        "baseline: bare aiomqtt, 256 in flight",
        "baseline: raw asyncio + json poll, this machine",
        "fleet: agent CPU at the issue machine's speed",
    ):
        assert heading in text, f"{heading!r} missing from:\n{text}"
    # Every miner the poll benchmark polled answered (a broken transport shows as failures here).
    for line in text.splitlines():
        if line.startswith(("raw ", "agent path", "agent fleet")):
            assert line.split()[-1] == "0", line
