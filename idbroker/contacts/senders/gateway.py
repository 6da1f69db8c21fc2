"""The sender interface: hand one message to a gateway, and learn whether to retry if it fails.

Each SMS gateway (Kannel's `sendsms`, a cloud SMS API) and the email sender (SMTP) implements `send`;
`sms_gateway(settings)` / `email_sender(settings)` pick the configured one. A gateway raises `Transient`
when trying again later may work (connection refused, a 5xx, throttling) and `Permanent` when it will not
(a refused number, bad credentials, a rejected template). Error texts never hold the recipient or the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import httpx

from idbroker.config import Settings
from idbroker.contacts.senders.templates import Rendered


@lru_cache(maxsize=1)
def http_client() -> httpx.Client:
    """One HTTP client per process for the SMS gateways: connections kept alive, TLS set up once."""
    return httpx.Client(headers={"User-Agent": "idbroker"})


class SendFailed(Exception):
    """The gateway did not take the message."""


class Transient(SendFailed):
    """Try again later."""


class Permanent(SendFailed):
    """Trying again will not help."""


@dataclass(frozen=True)
class Outgoing:
    delivery_id: int
    to: str  # E.164 for SMS, an address for email
    message: Rendered
    report_url: str | None = None  # where the gateway may post its delivery report


@dataclass(frozen=True)
class Handover:
    """The gateway took the message; `reference` is its id for it (for delivery reports), if it gives one."""

    reference: str | None = None
    delivered: bool = False  # the gateway already knows it arrived (the demo outbox)


class Sender(Protocol):
    name: str

    def send(self, outgoing: Outgoing) -> Handover: ...


class Outbox:
    """Demo mode only: nothing leaves the machine; the message stays (encrypted) for the demo's outbox page."""

    name = "outbox"

    def send(self, outgoing: Outgoing) -> Handover:
        return Handover(reference=f"outbox-{outgoing.delivery_id}", delivered=True)


class NotConfigured:
    name = "none"

    def __init__(self, what: str) -> None:
        self.what = what

    def send(self, outgoing: Outgoing) -> Handover:
        raise Transient(f"no {self.what} is configured (see README: Contacts)")


def sms_gateway(settings: Settings) -> Sender:
    provider = settings.sms_provider or ("outbox" if settings.demo_mode else None)
    if provider == "kannel":
        from idbroker.contacts.senders.kannel import KannelGateway

        return KannelGateway.from_settings(settings)
    if provider == "cloud":
        from idbroker.contacts.senders.cloud import AliyunSms

        return AliyunSms.from_settings(settings)
    if provider == "outbox" and settings.demo_mode:
        return Outbox()
    return NotConfigured("SMS gateway (IDBROKER_SMS_PROVIDER=kannel|cloud)")


def email_sender(settings: Settings) -> Sender:
    provider = settings.email_provider or ("outbox" if settings.demo_mode else None)
    if provider == "smtp":
        from idbroker.contacts.senders.smtp import SmtpSender

        return SmtpSender.from_settings(settings)
    if provider == "outbox" and settings.demo_mode:
        return Outbox()
    return NotConfigured("email sender (IDBROKER_EMAIL_PROVIDER=smtp)")


def sender_for(settings: Settings, channel: str) -> Sender:
    return sms_gateway(settings) if channel == "sms" else email_sender(settings)
