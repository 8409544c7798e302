"""`edge-agent scan` against a simulated fleet: JSON and table output, run as a real process."""

from __future__ import annotations

import asyncio
import os
import sys

import orjson
import pytest

from edge_agent.asic_cli import parse_ranges, render_table
from edge_agent.collectors.asic.discovery import Found, addresses
from edge_agent.model import Reading
from edge_agent.sim import firmwares

from .conftest import MakeSim


async def run_scan(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edge_agent.asic_cli",
        "scan",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_scan_json_lists_every_answering_miner(make_sim: MakeSim) -> None:
    sim = await make_sim(10, fault_map={0: "refused", 1: "blackhole"}, seed=3, firmware_names=firmwares.FIRMWARES)
    rc, out, err = await run_scan(str(sim.network), "--json", "--timeout", "0.5", "--concurrency", "8")
    assert rc == 0, err
    rows = orjson.loads(out)
    # The hung miner is listed (something listens there) with why it could not be read.
    hung = rows.pop(0)
    assert hung["miner"] == sim.miners[1].key and hung["error"] == "timeout" and hung["make"] is None
    answering = [m for m in sim.miners if m.fault is None]
    assert [r["miner"] for r in rows] == [m.key for m in answering]
    for row, m in zip(rows, answering, strict=True):
        state = sim.state_of(m.key)
        assert row["address"] == m.address and row["port"] == 4028
        assert row["hashrate_hashes_per_second"] == pytest.approx(float(state.hashrate), rel=1e-6)
        assert row["make"] or row["firmware"]
        assert row["error"] is None
    assert not sim.recorder.privileged
    # Not a terminal: no progress bar escape codes on stderr.
    assert "\r" not in err


async def test_scan_table_and_port_option(make_sim: MakeSim) -> None:
    sim = await make_sim(3, seed=4)
    rc, out, err = await run_scan(f"{sim.miners[0].address}", f"{sim.miners[1].address}:4028", "--timeout", "1")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ADDRESS", "MAKE", "MODEL", "FIRMWARE"]
    assert [line.split()[0] for line in lines[1:]] == [sim.miners[0].key, sim.miners[1].key]
    assert "TH/s" in lines[1]
    assert "2 miner(s) found in 2 address(es)" in err
    rc, out, err = await run_scan(sim.miners[0].address, "--port", "4999", "--timeout", "0.5")
    assert rc == 0 and out.splitlines()[1:] == []


async def test_scan_rejects_bad_ranges() -> None:
    rc, _out, err = await run_scan("10.0.0.0/33")
    assert rc == 2 and "RANGE 1" not in err and "CIDR" in err


def test_addresses_skip_overlaps_and_keep_order() -> None:
    targets = parse_ranges(["127.0.0.0/30", "127.0.0.2", "127.0.0.2:4029"], 4028)
    assert list(addresses(targets)) == [
        ("127.0.0.0", 4028),
        ("127.0.0.1", 4028),
        ("127.0.0.2", 4028),
        ("127.0.0.3", 4028),
        ("127.0.0.2", 4029),
    ]


def test_table_marks_absent_values_not_zero() -> None:
    label = (("miner", "127.0.0.1:4028"),)
    found = [
        Found(
            "127.0.0.1",
            4028,
            make="Bitmain",
            model="Antminer S19",
            firmware="bmminer",
            readings=(Reading("asic_hashrate_hashes_per_second", 1.1e14, label),),
        ),
        Found("127.0.0.2", 4028, make="MicroBT", error="timeout"),
    ]
    text = render_table(found)
    first, second = text.splitlines()[1:]
    assert "110.00 TH/s" in first and first.rstrip().endswith("-")
    assert "timeout" in second


def test_progress_bar_redraws_in_place() -> None:
    import io

    from edge_agent.asic_cli import _progress_bar

    out = io.StringIO()
    show = _progress_bar(out)
    for done in range(1, 11):
        show(done, 10, done // 3)
    text = out.getvalue()
    assert text.startswith("\r[") and "\n" not in text
    assert text.endswith("] 10/10 addresses, 3 miner(s)")
    assert "[" + "#" * 30 + "]" in text
