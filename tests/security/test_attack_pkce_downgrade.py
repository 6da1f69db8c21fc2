"""PKCE downgrade: a public app cannot skip PKCE, nobody can use `plain` (asked for, or implied by a challenge
without a method), a code bound to a challenge needs its verifier — one wrong try spends the code — and a
verifier cannot be added to a code that had no challenge.

Elsewhere (not repeated here): a wrong verifier, `plain`, a public app without a challenge and a public app's
token request without a verifier, one case each (`tests/oidc/test_conformance_basic.py::test_pkce`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from plugins.apps import VERIFIER, Campus, MakeApp, authorize_query, exchange, get_code, query_of
from plugins.web import sign_in
from sqlalchemy import Engine

from idbroker.oidc.rfc7636 import s256

UID = "1120150001"


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


@pytest.fixture
def rp(sqlite_engine: Engine, campus: Campus, make_app: MakeApp, web_client: Any, cas_server: Any) -> Any:
    _app, web_client.secret = make_app("rp1")
    make_app("spa", kind="public")
    cas_server.add_user(UID)
    sign_in(web_client, cas_server, UID)
    return web_client


def refused_at_authorize(client: Any, client_id: str, **params: str) -> str:
    response = client.get("/oidc/authorize", params=authorize_query(client_id, **params))
    assert response.status_code == 302, response.text
    answer = query_of(response.headers["location"])
    assert "code" not in answer and answer["error"] == "invalid_request", answer
    return answer["error_description"]


DOWNGRADES = [
    ({"code_challenge_method": "plain"}, "S256"),
    ({"code_challenge_method": "PLAIN"}, "S256"),
    ({"code_challenge_method": "s256"}, "S256"),
    ({"code_challenge_method": ""}, "S256"),  # a challenge without a method means plain (RFC 7636 §4.3)
    ({"code_challenge": VERIFIER, "code_challenge_method": ""}, "S256"),  # the verifier itself, as plain would
    ({"code_challenge": "short"}, "43 characters"),
    ({"code_challenge": s256(VERIFIER) + "="}, "43 characters"),
    ({"code_challenge": ""}, "without code_challenge"),  # a method and no challenge
]


def test_no_downgrade_at_the_authorization_request(rp: Any) -> None:
    for client_id in ("spa", "rp1"):
        for params, reason in DOWNGRADES:
            assert reason in refused_at_authorize(rp, client_id, **params), (client_id, params)


def test_a_public_app_cannot_skip_pkce(rp: Any) -> None:
    description = refused_at_authorize(rp, "spa", code_challenge="", code_challenge_method="")
    assert description.startswith("a public client must use PKCE")


WRONG_VERIFIERS = [None, "", "w" * 50, "x" * 42, s256(VERIFIER), VERIFIER + "x", VERIFIER.upper(), "é" * 50]


def test_a_code_bound_to_a_challenge_needs_its_verifier_and_one_wrong_try_spends_it(rp: Any) -> None:
    for verifier in WRONG_VERIFIERS:
        for client_id, secret in (("spa", None), ("rp1", rp.secret)):
            code = get_code(rp, client_id)
            wrong = exchange(rp, client_id, secret, code, code_verifier=verifier or "")
            assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant", (verifier, wrong.text)
            right = exchange(rp, client_id, secret, code)  # the real verifier, too late: the code is spent
            assert right.status_code == 400 and right.json()["error"] == "invalid_grant", verifier


def test_a_verifier_cannot_be_added_to_a_code_without_a_challenge(rp: Any) -> None:
    code = get_code(rp, "rp1", code_challenge="", code_challenge_method="")
    added = exchange(rp, "rp1", rp.secret, code)  # exchange() always sends VERIFIER
    assert added.status_code == 400 and added.json()["error"] == "invalid_grant"


def test_a_public_app_with_its_verifier_works(rp: Any) -> None:
    """The control: the refusals above are PKCE's, not a broken public flow."""
    response = exchange(rp, "spa", None, get_code(rp, "spa"))
    assert response.status_code == 200 and "id_token" in response.json()
