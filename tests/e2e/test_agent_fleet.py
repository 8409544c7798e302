"""End to end: `edge-agent run` against a simulated mixed-firmware fleet with 10% faulty miners.

The simulator runs in this process (frozen, so what it serves is exact); the agent is a real
subprocess scanning the fleet's CIDR range; the check is a real HTTP scrape.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import subprocess

from prometheus_client.parser import text_string_to_metric_families
from support import free_port, http_get

from edge_agent.sim.firmwares import expected_readings
from edge_agent.sim.server import SimFleet

DOWN_FAULTS = {"refused", "blackhole", "garbage", "endless", "slow"}


def scrape_samples(port: int) -> tuple[bytes, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    _, _, body = http_get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return body, out


async def test_agent_reports_every_healthy_miner_and_every_faulty_one_down(start_agent) -> None:
    fleet = SimFleet(300, base="127.88.0.0", seed=7, faults=0.1, evolve_interval=0, slow_delay=30.0)
    await fleet.start()
    try:
        faulty = {m.key: m.fault for m in fleet.miners if m.fault}
        assert set(faulty.values()) == DOWN_FAULTS | {"sleeping"}
        # A refused address in a range looks like an empty one; listed on its own it is a miner that is down.
        static = [k for k, f in faulty.items() if f in ("refused", "blackhole")][:4]
        port = free_port()
        targets = ", ".join(f'"{t}"' for t in [str(fleet.network), *static])
        start_agent(
            f'[agent]\nsite = "e2e"\n[prometheus]\nlisten = "127.0.0.1:{port}"\n'
            "[host]\nenabled = false\n[gpu]\nenabled = false\n"
            f"[asic]\ntargets = [{targets}]\ninterval = 4\ntimeout = 1.5\nscan_timeout = 1\nconcurrency = 128\n"
        )
        healthy = [m for m in fleet.miners if m.fault in (None, "sleeping")]
        listed_down = [k for k, f in faulty.items() if f in DOWN_FAULTS - {"refused"}] + static

        def settled() -> tuple[bytes, dict] | None:
            try:
                body, samples = scrape_samples(port)
            except OSError:
                return None
            up = [samples.get(("asic_up", (("miner", m.key),))) for m in healthy]
            down = [samples.get(("asic_up", (("miner", k),))) for k in listed_down]
            if all(v == 1 for v in up) and all(v == 0 for v in down):
                return body, samples
            return None

        deadline = asyncio.get_running_loop().time() + 60
        result = None
        while result is None:
            assert asyncio.get_running_loop().time() < deadline, "fleet never settled"
            result = await asyncio.to_thread(settled)
            if result is None:
                await asyncio.sleep(0.5)
        body, samples = result

        checked = 0
        for m in healthy:
            for r in expected_readings(fleet.state_of(m.key), m.key):
                got = samples.get((r.key, tuple(sorted(r.labels))))
                assert got is not None, (m.key, m.firmware, r)
                assert math.isclose(got, r.value, rel_tol=1e-9, abs_tol=1e-9), (m.key, m.firmware, r, got)
                checked += 1
            if m.fault == "sleeping":
                assert samples[("asic_hashrate_hashes_per_second", (("miner", m.key),))] == 0
        for k in listed_down:
            assert ("asic_hashrate_hashes_per_second", (("miner", k),)) not in samples
        assert fleet.recorder.privileged_seen == 0
        assert all(m.max_open <= 1 for m in fleet.miners), "two connections to one miner at once"
        promtool = shutil.which("promtool")
        if promtool:
            check = await asyncio.to_thread(
                subprocess.run, [promtool, "check", "metrics"], input=body, capture_output=True
            )
            assert check.returncode == 0 and not check.stdout + check.stderr, check.stdout + check.stderr
        print(f"miners={len(fleet.miners)} healthy={len(healthy)} down={len(listed_down)} values_checked={checked}")
    finally:
        await fleet.stop()
