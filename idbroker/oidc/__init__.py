"""The OpenID Connect provider, one module (or folder) per specification, as Authlib lays them out:
`discovery.py` (OpenID Connect Discovery 1.0), `jwks.py` and `keys.py` (RFC 7517 key sets, signing keys and
their rotation), `rfc6749/` (OAuth 2.0: client authentication, the authorization-code, refresh-token and
client-credentials grants), `rfc7636.py` (PKCE), `rfc7662.py` (introspection), `rfc7009.py` (revocation),
`id_token.py`, `userinfo.py`, `prompt.py` (prompt, max_age) and `logout.py` (RP-initiated logout 1.0).
None of it imports FastAPI: `idbroker/web/routers/oidc.py` translates HTTP to these calls."""
