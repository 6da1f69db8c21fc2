"""Masked forms of numbers, phones and addresses: what pages, logs and explanations show.

`112****234` for a student or staff number, `138****5678` for a mainland mobile (as people write it),
`z***@example.edu.cn` for an email — enough for a person to recognise their own, not enough to learn someone
else's.
"""

from __future__ import annotations


def mask_number(number: str) -> str:
    """A 学号/工号/account: the first and last three characters (`1120101234` → `112****234`)."""
    if len(number) <= 6:
        return "*" * len(number)
    return f"{number[:3]}****{number[-3:]}"


def mask_phone(e164: str) -> str:
    """A Chinese mobile as people write it (`+8613812345678` → `138****5678`), others keep their country code."""
    if e164.startswith("+86") and len(e164) == 14:
        national = e164[3:]
        return f"{national[:3]}****{national[-4:]}"
    if len(e164) <= 7:
        return "*" * len(e164)
    return f"{e164[:4]}****{e164[-3:]}"


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    if not domain:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_contact(kind: str, value: str) -> str:
    return mask_phone(value) if kind == "phone" else mask_email(value)
