"""OpenID Connect Discovery 1.0 §3: the provider's metadata at `/.well-known/openid-configuration`."""

from __future__ import annotations

from typing import Any

from idbroker.oidc.keys import ALGORITHM
from idbroker.release.claims import OUTPUT_NAMES, SCOPES_SUPPORTED

ENDPOINTS = {
    "authorization_endpoint": "/oidc/authorize",
    "token_endpoint": "/oidc/token",
    "userinfo_endpoint": "/oidc/userinfo",
    "jwks_uri": "/oidc/jwks",
    "introspection_endpoint": "/oidc/introspect",
    "revocation_endpoint": "/oidc/revoke",
    "end_session_endpoint": "/oidc/logout",
}
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


def metadata(issuer: str) -> dict[str, Any]:
    claims = sorted({name for names in OUTPUT_NAMES.values() for name in names})
    return {
        "issuer": issuer,
        **{name: issuer + path for name, path in ENDPOINTS.items()},
        "scopes_supported": list(SCOPES_SUPPORTED),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS[:2],
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": sorted({*claims, "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp"}),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "ui_locales_supported": ["zh-CN", "en"],
    }
