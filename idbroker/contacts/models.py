"""Contacts: phone numbers and email addresses with their provenance, verification flows and deliveries.

- `ContactPoint` — one value (an E.164 phone or a normalised email) of one person, with how and when the
  person verified it, whether the helpdesk confirmed it (with the reason), whether the person removed it.
- `ContactClaim` — one source saying so: a source record (student, hr, cas, billing, …) or a person
  (self_service) or a helpdesk call (helpdesk), when it first and last said so, and whether it still does.
- `PrimaryChoice` — the primary phone and email of a person, chosen by `policies/contacts.yaml` and kept
  with the reasons, recomputed on every change.
- `VerificationFlow` — one code or link sent to one target for one person (the target kept encrypted; the
  code and link only as keyed hashes).
- `UpdateLink` — "send an SMS to update": a single-use link that opens the update page for one person.
- `MessageDelivery` — one message on one channel: queued → sent → delivered (or failed), with retries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from idbroker.clock import utcnow


class ContactPoint(SQLModel, table=True):
    __tablename__ = "contact_point"
    __table_args__ = (
        UniqueConstraint("person_id", "kind", "value", name="uq_contact_point_person_kind_value"),
        Index("ix_contact_point_kind_value", "kind", "value"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: str = Field(foreign_key="person.id", max_length=32, index=True)
    kind: str = Field(max_length=8)  # phone | email
    value: str = Field(max_length=254)  # E.164, or the normalised address
    phone_type: str | None = Field(default=None, max_length=16)  # mobile | fixed_line | other
    state: str = Field(default="active", max_length=16)  # active | removed
    verified_at: datetime | None = None  # the person proved they hold it
    verified_method: str | None = Field(default=None, max_length=16)  # sms_code | email_code | email_link
    verified_flow_id: str | None = Field(default=None, max_length=32)
    chosen_at: datetime | None = None  # the person picked it as their primary
    confirmed_at: datetime | None = None  # a helpdesk call confirmed it
    confirmed_by: str | None = Field(default=None, max_length=64)
    confirmed_reason: str | None = Field(default=None, max_length=255)
    removed_at: datetime | None = None
    removed_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ContactClaim(SQLModel, table=True):
    __tablename__ = "contact_claim"

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact_point.id", index=True)
    source: str = Field(max_length=32)  # student | hr | cas | billing | … | self_service | helpdesk
    source_record_id: int | None = Field(default=None, foreign_key="source_record.id", index=True)
    actor: str | None = Field(default=None, max_length=64)  # self_service / helpdesk: who said it
    reason: str | None = Field(default=None, max_length=255)  # helpdesk: why
    current: bool = True  # the source still says so
    listed: bool = True  # a record's claim: the record was in its source's latest export when last collected
    first_said: datetime = Field(default_factory=utcnow)
    last_said: datetime = Field(default_factory=utcnow)
    until: datetime | None = None  # when it stopped saying so


class PrimaryChoice(SQLModel, table=True):
    __tablename__ = "primary_choice"

    person_id: str = Field(foreign_key="person.id", max_length=32, primary_key=True)
    kind: str = Field(max_length=8, primary_key=True)
    contact_id: int | None = Field(default=None, foreign_key="contact_point.id")
    value: str | None = Field(default=None, max_length=254)
    verified: bool = False
    rule: str | None = Field(default=None, max_length=32)  # the rule that decided, or why there is none
    explanation: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    computed_at: datetime = Field(default_factory=utcnow)


class VerificationFlow(SQLModel, table=True):
    __tablename__ = "verification_flow"
    __table_args__ = (
        Index("ix_verification_flow_person_created", "person_id", "created_at"),
        Index("ix_verification_flow_target_created", "target_hash", "created_at"),
        Index("ix_verification_flow_block_created", "block_hash", "created_at"),
        Index("ix_verification_flow_ip_created", "ip_hash", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=32)  # random, shown to the person (never a number)
    person_id: str = Field(foreign_key="person.id", max_length=32)
    purpose: str = Field(max_length=16)  # phone | email
    channel: str = Field(max_length=8)  # sms | email
    method: str = Field(max_length=8)  # code | link
    state: str = Field(default="sent", max_length=16)  # sent | passed | burned | superseded
    target_cipher: str = Field(max_length=512)
    target_hash: str = Field(max_length=64)
    block_hash: str | None = Field(default=None, max_length=64)  # numbers differing only in the last digits
    ip_hash: str | None = Field(default=None, max_length=64)
    code_hash: str | None = Field(default=None, max_length=64)
    link_hash: str | None = Field(default=None, max_length=64, unique=True)
    wrong_tries: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    finished_at: datetime | None = None
    delivery_id: int | None = Field(default=None, foreign_key="message_delivery.id")


class UpdateLink(SQLModel, table=True):
    __tablename__ = "update_link"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    person_id: str = Field(foreign_key="person.id", max_length=32, index=True)
    channel: str = Field(max_length=8)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
    delivery_id: int | None = Field(default=None, foreign_key="message_delivery.id")
    # Using the link starts a short session for the contact pages only (its cookie value kept as a hash).
    session_hash: str | None = Field(default=None, max_length=64, unique=True)
    session_expires_at: datetime | None = None


class MessageDelivery(SQLModel, table=True):
    __tablename__ = "message_delivery"
    __table_args__ = (Index("ix_message_delivery_channel_created", "channel", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: str | None = Field(default=None, foreign_key="person.id", max_length=32, index=True)
    channel: str = Field(max_length=8)  # sms | email
    provider: str | None = Field(default=None, max_length=16)  # kannel | cloud | smtp | outbox
    template: str = Field(max_length=64)
    recipient_cipher: str = Field(max_length=512)
    recipient_hint: str = Field(max_length=64)  # masked, for people and logs
    params_cipher: str | None = Field(default=None, max_length=2048)  # cleared once no longer needed
    state: str = Field(default="queued", max_length=16)  # queued | sending | sent | delivered | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    lease_until: datetime | None = None
    provider_ref: str | None = Field(default=None, max_length=128)
    last_error: str | None = Field(default=None, max_length=255)
    report: str | None = Field(default=None, max_length=32)  # the gateway's last delivery report
    fallback: bool = False  # may go out on the other channel if this one fails
    fallback_of: int | None = Field(default=None, foreign_key="message_delivery.id")
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    failed_at: datetime | None = None


class ContactCursor(SQLModel, table=True):
    """The last directory event whose people `collect.catch_up` has collected."""

    __tablename__ = "contact_cursor"

    id: int = Field(default=1, primary_key=True)
    event_id: int = 0
