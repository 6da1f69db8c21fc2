"""The tables of the release side: registered apps, stored pseudonyms and separate consents."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from idbroker.clock import utcnow


class App(SQLModel, table=True):
    """A registered app (an OAuth 2 client). Its release policy is `policies/apps/<client_id>.yaml`."""

    __tablename__ = "app"

    client_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=128)
    kind: str = Field(default="confidential", max_length=16)  # confidential | public
    secret_hash: str | None = Field(default=None, max_length=255)  # argon2; None for public apps
    redirect_uris: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    post_logout_redirect_uris: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sector: str = Field(max_length=255, index=True)  # pairwise subject sector (OIDC Core §8.1)
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    secret_rotated_at: datetime | None = None


class Pseudonym(SQLModel, table=True):
    """The stored pseudonym of one person (as an ID, merged or not) in one sector: reversible by the broker
    alone, stable for life. Rows are never re-pointed: merges and un-merges are followed through `person`."""

    __tablename__ = "pseudonym"
    __table_args__ = (
        UniqueConstraint("sector", "value", name="uq_pseudonym_sector_value"),
        UniqueConstraint("sector", "person_id", name="uq_pseudonym_sector_person"),
        Index("ix_pseudonym_person", "person_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    sector: str = Field(max_length=255)
    value: str = Field(max_length=64)
    person_id: str = Field(foreign_key="person.id", max_length=32)
    key_version: str = Field(max_length=8)
    created_at: datetime = Field(default_factory=utcnow)


class Consent(SQLModel, table=True):
    """A person's separate consent (PIPL Art. 23) to give an app the listed claims for the stated purpose."""

    __tablename__ = "app_consent"
    __table_args__ = (Index("ix_app_consent_person_app", "person_id", "client_id"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: str = Field(foreign_key="person.id", max_length=32)
    client_id: str = Field(foreign_key="app.client_id", max_length=64)
    claims: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    purpose_digest: str = Field(max_length=64)  # SHA-256 of the purpose shown: a new purpose asks again
    granted_at: datetime = Field(default_factory=utcnow)
    withdrawn_at: datetime | None = None
