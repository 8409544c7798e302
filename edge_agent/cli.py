"""The `edge-agent` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import orjson

from edge_agent import __version__, asic_cli, gcpolicy, logs
from edge_agent import config as config_mod
from edge_agent.errors import ConfigError
from edge_agent.sim import cli as sim_cli

EXIT_CONFIG = 2
LOG_LEVELS = ("debug", "info", "warning", "error")
_T = TypeVar("_T")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description=(
            "Telemetry agent for sites running ASIC miners and NVIDIA GPU servers: polls miners, GPUs and the "
            "host, serves Prometheus metrics and publishes over MQTT with a durable outbox."
        ),
        epilog="Run 'edge-agent COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=LOG_LEVELS,
        help="log verbosity on stderr (default: info)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="run the agent",
        description="Run the agent until SIGTERM/SIGINT. SIGHUP reloads the config file. Without --config, "
        "runs a demo against a simulated site on loopback addresses.",
    )
    run.add_argument("--config", "-c", metavar="FILE", help="TOML config file (default: demo mode)")
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser(
        "check-config", help="validate a config file", description="Validate a config file and exit 0 if it is good."
    )
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=_cmd_check)

    once = sub.add_parser(
        "once",
        help="collect everything once and print JSON",
        description="Run every enabled collector once and print the snapshots as JSON on stdout.",
    )
    once.add_argument("--config", "-c", metavar="FILE", required=True, help="TOML config file")
    once.set_defaults(func=_cmd_once)

    asic_cli.register(sub)
    sim_cli.register(sub)
    # Accepted after the command too (`edge-agent run --log-level debug`); SUPPRESS keeps a
    # subcommand from overwriting a level given before it.
    for command in sub.choices.values():
        command.add_argument("--log-level", choices=LOG_LEVELS, default=argparse.SUPPRESS, help="log verbosity")
    return parser


def _cmd_check(args: argparse.Namespace) -> int:
    cfg = config_mod.load(args.file)
    print(f"{args.file}: ok (site {cfg.agent.site}, name {cfg.agent.name})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from edge_agent.runtime import Agent

    if not args.config:
        from edge_agent.demo import run_demo

        return _run_loop(run_demo)
    cfg = config_mod.load(args.config)
    gcpolicy.install()
    return _run_loop(lambda: Agent(cfg).run())


def _cmd_once(args: argparse.Namespace) -> int:
    from edge_agent.once import collect_once

    cfg = config_mod.load(args.config)
    snapshots = _run_loop(lambda: collect_once(cfg))
    sys.stdout.buffer.write(orjson.dumps(snapshots, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


def _run_loop(main: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(main())
    return uvloop.run(main())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"edge-agent: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    return code
