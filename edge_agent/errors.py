"""Classified errors. Each is raised `from` its cause at the boundary that saw it."""

from __future__ import annotations


class EdgeAgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(EdgeAgentError):
    """The configuration is invalid. The message names the key and the fix."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}" if key else problem)


class CollectorError(EdgeAgentError):
    """A collection failed in a way the runtime should count and log, not crash on."""
