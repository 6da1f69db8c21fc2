"""Email over SMTP: plain, STARTTLS or implicit TLS, with optional authentication.

`IDBROKER_SMTP_SECURITY` is `starttls` (default: refuse to send if the server does not offer it), `tls`
(port 465 style) or `none` (a relay on loopback). The server's certificate is checked against the system
store or `IDBROKER_SMTP_CA_FILE`. A 4xx answer or a dropped connection is worth retrying; a 5xx is not.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from idbroker.config import Settings
from idbroker.contacts.senders.gateway import Handover, Outgoing, Permanent, Transient


@dataclass(frozen=True)
class SmtpSender:
    host: str
    port: int
    sender: str
    security: str = "starttls"  # starttls | tls | none
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    timeout: float = 10.0
    name: str = "smtp"

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpSender:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            ca_file=settings.smtp_ca_file,
            timeout=settings.smtp_timeout_seconds,
        )

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def build(self, outgoing: Outgoing) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = outgoing.to
        message["Subject"] = outgoing.message.subject or ""
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(idstring=f"d{outgoing.delivery_id}")
        message.set_content(outgoing.message.text, charset="utf-8")
        return message

    def send(self, outgoing: Outgoing) -> Handover:
        message = self.build(outgoing)
        try:
            if self.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self.tls_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                client.ehlo()
                if self.security == "starttls":
                    if not client.has_extn("starttls"):
                        raise Permanent("the SMTP server does not offer STARTTLS (IDBROKER_SMTP_SECURITY=starttls)")
                    client.starttls(context=self.tls_context())
                    client.ehlo()
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise Permanent(f"SMTP authentication failed ({exc.smtp_code})") from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(400 <= code < 500 for code in codes):
                raise Transient(f"SMTP recipient deferred ({codes[0]})") from None
            raise Permanent(f"SMTP recipient refused ({codes[0] if codes else '?'})") from None
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise Transient(f"SMTP deferred ({exc.smtp_code})") from None
            raise Permanent(f"SMTP refused ({exc.smtp_code})") from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, dropped, timed out, TLS failure
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise Permanent("the SMTP server's certificate is not trusted") from None
            raise Transient(f"SMTP unreachable ({type(exc).__name__})") from None
        return Handover(reference=str(message["Message-ID"]))
