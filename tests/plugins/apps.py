"""Fixtures for apps and the OpenID provider (issue 4).

- `apps_policies` — a copy of the repo's `policies/` in the test's directory, used by the settings
  (`IDBROKER_POLICIES_DIR`), so a test can write `policies/apps/<id>.yaml`; a module using `live_server`
  overrides `live_server_overrides` to return `{"policies_dir": apps_policies}`.
- `campus` — a small imported campus on the test's database (`engine` or `sqlite_engine`): 张帅 as
  undergraduate 1120101234 and, as a separate person (an open review case), master 2120143257; 李丽
  1120150001; 王强 staff 6120170032.
- `make_app(client_id, claims=…, kind=…, …)` — writes the policy and registers the app: `(App, secret)`.
- `authorize_in_browser(client, url, uid, cas, redirect_prefix)` — drives the authorization request in
  an HTTP client like a browser would: the broker's login, the CAS stand-in's form, the consent page (allow),
  and returns the URL the broker finally sent the browser to (the app's redirect URI with code or error).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import yaml
from factories import HR_HEADER, STUDENT_HEADER, national_id, staff, student, write_csv
from sqlalchemy import Engine
from sqlmodel import Session
from standins.cas_server import DEFAULT_PASSWORD, CasStandIn

from idbroker.config import get_settings
from idbroker.directory.queries import people_by_number
from idbroker.release import policies as policies_module
from idbroker.release import registry
from idbroker.release.models import App
from idbroker.sources.importer import run_import

REPO_POLICIES = Path(__file__).resolve().parent.parent.parent / "policies"
CALLBACK = "https://app.example.edu/callback"


@pytest.fixture
def apps_policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(REPO_POLICIES, target)
    monkeypatch.setenv("IDBROKER_POLICIES_DIR", str(target))
    get_settings.cache_clear()
    return target


def _database(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue("engine" if "engine" in request.fixturenames else "sqlite_engine")


@dataclass(frozen=True)
class Campus:
    engine: Engine
    zhang_bachelor: str  # person ids
    zhang_master: str
    li: str
    wang: str


def import_campus(engine: Engine, directory: Path) -> Campus:
    settings = get_settings()
    students = [
        student("1120101234", "张帅", "男", "1992-05-06", national_id(date(1992, 5, 6), 31), "本科", "2010",
                "13800000001", "zhangshuai@example.edu"),
        student("2120143257", "张帅", "男", "1992-05-06", "", "硕士", "2014", "13900000002"),
        student("1120150001", "李丽", "女", "1997-04-01", national_id(date(1997, 4, 1), 42), "本科", "2015",
                "13800000003", "lili@example.edu", college="外国语学院"),
    ]  # fmt: skip
    staff_rows = [
        staff("6120170032", "王强", "男", "1980-01-02", national_id(date(1980, 1, 2), 13), "13700000004",
              "wangqiang@example.edu"),
    ]  # fmt: skip
    with Session(engine) as session:
        for source, header, rows in (("student", STUDENT_HEADER, students), ("hr", HR_HEADER, staff_rows)):
            path = write_csv(directory / f"{source}.csv", header, rows)
            run_import(session, source=source, location=str(path), settings=settings, actor="test")
        session.commit()
        ids = [people_by_number(session, n)[0].id for n in ("1120101234", "2120143257", "1120150001", "6120170032")]
    assert ids[0] != ids[1], "the master's record must start as its own person"
    return Campus(engine, *ids)


@pytest.fixture
def campus(request: pytest.FixtureRequest, tmp_path: Path) -> Campus:
    directory = tmp_path / "exports"
    directory.mkdir()
    return import_campus(_database(request), directory)


def write_policy(policies: Path, client_id: str, **fields: Any) -> Path:
    body = {"client_id": client_id, "purpose": fields.pop("purpose", "测试应用：登录"), **fields}
    path = policies / "apps" / f"{client_id}.yaml"
    path.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    policies_module._checked.pop(path, None)  # read it again now, not within the next second
    return path


MakeApp = Callable[..., tuple[App, str | None]]


@pytest.fixture
def make_app(request: pytest.FixtureRequest, apps_policies: Path) -> MakeApp:
    engine = _database(request)

    def make(
        client_id: str,
        *,
        claims: tuple[str, ...] = ("pseudonym", "nickname"),
        kind: str = "confidential",
        redirect_uris: tuple[str, ...] = (CALLBACK,),
        sector: str | None = None,
        post_logout_redirect_uris: tuple[str, ...] = (),
        **policy: Any,
    ) -> tuple[App, str | None]:
        write_policy(apps_policies, client_id, claims=list(claims), **policy)
        with Session(engine, expire_on_commit=False) as session:
            made = registry.register(
                session,
                apps_policies,
                client_id=client_id,
                name=f"App {client_id}",
                redirect_uris=list(redirect_uris),
                kind=kind,
                sector=sector,
                post_logout_redirect_uris=list(post_logout_redirect_uris),
                actor="test",
            )
            session.commit()
        return made.app, made.secret

    return make


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_REQUEST_QUERY = re.compile(r'name="request_query" value="([^"]+)"')


def authorize_in_browser(
    client: httpx.Client,
    url: str,
    uid: str,
    cas: CasStandIn,
    redirect_prefix: str = CALLBACK,
    *,
    consent: str = "allow",
) -> str:
    """Follow the authorization like a browser; returns the final Location at the app's redirect URI."""
    import html

    cas.add_user(uid)
    for _ in range(20):
        response = client.get(url) if not isinstance(url, tuple) else client.post(url[0], data=url[1])
        if response.status_code in (301, 302, 303, 307):
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(redirect_prefix):
                return location
            url = location
            continue
        text = response.text
        if response.status_code == 200 and 'name="password"' in text:  # the CAS stand-in's form
            url = (
                str(response.url),
                {"service": _hidden(text, "service"), "username": uid, "password": DEFAULT_PASSWORD},
            )
            continue
        if response.status_code == 200 and 'action="/oidc/consent"' in text:
            csrf = html.unescape(_CSRF.search(text).group(1))  # type: ignore[union-attr]
            query = html.unescape(_REQUEST_QUERY.search(text).group(1))  # type: ignore[union-attr]
            url = (
                urljoin(str(response.url), "/oidc/consent"),
                {"csrf_token": csrf, "request_query": query, "decision": consent},
            )
            continue
        raise AssertionError(f"unexpected answer {response.status_code} at {response.url}: {text[:500]}")
    raise AssertionError("too many redirects")


