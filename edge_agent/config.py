"""Configuration: one TOML file, validated into frozen objects before anything starts.

Every problem is a `ConfigError` naming the key path, what was wrong and what is
allowed. Unknown keys are errors so that a typo never passes silently. Secrets
come from `*_file` keys or environment variables and are wrapped in `Secret`,
whose repr never shows the value.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge_agent.errors import ConfigError

DEFAULT_PROMETHEUS_PORT = 9105
DEFAULT_MINER_PORT = 4028
MQTT_PASSWORD_ENV = "EDGE_AGENT_MQTT_PASSWORD"  # noqa: S105 (a variable name, not a secret)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret value that never shows itself in repr, str or logs."""

    value: str = field(repr=False)
    origin: str = ""

    def __repr__(self) -> str:
        return f"Secret(<{self.origin or 'hidden'}>)"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class AgentConfig:
    site: str
    name: str


@dataclass(frozen=True, slots=True)
class PrometheusConfig:
    host: str
    port: int  # 0 with host "" means disabled
    web_config_file: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.port != 0 or self.host != ""


@dataclass(frozen=True, slots=True)
class HostConfig:
    enabled: bool = True
    interval: float = 15.0
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class AsicTarget:
    """An address or a CIDR range, with the port its miners answer on."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    port: int
    text: str

    @property
    def is_range(self) -> bool:
        return self.network.num_addresses > 1


@dataclass(frozen=True, slots=True)
class AsicConfig:
    enabled: bool = False
    targets: tuple[AsicTarget, ...] = ()
    interval: float = 30.0
    timeout: float = 5.0
    concurrency: int = 256
    scan_interval: float = 600.0
    scan_timeout: float = 2.0
    forget_after: float = 3600.0
    backoff_max: float = 600.0
    max_response_bytes: int = 1 << 20


@dataclass(frozen=True, slots=True)
class GpuConfig:
    enabled: Literal["auto"] | bool = "auto"
    interval: float = 10.0
    timeout: float = 5.0
    max_processes: int = 32


@dataclass(frozen=True, slots=True)
class MqttConfig:
    enabled: bool = False
    host: str = "localhost"
    port: int = 1883
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password: Secret | None = None
    client_id: str = ""
    topic_prefix: str = "edge"
    qos: int = 1
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive: int = 15
    queue_path: Path = Path("/var/lib/edge-agent/outbox.db")
    queue_max_bytes: int = 1 << 30
    backoff_max: float = 60.0


@dataclass(frozen=True, slots=True)
class Config:
    agent: AgentConfig
    prometheus: PrometheusConfig
    host: HostConfig
    asic: AsicConfig
    gpu: GpuConfig
    mqtt: MqttConfig
    path: Path | None = None


class _Section:
    """Reads one TOML table, tracking which keys were used."""

    def __init__(self, path: str, data: object) -> None:
        if not isinstance(data, dict):
            raise ConfigError(path, f"must be a table ([{path}]), got {_show(data)}")
        self.path = path
        self.data: dict[str, object] = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def raw(self, name: str, default: object = _MISSING) -> object:
        self.used.add(name)
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise ConfigError(self.key(name), "is required")
        return default

    def string(self, name: str, default: object = _MISSING, *, pattern: re.Pattern[str] | None = None) -> str:
        value = self.raw(name, default)
        if not isinstance(value, str):
            raise ConfigError(self.key(name), f"must be a string, got {_show(value)}")
        if pattern is not None and not pattern.match(value):
            raise ConfigError(
                self.key(name),
                f"must be 1-63 letters, digits, '_', '.' or '-' starting with a letter or digit, got {_show(value)}",
            )
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise ConfigError(self.key(name), f"must be true or false, got {_show(value)}")
        return value

    def seconds(self, name: str, default: float, *, maximum: float = 86400.0 * 7) -> float:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= maximum:
            raise ConfigError(self.key(name), f"must be a number of seconds > 0 and <= {maximum:g}, got {_show(value)}")
        return float(value)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(self.key(name), f"must be an integer from {low} to {high}, got {_show(value)}")
        return value

    def path_or_none(self, name: str, base: Path) -> Path | None:
        value = self.raw(name, "")
        if not isinstance(value, str):
            raise ConfigError(self.key(name), f"must be a file path string, got {_show(value)}")
        if not value:
            return None
        return (base / value) if not os.path.isabs(value) else Path(value)

    def readable_file(self, name: str, base: Path) -> Path | None:
        path = self.path_or_none(name, base)
        if path is not None:
            try:
                with path.open("rb"):
                    pass
            except OSError as exc:
                raise ConfigError(self.key(name), f"cannot read {str(path)!r}: {exc.strerror}") from exc
        return path

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            name = unknown[0]
            close = difflib.get_close_matches(name, sorted(self.used), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            allowed = ", ".join(sorted(self.used))
            raise ConfigError(self.key(name), f"unknown key{hint} (allowed: {allowed})")


def _show(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def parse_listen(key: str, value: str, default_port: int) -> tuple[str, int]:
    """Parse "host:port", "[v6]:port" or ":port". "" means disabled -> ("", 0)."""
    if value == "":
        return ("", 0)
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\[\]]*):(\d+)|([^:\[\]]+)", value)
    if not m:
        raise ConfigError(key, f'must be "host:port", "[ipv6]:port", ":port" or "" to disable, got "{value}"')
    host = m.group(1) or m.group(3) or m.group(5) or ""
    port_text = m.group(2) or m.group(4)
    port = int(port_text) if port_text else default_port
    if not 1 <= port <= 65535:
        raise ConfigError(key, f"port must be from 1 to 65535, got {port}")
    return (host, port)


def parse_target(key: str, text: object) -> AsicTarget:
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(key, f'must be an address, CIDR range or "address:port", got {_show(text)}')
    spec = text.strip()
    port = DEFAULT_MINER_PORT
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+(?:/\d+)?)\]:(\d+)", spec)
    if m:
        spec, port = m.group(1), int(m.group(2))
    elif spec.count(":") == 1:
        spec, port_text = spec.split(":")
        if not port_text.isdigit():
            raise ConfigError(key, f'port must be a number, got "{text}"')
        port = int(port_text)
    if not 1 <= port <= 65535:
        raise ConfigError(key, f'port must be from 1 to 65535, got "{text}"')
    try:
        network = ipaddress.ip_network(spec, strict=False)
    except ValueError as exc:
        raise ConfigError(
            key, f'must be an IP address, a CIDR range ("10.1.0.0/22") or "address:port", got "{text}"'
        ) from exc
    if network.num_addresses > 1 << 20:
        raise ConfigError(key, f'range "{text}" has more than 1,048,576 addresses; split it or narrow it')
    return AsicTarget(network=network, port=port, text=text)


def _read_secret(key: str, path: Path | None, env: str) -> Secret | None:
    if path is not None:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(key, f"cannot read secret file {str(path)!r}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(key, f"secret file {str(path)!r} is not UTF-8 text") from exc
        return Secret(value, f"file {path}")
    if env in os.environ:
        return Secret(os.environ[env], f"environment {env}")
    return None


def parse(data: Mapping[str, object], base: Path = Path("."), path: Path | None = None) -> Config:
    top = _Section("", dict(data))
    top.path = ""

    if "agent" not in top.data:
        raise ConfigError("agent", 'section is required: add [agent] with site = "<your site name>"')
    agent_s = _Section("agent", top.raw("agent"))
    agent = AgentConfig(
        site=agent_s.string("site", pattern=_NAME_RE),
        name=agent_s.string("name", _default_name(), pattern=_NAME_RE),
    )
    agent_s.finish()

    prom_s = _Section("prometheus", top.raw("prometheus", {}))
    listen = prom_s.string("listen", f"0.0.0.0:{DEFAULT_PROMETHEUS_PORT}")
    host, port = parse_listen("prometheus.listen", listen, DEFAULT_PROMETHEUS_PORT)
    prometheus = PrometheusConfig(host=host, port=port, web_config_file=prom_s.readable_file("web_config_file", base))
    prom_s.finish()

    host_s = _Section("host", top.raw("host", {}))
    host_enabled = host_s.boolean("enabled", True)
    host_interval = host_s.seconds("interval", 15.0)
    host_cfg = HostConfig(
        enabled=host_enabled,
        interval=host_interval,
        timeout=host_s.seconds("timeout", min(host_interval, 10.0)),
    )
    host_s.finish()

    asic = _parse_asic(_Section("asic", top.raw("asic", {})))
    gpu = _parse_gpu(_Section("gpu", top.raw("gpu", {})))
    mqtt = _parse_mqtt(_Section("mqtt", top.raw("mqtt", {})), base, agent)

    for name in sorted(set(top.data) - top.used):
        allowed = "agent, prometheus, host, asic, gpu, mqtt"
        close = difflib.get_close_matches(name, allowed.split(", "), n=1)
        hint = f"; did you mean [{close[0]}]?" if close else ""
        raise ConfigError(name, f"unknown section{hint} (allowed: {allowed})")
    return Config(agent=agent, prometheus=prometheus, host=host_cfg, asic=asic, gpu=gpu, mqtt=mqtt, path=path)


def _parse_asic(s: _Section) -> AsicConfig:
    raw_targets = s.raw("targets", [])
    if not isinstance(raw_targets, list):
        raise ConfigError(s.key("targets"), f"must be a list of addresses or CIDR ranges, got {_show(raw_targets)}")
    targets = tuple(parse_target(f"asic.targets[{i}]", t) for i, t in enumerate(raw_targets))
    interval = s.seconds("interval", 30.0)
    cfg = AsicConfig(
        enabled=s.boolean("enabled", bool(targets)),
        targets=targets,
        interval=interval,
        timeout=s.seconds("timeout", min(5.0, interval), maximum=interval),
        concurrency=s.integer("concurrency", 256, 1, 16384),
        scan_interval=s.seconds("scan_interval", 600.0),
        scan_timeout=s.seconds("scan_timeout", 2.0, maximum=60.0),
        forget_after=s.seconds("forget_after", 3600.0, maximum=86400.0 * 30),
        backoff_max=s.seconds("backoff_max", 600.0),
        max_response_bytes=s.integer("max_response_bytes", 1 << 20, 4096, 64 << 20),
    )
    s.finish()
    if cfg.enabled and not cfg.targets:
        raise ConfigError("asic.targets", 'is empty but asic.enabled = true; list addresses such as ["10.1.0.0/22"]')
    return cfg


def _parse_gpu(s: _Section) -> GpuConfig:
    enabled = s.raw("enabled", "auto")
    if enabled != "auto" and not isinstance(enabled, bool):
        raise ConfigError(s.key("enabled"), f'must be "auto", true or false, got {_show(enabled)}')
    interval = s.seconds("interval", 10.0)
    cfg = GpuConfig(
        enabled=enabled if isinstance(enabled, bool) else "auto",
        interval=interval,
        timeout=s.seconds("timeout", min(5.0, interval), maximum=interval),
        max_processes=s.integer("max_processes", 32, 0, 4096),
    )
    s.finish()
    return cfg


def _parse_mqtt(s: _Section, base: Path, agent: AgentConfig) -> MqttConfig:
    if "password" in s.data:
        raise ConfigError(
            s.key("password"),
            f"secrets are not read from the config file; put the password in a file named by "
            f"mqtt.password_file or in the environment variable {MQTT_PASSWORD_ENV}",
        )
    enabled = s.boolean("enabled", False)
    tls = s.boolean("tls", False)
    protocol = s.raw("protocol", "5")
    if protocol not in ("5", "3.1.1"):
        raise ConfigError(s.key("protocol"), f'must be "5" or "3.1.1", got {_show(protocol)}')
    qos = s.integer("qos", 1, 0, 1)
    state_dir = os.environ.get("STATE_DIRECTORY", "/var/lib/edge-agent").split(":")[0]
    queue_path = s.path_or_none("queue_path", base) or Path(state_dir) / "outbox.db"
    username = s.string("username", "") or None
    password = _read_secret(s.key("password_file"), s.readable_file("password_file", base), MQTT_PASSWORD_ENV)
    cfg = MqttConfig(
        enabled=enabled,
        host=s.string("host", "localhost"),
        port=s.integer("port", 8883 if tls else 1883, 1, 65535),
        tls=tls,
        ca_file=s.readable_file("ca_file", base),
        cert_file=s.readable_file("cert_file", base),
        key_file=s.readable_file("key_file", base),
        username=username,
        password=password,
        client_id=s.string("client_id", f"{agent.site}-{agent.name}"),
        topic_prefix=s.string("topic_prefix", "edge"),
        qos=qos,
        protocol="5" if protocol == "5" else "3.1.1",
        keepalive=s.integer("keepalive", 15, 5, 3600),
        queue_path=queue_path,
        queue_max_bytes=s.integer("queue_max_bytes", 1 << 30, 4096, 1 << 40),
        backoff_max=s.seconds("backoff_max", 60.0, maximum=3600.0),
    )
    s.finish()
    if cfg.enabled and not cfg.host:
        raise ConfigError(s.key("host"), "must name the broker when mqtt.enabled = true")
    if (cfg.cert_file is None) != (cfg.key_file is None):
        raise ConfigError(s.key("cert_file"), "cert_file and key_file must be given together")
    if any(c in cfg.topic_prefix for c in "#+") or cfg.topic_prefix.startswith("/"):
        raise ConfigError(
            s.key("topic_prefix"), f"must not contain '#' or '+' or start with '/', got {cfg.topic_prefix!r}"
        )
    return cfg


def _default_name() -> str:
    name = socket.gethostname().split(".")[0] or "edge-agent"
    return name if _NAME_RE.match(name) else re.sub(r"[^A-Za-z0-9_.-]", "-", name)[:63] or "edge-agent"


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file. Raises ConfigError with one clear message."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {str(p)!r}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"config file {str(p)!r} is not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"config file {str(p)!r} is not valid TOML: {exc}") from exc
    return parse(data, base=p.parent, path=p)
