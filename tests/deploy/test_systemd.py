"""The systemd unit: it verifies, it scores <= 2.5 exposure, and the hardening leaves the agent able to work."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "edge-agent.service"
SYSUSERS = ROOT / "systemd" / "edge-agent.sysusers"
MAX_EXPOSURE = 2.5

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian package 'systemd'; .ci/run installs it)",
)


def directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order; repeated keys are kept."""
    out: list[tuple[str, str, str]] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def service(key: str) -> list[str]:
    return [v for s, k, v in directives(UNIT.read_text()) if s == "Service" and k == key]


def one(key: str) -> str:
    values = service(key)
    assert len(values) == 1, f"{key}= should appear once in [Service], found {values}"
    return values[0]


def test_the_unit_is_what_the_agent_and_the_runtime_expect() -> None:
    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert one("WatchdogSec") == "30"
    assert one("Restart") == "on-failure"
    assert one("RestartPreventExitStatus") == "2"  # config errors exit 2; a restart cannot fix them
    assert one("ExecStart").split()[1:] == ["run", "--config", "/etc/edge-agent/config.toml"]
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("User") == "edge-agent"
    assert one("ConfigurationDirectory") == "edge-agent"
    # config.py puts the MQTT outbox at $STATE_DIRECTORY/outbox.db.
    assert one("StateDirectory") == "edge-agent"
    assert one("EnvironmentFile") == "-/etc/edge-agent/environment"
    assert int(one("LimitNOFILE")) >= 65536


def test_hardening_leaves_nvml_and_the_network_usable() -> None:
    families = one("RestrictAddressFamilies").split()
    # Outbound TCP to miners and the broker, the /metrics listener, and NOTIFY_SOCKET.
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= set(families)
    assert not one("RestrictAddressFamilies").startswith("~")
    assert service("PrivateNetwork") in ([], ["no"])
    assert service("IPAddressDeny") == []
    # PrivateDevices=yes would hide /dev/nvidia*; the closed policy plus an allow-list is the substitute.
    assert service("PrivateDevices") in ([], ["no"])
    assert one("DevicePolicy") == "closed"
    allowed = {tuple(v.split()) for v in service("DeviceAllow")}
    assert ("char-nvidia-frontend", "rw") in allowed  # major 195, proprietary driver
    assert ("char-nvidia", "rw") in allowed  # major 195, open kernel modules
    # The host collector reads /proc/stat, /proc/meminfo and friends.
    assert service("ProcSubset") in ([], ["all"])


@needs_analyze
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """`verify` insists that every Exec*= program exists on the machine running it.

    /opt/edge-agent/venv/bin/edge-agent exists only where the agent is installed, so the
    unit is copied with each missing program replaced by a stand-in executable; every
    other line is verified as shipped.
    """
    stand_in = tmp_path / "edge-agent"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IXUSR)
    replaced: list[str] = []

    def swap(match: re.Match[str]) -> str:
        program = match.group(2)
        if os.access(program, os.X_OK):
            return match.group(0)
        replaced.append(program)
        return f"{match.group(1)}{stand_in}"

    text = re.sub(r"^(Exec\w+=[-@:+!]*)(/\S+)", swap, UNIT.read_text(), flags=re.MULTILINE)
    assert "/opt/edge-agent/venv/bin/edge-agent" in replaced or os.access(
        "/opt/edge-agent/venv/bin/edge-agent", os.X_OK
    )
    copy = tmp_path / UNIT.name
    copy.write_text(text)

    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    # verify exits 0 on unknown keys and bad values (it only warns), so its output must be clean too.
    about_us = [line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line]
    assert result.returncode == 0, result.stdout + result.stderr
    assert about_us == []


@needs_analyze
def test_security_exposure_is_at_most_2_5() -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for edge-agent\.service:\s*([0-9]+(?:\.[0-9]+)?)", output)
    assert match, f"no 'Overall exposure level' line in systemd-analyze output:\n{output}"
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, f"exposure {exposure} > {MAX_EXPOSURE}:\n{output}"


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers is not installed")
def test_sysusers_creates_the_unit_user(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    result = subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    passwd = {line.split(":")[0]: line.split(":") for line in (tmp_path / "etc/passwd").read_text().splitlines()}
    user = passwd[one("User")]
    assert int(user[2]) != 0
    assert user[6] in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
    groups = {line.split(":")[0] for line in (tmp_path / "etc/group").read_text().splitlines()}
    assert one("Group") in groups
