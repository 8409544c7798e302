"""Fixtures shared by every test area."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import AgentProcess


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    agents: list[AgentProcess] = []

    def start(config_text: str, env: dict[str, str] | None = None, name: str = "agent") -> AgentProcess:
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(config_text)
        agent = AgentProcess(cfg, tmp_path / f"{name}.log", env)
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.stop()
