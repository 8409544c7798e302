"""TLS and basic auth on the endpoint, configured by an exporter-toolkit web config file."""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
from pathlib import Path

import bcrypt
import pytest
from support import free_port, http_get, wait_for


def make_cert(tmp: Path) -> tuple[Path, Path]:
    key, crt = tmp / "server.key", tmp / "server.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(crt),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return crt, key


def test_tls_and_basic_auth(start_agent, tmp_path: Path) -> None:
    crt, key = make_cert(tmp_path)
    hashed = bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {crt.name}\n  key_file: {key.name}\n"
        f"basic_auth_users:\n  prometheus: {hashed}\n"
    )
    promtool = shutil.which("promtool")
    if promtool:
        check = subprocess.run([promtool, "check", "web-config", str(web)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    start_agent(
        f'[agent]\nsite = "s"\n[prometheus]\nlisten = "127.0.0.1:{port}"\nweb_config_file = "{web}"\n'
        "[host]\ninterval = 1\n[gpu]\nenabled = false\n"
    )
    ctx = ssl.create_default_context(cafile=str(crt))
    url = f"https://127.0.0.1:{port}/metrics"

    def up() -> bool:
        try:
            return http_get(url, context=ctx)[0] == 401
        except OSError:
            return False

    wait_for(up, 15, "TLS endpoint answering 401")
    good = "Basic " + base64.b64encode(b"prometheus:scrape-pass").decode()
    bad = "Basic " + base64.b64encode(b"prometheus:wrong").decode()
    status, headers, _ = http_get(url, context=ctx)
    assert status == 401 and headers["www-authenticate"].startswith("Basic")
    assert http_get(url, headers={"Authorization": bad}, context=ctx)[0] == 401
    status, _, body = http_get(url, headers={"Authorization": good}, context=ctx)
    assert status == 200 and b"edge_agent_build_info" in body
    # The cached check gives the same answer the second time.
    assert http_get(url, headers={"Authorization": good}, context=ctx)[0] == 200
    with pytest.raises(OSError):
        http_get(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_bad_web_config_is_a_config_error(tmp_path: Path) -> None:
    from support import run_cli

    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  u: plaintext\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[agent]\nsite = "s"\n[prometheus]\nlisten = "127.0.0.1:{free_port()}"\nweb_config_file = "{web}"\n'
    )
    result = run_cli("run", "--config", str(cfg), timeout=30)
    assert result.returncode == 2
    assert "prometheus.web_config_file" in result.stderr and "bcrypt" in result.stderr
