"""OAuth 2.0 error responses (RFC 6749 §4.1.2.1, §5.2)."""

from __future__ import annotations


class OAuthError(Exception):
    """An error the protocol defines: `error` code, a description for the developer, the HTTP status.

    Raised by the grants; the web layer turns it into the JSON body (token, introspection, revocation
    endpoints), a redirect (authorization endpoint) or a `WWW-Authenticate` challenge (userinfo). What was
    written before it was raised is kept on purpose: a replayed code's revocation must stick.
    """

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class InvalidClient(OAuthError):
    def __init__(self, description: str = "client authentication failed", *, basic: bool = False) -> None:
        super().__init__("invalid_client", description, 401)
        self.basic = basic


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)
