"""The exporter-toolkit web config file: TLS and basic auth for the metrics endpoint.

Same format as Prometheus's own exporters (`--web.config.file`), so operators can
reuse files they already have and validate them with `promtool check web-config`:

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional
      client_ca_file: ca.crt                         # optional
      min_version: TLS12                             # optional
    basic_auth_users:
      prometheus: $2y$10$...                         # bcrypt hash
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import yaml

from edge_agent.errors import ConfigError

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


@dataclass(frozen=True, slots=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash


class BasicAuth:
    """Checks credentials against bcrypt hashes.

    bcrypt costs tens of milliseconds by design; Prometheus sends the same
    credentials every scrape, so a successful check is remembered as a keyed
    digest (never the password itself) like exporter-toolkit's cache does.
    """

    def __init__(self, users: dict[str, bytes]) -> None:
        self._users = users
        self._key = bcrypt.gensalt()
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    def check(self, user: str, password: str) -> bool:
        hashed = self._users.get(user)
        if hashed is None:
            return False
        token = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        with self._lock:
            if token in self._ok:
                return True
        try:
            good = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            good = False
        if good:
            with self._lock:
                if len(self._ok) > 64:
                    self._ok.clear()
                self._ok.add(token)
        return good


def load_web_config(path: Path) -> WebConfig:
    key = "prometheus.web_config_file"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(key, f"cannot read {str(path)!r}: {exc.strerror}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(key, f"{str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(key, f"{str(path)!r} must be a YAML mapping")
    unknown = set(data) - {"tls_server_config", "basic_auth_users", "http_server_config"}
    if unknown:
        raise ConfigError(
            key, f"{str(path)!r}: unknown key {sorted(unknown)[0]!r} (allowed: tls_server_config, basic_auth_users)"
        )
    base = path.parent
    ctx = _tls(data.get("tls_server_config"), base, key, path)
    users_raw = data.get("basic_auth_users") or {}
    if not isinstance(users_raw, dict):
        raise ConfigError(key, f"{str(path)!r}: basic_auth_users must map user names to bcrypt hashes")
    users: dict[str, bytes] = {}
    for user, hashed in users_raw.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(key, f"{str(path)!r}: basic_auth_users.{user} must be a bcrypt hash ($2y$...)")
        users[str(user)] = hashed.encode()
    return WebConfig(ssl_context=ctx, users=users)


def _tls(section: object, base: Path, key: str, path: Path) -> ssl.SSLContext | None:
    if not section:
        return None
    if not isinstance(section, dict):
        raise ConfigError(key, f"{str(path)!r}: tls_server_config must be a mapping")

    def file(name: str) -> str:
        value = section.get(name)
        if not isinstance(value, str) or not value:
            raise ConfigError(key, f"{str(path)!r}: tls_server_config.{name} is required")
        return str(base / value)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(file("cert_file"), file("key_file"))
        auth = section.get("client_auth_type", "NoClientCert")
        if auth not in _CLIENT_AUTH:
            raise ConfigError(
                key, f"{str(path)!r}: client_auth_type must be one of {', '.join(_CLIENT_AUTH)}, got {auth!r}"
            )
        ctx.verify_mode = _CLIENT_AUTH[auth]
        if section.get("client_ca_file"):
            ctx.load_verify_locations(file("client_ca_file"))
        elif auth in ("RequireAndVerifyClientCert", "VerifyClientCertIfGiven"):
            raise ConfigError(key, f"{str(path)!r}: client_auth_type {auth} needs client_ca_file")
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(key, f"{str(path)!r}: cannot load TLS files: {exc}") from exc
    min_version = section.get("min_version")
    if min_version is not None:
        if min_version not in _TLS_VERSIONS:
            raise ConfigError(key, f"{str(path)!r}: min_version must be one of {', '.join(_TLS_VERSIONS)}")
        ctx.minimum_version = _TLS_VERSIONS[min_version]
    return ctx
