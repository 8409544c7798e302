"""Bad config: one clear line naming the key and the fix, exit status 2, no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import free_port, run_cli

from edge_agent import config
from edge_agent.errors import ConfigError

GOOD = '[agent]\nsite = "site-a"\nname = "host-1"\n'

CASES = [
    ("not toml", "[agent\nsite=", "is not valid TOML"),
    ("wrong type", GOOD + '[host]\ninterval = "fast"\n', "host.interval: must be a number of seconds > 0"),
    (
        "out of range",
        GOOD + "[asic]\ntargets=['127.0.0.1']\nconcurrency = 0\n",
        "asic.concurrency: must be an integer from 1 to 16384, got 0",
    ),
    ("unknown key", GOOD + "[host]\nintervall = 5\n", "host.intervall: unknown key; did you mean 'interval'?"),
    ("unknown section", GOOD + "[hots]\n", "hots: unknown section; did you mean [host]?"),
    ("missing required", '[agent]\nname = "x"\n', "agent.site: is required"),
    ("missing section", "", "agent: section is required"),
    ("bad site", '[agent]\nsite = "a b"\n', "agent.site: must be 1-63 letters"),
    (
        "bad listen",
        GOOD + '[prometheus]\nlisten = "0.0.0.0:99999"\n',
        "prometheus.listen: port must be from 1 to 65535",
    ),
    ("bad target", GOOD + '[asic]\ntargets = ["10.0.0.300"]\n', "asic.targets[0]: must be an IP address"),
    ("gpu enabled", GOOD + '[gpu]\nenabled = "yes"\n', 'gpu.enabled: must be "auto", true or false, got "yes"'),
    (
        "unreadable secret",
        GOOD + '[mqtt]\npassword_file = "/nonexistent/pw"\n',
        "mqtt.password_file: cannot read '/nonexistent/pw'",
    ),
    (
        "password inline",
        GOOD + '[mqtt]\npassword = "hunter2"\n',
        "mqtt.password: secrets are not read from the config file",
    ),
    ("qos", GOOD + "[mqtt]\nqos = 2\n", "mqtt.qos: must be an integer from 0 to 1, got 2"),
    (
        "timeout above interval",
        GOOD + "[asic]\ntargets=['127.0.0.1']\ninterval=10\ntimeout=20\n",
        "asic.timeout: must be a number of seconds > 0 and <= 10",
    ),
]


@pytest.mark.parametrize(("name", "text", "message"), CASES, ids=[c[0] for c in CASES])
def test_check_config_reports_one_clear_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    result = run_cli("check-config", str(path))
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("edge-agent: error: ")
    assert message in lines[0]
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("check-config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "cannot read config file" in result.stderr


def test_run_with_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = tmp_path / "c.toml"
        path.write_text(GOOD + f'[prometheus]\nlisten = "127.0.0.1:{port}"\n[gpu]\nenabled = false\n')
        result = run_cli("run", "--config", str(path), timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("edge-agent: error: prometheus.listen: cannot listen on 127.0.0.1:")
    assert "Traceback" not in result.stderr


def test_good_config_passes(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(GOOD + f'[prometheus]\nlisten = "127.0.0.1:{free_port()}"\n')
    result = run_cli("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_secret_from_file_and_env_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret-value\n")
    cfg = config.parse({"agent": {"site": "a"}, "mqtt": {"password_file": str(pw)}})
    assert cfg.mqtt.password is not None
    assert cfg.mqtt.password.value == "s3cret-value"
    assert "s3cret" not in repr(cfg) and "s3cret" not in str(cfg.mqtt)
    monkeypatch.setenv(config.MQTT_PASSWORD_ENV, "from-env")
    cfg = config.parse({"agent": {"site": "a"}})
    assert cfg.mqtt.password is not None and cfg.mqtt.password.value == "from-env"
    assert "from-env" not in repr(cfg)


def test_defaults_and_contract_keys() -> None:
    cfg = config.parse(
        {
            "agent": {"site": "site-a", "name": "host-1"},
            "prometheus": {"listen": "0.0.0.0:9105"},
            "host": {"enabled": True, "interval": 15},
            "asic": {"targets": ["10.1.0.0/22", "10.2.0.17", "10.2.0.18:4029"], "interval": 30, "timeout": 5},
            "mqtt": {"enabled": True, "host": "broker.example.net", "port": 8883, "qos": 1},
        }
    )
    assert cfg.prometheus.port == config.DEFAULT_PROMETHEUS_PORT == 9105
    assert [t.port for t in cfg.asic.targets] == [4028, 4028, 4029]
    assert cfg.asic.targets[0].network.num_addresses == 1024
    assert cfg.mqtt.client_id == "site-a-host-1"
    assert cfg.asic.enabled
    with pytest.raises(ConfigError) as err:
        config.parse({"agent": {"site": "a"}, "asic": {"enabled": True}})
    assert err.value.key == "asic.targets"


def test_listen_forms() -> None:
    assert config.parse_listen("k", "", 9105) == ("", 0)
    assert config.parse_listen("k", ":9200", 9105) == ("", 9200)
    assert config.parse_listen("k", "[::1]:9200", 9105) == ("::1", 9200)
    assert config.parse_listen("k", "localhost", 9105) == ("localhost", 9105)
    cfg = config.parse({"agent": {"site": "a"}, "prometheus": {"listen": ""}})
    assert not cfg.prometheus.enabled


def test_state_directory_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/x")
    assert str(config.parse({"agent": {"site": "a"}}).mqtt.queue_path) == "/var/lib/x/outbox.db"
    monkeypatch.delenv("STATE_DIRECTORY")
    assert os.fspath(config.parse({"agent": {"site": "a"}}).mqtt.queue_path) == "/var/lib/edge-agent/outbox.db"
