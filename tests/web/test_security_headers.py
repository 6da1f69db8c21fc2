"""Security headers on every response (pages, API, errors, static files) and the request size limit."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from plugins.web import LiveServer

from idbroker.config import Settings
from idbroker.web.app import create_app

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


def assert_secure(response: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, name
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp


@pytest.mark.parametrize(
    ("path", "accept", "status"),
    [
        ("/", "text/html", 200),
        ("/login/cas", "text/html", 400),
        ("/health/live", "application/json", 200),
        ("/staff/whoami", "application/json", 401),
        ("/no/such/page", "text/html", 404),
        ("/static/site.css", "text/css", 200),
        ("/openapi.json", "application/json", 200),
    ],
)
def test_every_response_carries_the_headers(web_client: TestClient, path: str, accept: str, status: int) -> None:
    response = web_client.get(path, headers={"accept": accept})
    assert response.status_code == status
    assert_secure(response)
    assert "strict-transport-security" not in response.headers  # public_url is http


def test_pages_load_nothing_from_elsewhere_and_run_no_inline_script(web_client: TestClient) -> None:
    page = web_client.get("/", headers={"accept": "text/html"}).text
    assert "<script" not in page and "style=" not in page and "<style" not in page
    assert "http://" not in page and "https://" not in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    css = web_client.get("/static/site.css").text
    assert "@import" not in css and "url(" not in css  # no external fonts


@pytest.fixture
def https_client(sqlite_engine) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=str(sqlite_engine.url), public_url="https://id.example.edu")
    with TestClient(create_app(settings), base_url="https://id.example.edu") as client:
        yield client


def test_hsts_only_when_the_public_url_is_https(https_client: TestClient) -> None:
    for path in ("/", "/health/live"):
        response = https_client.get(path)
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")
        assert_secure(response)


def test_the_api_docs_get_the_policy_their_viewer_needs(web_client: TestClient) -> None:
    response = web_client.get("/docs")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "cdn.jsdelivr.net" in csp


def test_a_body_over_the_limit_gets_413(web_client: TestClient) -> None:
    response = web_client.post("/logout", content=b"x" * (1024**2 + 1), headers={"content-type": "text/plain"})
    assert response.status_code == 413
    assert_secure(response)


def raw_post(server: LiveServer, headers: str, body: bytes) -> bytes:
    """Send a request whose body never ends; return what the server answers meanwhile."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"POST /logout HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode() + body)
        return sock.recv(4096)


def test_a_declared_length_over_the_limit_is_refused_before_any_body(live_server: LiveServer) -> None:
    answer = raw_post(live_server, f"Content-Length: {100 * 1024**2}\r\nContent-Type: text/plain\r\n", b"")
    assert answer.startswith(b"HTTP/1.1 413")


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(live_server: LiveServer) -> None:
    chunk = 64 * 1024
    body = b"".join(f"{chunk:x}\r\n".encode() + b"x" * chunk + b"\r\n" for _ in range(20))  # 1.25 MiB, no end
    answer = raw_post(
        live_server, "Transfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n", body
    )
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"content-security-policy" in answer.lower()


def test_a_small_body_is_accepted(web_client: TestClient) -> None:
    response = web_client.post("/logout", data={"csrf_token": "x"})
    assert response.status_code == 403  # reached the CSRF check: the body was read
