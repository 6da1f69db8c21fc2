"""The README's nginx server block, as written, in front of a real `idbroker serve`: HTTPS with HTTP redirected,
nginx's request id in our access log and the answer, `/metrics` not reachable through it, bodies over the
limit refused, and nginx's own log without query strings (CAS tickets travel there)."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import REPO_ROOT
from ops_support import access_lines, environment, log_tail, reap, start_server, stop, wait_until
from services.availability import find_binary, free_port, missing
from sqlalchemy import Engine


def readme_server_block() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Deployment$.*?^```nginx\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md's Deployment section has no nginx example"
    return match.group(1)


def self_signed(directory: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idbroker.example.edu")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


class Nginx:
    def __init__(self, directory: Path, upstream_port: int) -> None:
        self.directory, self.http_port, self.https_port = directory, free_port(), free_port()
        ssl = directory / "ssl"
        ssl.mkdir(parents=True)
        self_signed(ssl)
        block = (
            readme_server_block()
            .replace("listen 80;", f"listen 127.0.0.1:{self.http_port};")
            .replace("listen 443 ssl", f"listen 127.0.0.1:{self.https_port} ssl")
            .replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
            .replace("/etc/ssl/idbroker", str(ssl))
            .replace("/var/log/nginx/idbroker.log", str(directory / "access.log"))
        )
        temp = "\n".join(
            f"    {kind}_temp_path {directory / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (directory / "nginx.conf").write_text(
            f"pid {directory / 'nginx.pid'};\nerror_log {directory / 'error.log'};\nevents {{}}\n"
            f"http {{\n{temp}\n{block}\n}}\n"
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"


@pytest.fixture
def nginx_binary() -> Path:
    found = find_binary("nginx")
    if found is None:
        missing("nginx is not installed (Debian package nginx-light)")
    assert found is not None
    return found


@pytest.fixture
def proxied(nginx_binary: Path, sqlite_engine: Engine, tmp_path: Path) -> Iterator[tuple[Nginx, Path]]:
    env = environment(
        sqlite_engine.url.render_as_string(hide_password=False), public_url="https://idbroker.example.edu"
    )
    log = tmp_path / "serve.log"
    server = start_server(env, log)
    nginx = Nginx(tmp_path / "nginx", int(server.url.rsplit(":", 1)[1]))
    config = str(nginx.directory / "nginx.conf")
    checked = subprocess.run([str(nginx_binary), "-t", "-c", config], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen([str(nginx_binary), "-c", config, "-g", "daemon off;"], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{nginx.url}/health/live", verify=False, timeout=2)
                break
            except httpx.HTTPError:
                assert process.poll() is None, log_tail(nginx.directory / "error.log")
                assert time.monotonic() < deadline, "nginx did not answer"
                time.sleep(0.05)
        yield nginx, log
    finally:
        stop(process)
        reap(process)
        stop(server.process)
        reap(server.process)


def test_the_readme_nginx_block_fronts_the_broker(proxied: tuple[Nginx, Path]) -> None:
    nginx, serve_log = proxied
    with httpx.Client(verify=False, timeout=10, follow_redirects=False) as client:
        plain = client.get(f"http://127.0.0.1:{nginx.http_port}/health/live")
        assert plain.status_code == 301 and plain.headers["location"].startswith("https://")
        ready = client.get(f"{nginx.url}/health/ready", headers={"x-request-id": "client-chosen-id-1"})
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert ready.headers["strict-transport-security"].startswith("max-age=")
        request_id = ready.headers["x-request-id"]
        assert request_id != "client-chosen-id-1"  # nginx's $request_id, not what the client sent
        assert client.get(f"{nginx.url}/metrics").status_code == 404
        assert client.post(f"{nginx.url}/oidc/token", content=b"x" * (1024**2 + 1)).status_code == 413
        client.get(f"{nginx.url}/login/cas", params={"next": "/", "ticket": "ST-1-nginxLogCheck"})
    nginx_log = nginx.directory / "access.log"
    wait_until(lambda: nginx_log.exists() and request_id in nginx_log.read_text(), "nginx to log the request")
    assert any(e["request_id"] == request_id and e["route"] == "/health/ready" for e in access_lines(serve_log))
    assert not [e for e in access_lines(serve_log) if e["route"] == "/metrics"]  # never reached the broker
    wait_until(lambda: len(nginx_log.read_text().splitlines()) >= 5, "nginx to log every request")
    written = nginx_log.read_text()
    assert "ST-1-nginxLogCheck" not in written and "/login" not in written
