"""The tables of the OpenID provider: signing keys, authorization codes, grants and tokens.

Codes and tokens are stored only as SHA-256 digests of their (256-bit random) values. A grant is what one
sign-in of one person to one app produced: its code, access and refresh tokens all hang off it, so
revoking the grant (a replayed code, a reused refresh token, a withdrawn consent) revokes them all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from idbroker.clock import utcnow


class SigningKey(SQLModel, table=True):
    __tablename__ = "oidc_signing_key"

    kid: str = Field(primary_key=True, max_length=64)
    alg: str = Field(max_length=16)
    private_key_cipher: str  # the private JWK, AES-GCM with the broker's encryption key
    public_jwk: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    retired_at: datetime | None = None  # no longer signs from then on
    expires_at: datetime | None = None  # no longer published nor trusted from then on


class Grant(SQLModel, table=True):
    __tablename__ = "oidc_grant"
    __table_args__ = (Index("ix_oidc_grant_person_app", "person_id", "client_id"),)

    id: str = Field(primary_key=True, max_length=32)
    client_id: str = Field(foreign_key="app.client_id", max_length=64)
    person_id: str = Field(foreign_key="person.id", max_length=32)
    scope: str = Field(max_length=512)
    auth_time: datetime
    session_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    revoked_reason: str | None = Field(default=None, max_length=64)


class AuthorizationCode(SQLModel, table=True):
    __tablename__ = "oidc_code"

    digest: str = Field(primary_key=True, max_length=64)
    grant_id: str = Field(foreign_key="oidc_grant.id", max_length=32, index=True)
    client_id: str = Field(max_length=64)
    redirect_uri: str = Field(max_length=2048)
    nonce: str | None = Field(default=None, max_length=512)
    code_challenge: str | None = Field(default=None, max_length=128)
    code_challenge_method: str | None = Field(default=None, max_length=8)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class Token(SQLModel, table=True):
    """An access or refresh token. `grant_id` is None for a client-credentials token (no person)."""

    __tablename__ = "oidc_token"
    __table_args__ = (Index("ix_oidc_token_grant", "grant_id"),)

    digest: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=8)  # access | refresh
    client_id: str = Field(foreign_key="app.client_id", max_length=64)
    grant_id: str | None = Field(default=None, foreign_key="oidc_grant.id", max_length=32)
    scope: str = Field(max_length=512)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None  # a refresh token, once exchanged (rotation)
    revoked_at: datetime | None = None
