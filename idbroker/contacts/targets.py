"""What a person may ask to verify: a mobile number that can get an SMS, or a plain email address.

Phones go to E.164 and are classified (phonenumbers); only mobile numbers of the regions in the policy's
`sms_regions` are accepted — a fixed line or a foreign number gets its own clear refusal. Emails are
normalised (`idbroker.normalize.emails`: no invisible or control characters, IDNA domains) and must have a
plain ASCII local part: look-alike letters from other scripts, full-width or decorated characters that
merely resemble an address are refused rather than silently turned into some other address.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers

from idbroker.contacts.errors import ContactRefused
from idbroker.contacts.policy import ContactsPolicy
from idbroker.normalize import InvalidValue
from idbroker.normalize.emails import normalize_email
from idbroker.normalize.phones import normalize_phone

MAX_INPUT = 320
_LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~.-]+")


@dataclass(frozen=True)
class Target:
    kind: str  # phone | email
    value: str  # E.164 or the normalised address
    phone_type: str | None = None

    @property
    def channel(self) -> str:
        return "sms" if self.kind == "phone" else "email"


def parse_phone(raw: str, policy: ContactsPolicy, *, for_sms: bool = True) -> Target:
    """A number a code can be sent to (`for_sms`), or any valid number (the helpdesk may record a fixed line)."""
    if not raw or len(raw) > 40:
        raise ContactRefused("phone_invalid", "enter a mobile phone number")
    try:
        phone = normalize_phone(raw)
    except InvalidValue as exc:
        raise ContactRefused("phone_invalid", f"not a valid phone number: {exc.reason}") from None
    if phone is None:
        raise ContactRefused("phone_invalid", "enter a mobile phone number")
    if not for_sms:
        return Target("phone", phone.e164, phone.kind)
    region = phonenumbers.region_code_for_number(phonenumbers.parse(phone.e164))
    if region not in policy.verification.sms_regions:
        regions = ", ".join(policy.verification.sms_regions)
        raise ContactRefused("phone_foreign", f"codes can only be sent to mobile numbers of: {regions}")
    if phone.kind != "mobile":
        raise ContactRefused("phone_not_mobile", "this is not a mobile number: only mobiles can receive a code")
    return Target("phone", phone.e164, phone.kind)


def parse_email(raw: str) -> Target:
    if not raw or len(raw) > MAX_INPUT:
        raise ContactRefused("email_invalid", "enter an email address")
    text = raw.strip()
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs", "Cn") for ch in text):
        raise ContactRefused("email_invalid", "the address contains invisible or control characters")
    try:
        address = normalize_email(text)
    except InvalidValue as exc:
        raise ContactRefused("email_invalid", f"not a valid email address: {exc.reason}") from None
    if address is None:
        raise ContactRefused("email_invalid", "enter an email address")
    local = address.split("@", 1)[0]
    if not _LOCAL_PART.fullmatch(local) or not re.split("[@＠]", text)[0].isascii():
        raise ContactRefused(
            "email_unusual", "use plain letters, digits and . _ + - before the @ (no look-alike or full-width letters)"
        )
    return Target("email", address)


def parse_target(kind: str, raw: str, policy: ContactsPolicy) -> Target:
    if kind == "phone":
        return parse_phone(raw, policy)
    if kind == "email":
        return parse_email(raw)
    raise ContactRefused("kind_invalid", "a contact is a phone or an email")
