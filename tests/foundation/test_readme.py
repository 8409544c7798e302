"""The README stays true: its two commands exist, and every metric in the table is documented."""

from __future__ import annotations

import os
from pathlib import Path

from edge_agent.metrics import METRICS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    block = README.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].split() for line in block.strip().splitlines()]
    assert commands[0][:2] == ["./scripts/edge-agent", "run"]
    assert commands[1] == ["./scripts/test"]
    for cmd in commands:
        assert os.access(ROOT / cmd[0], os.X_OK), cmd[0]


def test_every_metric_is_documented() -> None:
    missing = [name for name in METRICS if f"`{name}`" not in README]
    assert not missing, f"add these to the README (scripts/metrics-table prints the rows): {missing}"
