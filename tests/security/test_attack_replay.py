"""Code and refresh-token replay, including the race a replay becomes with several API workers: one code,
or one refresh token, sent many times at once over HTTP gives exactly one answer with tokens, on SQLite and
PostgreSQL (the row is locked, `SELECT … FOR UPDATE`); another app cannot spend a code that is not its own.

Elsewhere (not repeated here): a replayed code revokes what it issued (`tests/oidc/test_conformance_basic.py`);
a reused refresh token revokes the sign-in, another app's refresh token is nothing to it
(`tests/oidc/test_token_lifecycle.py`); replayed CAS tickets (`tests/web/test_login_cas.py`), verification
codes (`tests/contacts/test_contacts_codes.py`) and WeChat Work callbacks (`tests/wecom/test_wecom_callbacks.py`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from plugins.apps import CALLBACK, VERIFIER, Campus, MakeApp, exchange, get_code
from plugins.web import sign_in
from sqlalchemy import Engine

UID = "1120150001"
AT_ONCE = 8


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


@pytest.fixture
def rp(engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any, cas_server: Any, live_server: Any) -> Any:
    _app, web_client.secret = make_app("rp1")
    _other, web_client.other_secret = make_app("rp2")
    cas_server.add_user(UID)
    sign_in(web_client, cas_server, UID)
    web_client.live_url = live_server.url
    return web_client


def at_once(url: str, data: dict[str, str], auth: tuple[str, str]) -> list[httpx.Response]:
    def send(_: int) -> httpx.Response:
        return httpx.post(f"{url}/oidc/token", data=data, auth=auth, timeout=60)

    with ThreadPoolExecutor(AT_ONCE) as pool:
        return list(pool.map(send, range(AT_ONCE)))


def test_one_code_sent_many_times_at_once_gives_tokens_once(rp: Any) -> None:
    code = get_code(rp, "rp1")
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": VERIFIER}
    answers = at_once(rp.live_url, data, ("rp1", rp.secret))
    granted = [answer for answer in answers if answer.status_code == 200]
    assert len(granted) == 1, [answer.text for answer in answers]
    assert all(a.json()["error"] == "invalid_grant" for a in answers if a.status_code != 200)
    # the replays revoked what the one success issued
    userinfo = rp.get("/oidc/userinfo", headers={"Authorization": f"Bearer {granted[0].json()['access_token']}"})
    assert userinfo.status_code == 401


def test_one_refresh_token_sent_many_times_at_once_is_used_once(rp: Any) -> None:
    first = exchange(rp, "rp1", rp.secret, get_code(rp, "rp1")).json()
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    answers = at_once(rp.live_url, data, ("rp1", rp.secret))
    granted = [answer for answer in answers if answer.status_code == 200]
    assert len(granted) == 1, [answer.text for answer in answers]
    again = rp.post(
        "/oidc/token",
        data={"grant_type": "refresh_token", "refresh_token": granted[0].json()["refresh_token"]},
        auth=("rp1", rp.secret),
    )
    assert again.json()["error"] == "invalid_grant"  # the reuses revoked the sign-in, the winner's tokens too


def test_another_app_cannot_spend_a_code_and_the_code_stays_its_owners(rp: Any) -> None:
    code = get_code(rp, "rp1")
    stolen = exchange(rp, "rp2", rp.other_secret, code)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert exchange(rp, "rp1", rp.secret, code).status_code == 200
