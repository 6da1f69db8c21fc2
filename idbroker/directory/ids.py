"""Opaque internal IDs: 128 random bits, never derived from any number a person holds."""

import base64
import secrets

PERSON_ID_LENGTH = 26


def new_person_id() -> str:
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
