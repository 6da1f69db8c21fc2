"""Kannel's HTTP `sendsms` interface (smsbox), with delivery reports through `dlr-url`.

`GET /cgi-bin/sendsms?username=&password=&to=&text=&coding=2&charset=UTF-8&dlr-mask=&dlr-url=`:
`coding=2` sends UCS-2 (Chinese), `charset=UTF-8` says how `text` is encoded in the request. Kannel answers
`202 0: Accepted for delivery` or `202 3: Queued for later delivery`; `4xx` (authorisation failed, not
routable, bad parameters) will not succeed on a retry, `5xx` and connection errors may. With `dlr-mask`
Kannel calls `dlr-url` back, replacing `%d` with the report type: 1 delivered to the phone, 2 not delivered
to the phone, 4 queued at the SMSC, 8 delivered to the SMSC, 16 not delivered to the SMSC.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from idbroker.config import Settings
from idbroker.contacts.senders.gateway import Handover, Outgoing, Permanent, Transient, http_client

DLR_DELIVERED, DLR_UNDELIVERED, DLR_QUEUED, DLR_SMSC_ACCEPTED, DLR_SMSC_REJECTED = 1, 2, 4, 8, 16


@dataclass(frozen=True)
class KannelGateway:
    url: str
    username: str
    password: str
    sender: str | None = None
    dlr_mask: int = 31
    timeout: float = 10.0
    name: str = "kannel"

    @classmethod
    def from_settings(cls, settings: Settings) -> KannelGateway:
        password = settings.kannel_password.get_secret_value() if settings.kannel_password else ""
        return cls(
            url=settings.kannel_sendsms_url,
            username=settings.kannel_username,
            password=password,
            sender=settings.kannel_sender,
            dlr_mask=settings.kannel_dlr_mask,
            timeout=settings.sms_timeout_seconds,
        )

    def params(self, outgoing: Outgoing) -> dict[str, str]:
        params = {
            "username": self.username,
            "password": self.password,
            "to": outgoing.to,
            "text": outgoing.message.text,
            "coding": "2",
            "charset": "UTF-8",
        }
        if self.sender:
            params["from"] = self.sender
        if outgoing.report_url and self.dlr_mask:
            params["dlr-mask"] = str(self.dlr_mask)
            params["dlr-url"] = outgoing.report_url
        return params

    def send(self, outgoing: Outgoing, client: httpx.Client | None = None) -> Handover:
        try:
            response = (client or http_client()).get(self.url, params=self.params(outgoing), timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise Transient(f"Kannel unreachable ({type(exc).__name__})") from None
        body = response.text.strip()[:120]
        if response.status_code in (200, 202) and body[:2] in ("0:", "3:"):
            return Handover()
        if response.status_code >= 500:
            raise Transient(f"Kannel answered {response.status_code}: {body}")
        raise Permanent(f"Kannel refused the message ({response.status_code}): {body}")