def _hidden(text: str, name: str) -> str:
    import html

    match = re.search(rf'name="{name}" value="([^"]*)"', text)
    assert match, f"no hidden field {name}"
    return html.unescape(match.group(1))


@pytest.fixture
def browser_client() -> Iterator[httpx.Client]:
    """An HTTP client that keeps cookies and does not follow redirects (the helper does)."""
    with httpx.Client(follow_redirects=False, timeout=30) as client:
        yield client


# --- the code flow on a `web_client` (TestClient, public_url http://testserver) ------------------------

VERIFIER = "verifier-" + "x" * 50


def authorize_query(client_id: str, **params: str) -> dict[str, str]:
    from idbroker.oidc.rfc7636 import s256

    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile",
        "state": "state-1",
        "nonce": "nonce-1",
        "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256",
    }
    query.update(params)
    return {key: value for key, value in query.items() if value != ""}


def query_of(location: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(location).query))


def get_code(client: Any, client_id: str, **params: str) -> str:
    """The code for an already signed-in `web_client` (asserts the broker redirected with one)."""
    response = client.get("/oidc/authorize", params=authorize_query(client_id, **params))
    assert response.status_code == 302, response.text
    answer = query_of(response.headers["location"])
    assert "code" in answer, answer
    return answer["code"]


def exchange(client: Any, client_id: str, secret: str | None, code: str, **extra: str) -> Any:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": VERIFIER}
    data.update(extra)
    if secret is None:
        data["client_id"] = client_id
        return client.post("/oidc/token", data=data)
    return client.post("/oidc/token", data=data, auth=(client_id, secret))


def app_token(client: Any, client_id: str, secret: str) -> str:
    response = client.post("/oidc/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    return response.json()["access_token"]
