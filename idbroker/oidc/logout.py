"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

The app sends the person to `end_session_endpoint` with `id_token_hint` (an ID token we issued to it,
verified with our keys, RS256 only; an expired one is fine), optionally `client_id`,
`post_logout_redirect_uri` (must exactly match one the app registered) and `state`. With a valid hint
for the person signed in here, the broker session ends at once; without one the person is asked first
(§2: a logout request anyone can forge must not sign people out unasked). Afterwards the person goes to
the app's registered post-logout URI, or sees a "signed out" page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session

from idbroker.oidc.id_token import InvalidIdToken, read_id_token
from idbroker.oidc.keys import Keys
from idbroker.oidc.rfc6749.authorization_code import response_location
from idbroker.release.models import App
from idbroker.release.pseudonyms import UnknownPseudonym, reverse


class LogoutRefused(ValueError):
    pass


@dataclass(frozen=True)
class LogoutRequest:
    app: App | None
    hinted_person: str | None  # the person the id_token_hint names, if valid
    redirect_to: str | None  # the registered post-logout URI with state, or None

    def same_person(self, person_id: str | None) -> bool:
        return self.hinted_person is not None and self.hinted_person == person_id


def parse_logout(session: Session, keys: Keys, params: Mapping[str, str], *, issuer: str) -> LogoutRequest:
    hint, client_id = params.get("id_token_hint"), params.get("client_id")
    claims = None
    if hint:
        try:
            claims = read_id_token(keys, hint, issuer=issuer)
        except InvalidIdToken as exc:
            raise LogoutRefused(str(exc)) from None
        audience = claims.get("aud")
        hinted_client = audience if isinstance(audience, str) else None
        if client_id and hinted_client != client_id:
            raise LogoutRefused("client_id does not match the id_token_hint's audience")
        client_id = hinted_client
    app = session.get(App, client_id) if client_id else None
    if client_id and app is None:
        raise LogoutRefused("unknown client")
    person = None
    if claims is not None and app is not None:
        try:
            person = reverse(session, app.sector, str(claims["sub"])).id
        except UnknownPseudonym:
            person = None
    target = params.get("post_logout_redirect_uri")
    redirect_to = None
    if target:
        if app is None or target not in app.post_logout_redirect_uris:
            raise LogoutRefused("post_logout_redirect_uri is not registered for this client (exact match)")
        redirect_to = response_location(target, {"state": params.get("state")})
    return LogoutRequest(app=app, hinted_person=person, redirect_to=redirect_to)


def confirmation_fields(params: Mapping[str, str]) -> dict[str, str]:
    """The request's parameters, carried through the confirmation form."""
    keep = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")
    return {key: params[key] for key in keep if params.get(key)}
