"""Proof Key for Code Exchange (RFC 7636): S256 only; public apps must use it.

`plain` is refused: it protects nothing against an attacker who can read the authorization request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

METHODS = ("S256",)
VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # §4.1
CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")  # BASE64URL(SHA-256) without padding


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def check_challenge(challenge: str | None, method: str | None) -> str | None:
    """What is wrong with the request's challenge, or None (also when there is none)."""
    if challenge is None:
        return "code_challenge_method without code_challenge" if method else None
    if (method or "plain") not in METHODS:
        return "code_challenge_method must be S256"
    if not CHALLENGE.fullmatch(challenge):
        return "code_challenge must be BASE64URL(SHA-256(code_verifier)): 43 characters"
    return None


def verify(verifier: str | None, challenge: str) -> bool:
    """§4.6: BASE64URL(SHA256(code_verifier)) == code_challenge, compared in constant time."""
    if verifier is None or not VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
