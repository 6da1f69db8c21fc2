"""The demo outbox: the messages the broker would have sent, readable — in demo mode only.

In demo mode no gateway is configured; messages go to the outbox provider, which keeps their values
(encrypted, like every queued message) so the demo's outbox page can show the code or link a newcomer
needs. Outside demo mode this refuses: real messages are erased once they are out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from idbroker.config import Settings
from idbroker.contacts.models import MessageDelivery
from idbroker.contacts.senders.templates import render
from idbroker.directory.protect import Protector


@dataclass(frozen=True)
class OutboxMessage:
    at: datetime
    channel: str
    to: str  # masked
    state: str
    subject: str | None
    text: str


def outbox(session: Session, settings: Settings, *, limit: int = 50) -> list[OutboxMessage]:
    if not settings.demo_mode:
        raise PermissionError("the outbox exists in demo mode only")
    protector = Protector.from_settings(settings)
    found = []
    rows = session.scalars(
        select(MessageDelivery)
        .where(MessageDelivery.provider == "outbox", MessageDelivery.params_cipher.is_not(None))  # type: ignore[union-attr]
        .order_by(MessageDelivery.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    )
    for delivery in rows:
        params = json.loads(protector.decrypt(delivery.params_cipher or "", purpose="message_params"))
        message = render(settings, delivery.template, delivery.channel, params)
        found.append(
            OutboxMessage(
                delivery.created_at,
                delivery.channel,
                delivery.recipient_hint,
                delivery.state,
                message.subject,
                message.text,
            )
        )
    return found
