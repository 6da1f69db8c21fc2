"""DEMO ONLY: a tiny relying party at `/demo/app` that signs in through the broker and shows what it got.

Included by `create_app` only when `IDBROKER_DEMO_MODE=true`. It behaves like any outside app: a public
client (`demo-app`, policy `policies/apps/demo-app.yaml`: pseudonym and nickname) doing the code flow with
PKCE over HTTP against the broker's own endpoints at `public_url`, verifying the ID token with the
published JWKS (RS256 pinned) and calling userinfo. It registers itself on first use.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from joserfc import jwt
from joserfc.jwk import KeySet

from idbroker.oidc.rfc7636 import s256
from idbroker.release import registry
from idbroker.release.models import App
from idbroker.web.routers.oidc import unit
from idbroker.web.templates import render

router = APIRouter(prefix="/demo/app", include_in_schema=False)
CLIENT_ID = "demo-app"
SECTOR = "demo-app.idbroker.invalid"
PENDING_SECONDS = 600
_pending: dict[str, dict[str, Any]] = {}  # state → verifier, nonce (demo only: one process, in memory)
_results: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()


def _base(request: Request) -> str:
    return request.app.state.settings.public_url.rstrip("/")


def _ensure_registered(request: Request) -> None:
    callback = f"{_base(request)}/demo/app/callback"
    with unit(request) as session:
        app = session.get(App, CLIENT_ID)
        if app is None:
            registry.register(
                session,
                request.app.state.settings.policies_dir,
                client_id=CLIENT_ID,
                name="演示应用 Demo app",
                kind="public",
                redirect_uris=[callback],
                post_logout_redirect_uris=[f"{_base(request)}/demo/app"],
                sector=SECTOR,
                actor="demo",
            )
        elif app.redirect_uris != [callback]:  # the demo was started on another address
            app.redirect_uris, app.post_logout_redirect_uris = [callback], [f"{_base(request)}/demo/app"]
            session.add(app)


@router.get("")
def home(request: Request, result: str | None = None) -> Response:
    with _lock:
        shown = _results.get(result or "")
    return render(request, "demo_app.html", result=shown)


@router.get("/start")
def start(request: Request) -> Response:
    _ensure_registered(request)
    state, verifier, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    with _lock:
        now = time.monotonic()
        for key in [k for k, v in _pending.items() if now - v["at"] > PENDING_SECONDS]:
            del _pending[key]
        _pending[state] = {"verifier": verifier, "nonce": nonce, "at": now}
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": f"{_base(request)}/demo/app/callback",
            "scope": "openid profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
    )
    return RedirectResponse(f"/oidc/authorize?{query}", status_code=303)


@router.get("/callback")
def callback(request: Request, state: str = "", code: str | None = None, error: str | None = None) -> Response:
    with _lock:
        pending = _pending.pop(state, None)
    if pending is None or code is None:
        return render(request, "demo_app.html", result={"error": error or "unknown state"}, status_code=400)
    base = _base(request)
    with httpx.Client(timeout=10) as client:
        tokens = client.post(
            f"{base}/oidc/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": f"{base}/demo/app/callback",
                "client_id": CLIENT_ID,
                "code_verifier": pending["verifier"],
            },
        ).json()
        if "id_token" not in tokens:
            return render(request, "demo_app.html", result={"error": tokens.get("error", "no token")}, status_code=400)
        keys = KeySet.import_key_set(client.get(f"{base}/oidc/jwks").json())
        id_token = jwt.decode(tokens["id_token"], keys, algorithms=["RS256"])
        userinfo = client.get(
            f"{base}/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        ).json()
    claims = dict(id_token.claims)
    if claims.get("nonce") != pending["nonce"] or claims.get("aud") != CLIENT_ID:
        return render(
            request, "demo_app.html", result={"error": "ID token nonce or audience mismatch"}, status_code=400
        )
    key = secrets.token_urlsafe(12)
    with _lock:
        _results[key] = {"id_token": claims, "userinfo": userinfo, "kid": id_token.header.get("kid")}
    return RedirectResponse(f"/demo/app?result={key}", status_code=303)
