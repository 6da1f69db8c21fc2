"""What a person sees of their own contacts: masked values, their status, their sources, pending codes.

Values are masked even for their owner (a shared screen, a screenshot); what another person holds, and why a
value cannot be primary when that is because someone else holds it, is never said.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.contacts.mask import mask_contact
from idbroker.contacts.primary import primary_choices
from idbroker.contacts.provenance import contacts_of
from idbroker.contacts.verification import flow


@dataclass(frozen=True)
class Item:
    id: int
    kind: str
    masked: str
    phone_type: str | None
    primary: bool
    verified_method: str | None
    verified_at: datetime | None
    confirmed: bool
    sources: list[str]
    removed: bool

    @property
    def can_choose(self) -> bool:
        return not self.removed and not self.primary and self.verified_at is not None


@dataclass(frozen=True)
class Pending:
    flow_id: str
    kind: str
    method: str
    masked: str
    expires_at: datetime


@dataclass
class Overview:
    phones: list[Item] = field(default_factory=list)
    emails: list[Item] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)

    def primary(self, kind: str) -> Item | None:
        items = self.phones if kind == "phone" else self.emails
        return next((item for item in items if item.primary), None)


def overview(session: Session, settings: Settings, person_id: str) -> Overview:
    choices = primary_choices(session, person_id)
    primary_ids = {choice.contact_id for choice in choices.values() if choice.contact_id}
    result = Overview()
    for view in contacts_of(session, person_id):
        if not view.live and not view.removed:
            continue  # no source says it any more and the person never verified it: history, not theirs now
        item = Item(
            id=view.id,
            kind=view.kind,
            masked=mask_contact(view.kind, view.value),
            phone_type=view.phone_type,
            primary=bool(primary_ids & {p.id for p in view.points}),
            verified_method=view.verified_method,
            verified_at=view.verified_at,
            confirmed=view.confirmed is not None,
            sources=sorted({c.source for c in view.claims if c.current}),
            removed=view.removed,
        )
        (result.phones if view.kind == "phone" else result.emails).append(item)
    for items in (result.phones, result.emails):
        items.sort(key=lambda i: (i.removed, not i.primary, i.verified_at is None, i.id))
    for pending in flow.pending(session, person_id, utcnow()):
        result.pending.append(
            Pending(
                pending.id,
                pending.purpose,
                pending.method,
                mask_contact(pending.purpose, flow.target_of(settings, pending)),
                pending.expires_at,
            )
        )
    return result
