"""Where each key kind's versioned values live: every ciphertext column, and the national-ID hash.

One entry per table, in the order a re-encryption pass walks them. Adding a ciphertext column to the
product means adding it here, so that rotation, `keys status` and retirement know about it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table

from idbroker.contacts.models import MessageDelivery, VerificationFlow
from idbroker.directory.models import SourceRecord
from idbroker.directory.protect import Protector
from idbroker.keys.keyring import ENCRYPTION, HASH
from idbroker.oidc.keys import SEAL_PURPOSE
from idbroker.oidc.models import SigningKey
from idbroker.wecom.token_cache import PURPOSE as WECOM_TOKEN_PURPOSE
from idbroker.wecom.token_cache import WeComToken

# (column, purpose): a ciphertext column and the purpose its values were sealed for
CIPHERS: dict[str, list[tuple[str, str]]] = {
    "source_record": [("national_id_cipher", "national_id")],
    "verification_flow": [("target_cipher", "verification_target")],
    "message_delivery": [("recipient_cipher", "message_recipient"), ("params_cipher", "message_params")],
    "wecom_token": [("token_cipher", WECOM_TOKEN_PURPOSE)],
    "oidc_signing_key": [("private_key_cipher", SEAL_PURPOSE)],
}
SET_ASIDE_PURPOSE = "set_aside"  # source_record.set_aside: [{"field", "reason", "value": ciphertext}]

TABLES: dict[str, Table] = {
    "source_record": SourceRecord.__table__,  # type: ignore[attr-defined]
    "verification_flow": VerificationFlow.__table__,  # type: ignore[attr-defined]
    "message_delivery": MessageDelivery.__table__,  # type: ignore[attr-defined]
    "wecom_token": WeComToken.__table__,  # type: ignore[attr-defined]
    "oidc_signing_key": SigningKey.__table__,  # type: ignore[attr-defined]
}


@dataclass(frozen=True)
class Target:
    """One table of a pass: the columns read, and a row's new values with how many values moved ({}, 0: the
    row is already current)."""

    table: str
    columns: tuple[str, ...]
    redo: Callable[[Protector, Any], tuple[dict[str, Any], int]]

    @property
    def key(self) -> str:
        return str(next(iter(TABLES[self.table].primary_key.columns)).name)


def _reencrypt(table: str) -> Callable[[Protector, Any], tuple[dict[str, Any], int]]:
    def redo(protector: Protector, row: Any) -> tuple[dict[str, Any], int]:
        changes: dict[str, Any] = {}
        moved = 0
        for column, purpose in CIPHERS[table]:
            value = getattr(row, column)
            if value:
                sealed = protector.reencrypt(value, purpose)
                if sealed is not None:
                    changes[column], moved = sealed, moved + 1
        if table == "source_record" and row.set_aside:
            items = [dict(item) for item in row.set_aside]
            before = moved
            for item in items:
                if item.get("value"):
                    sealed = protector.reencrypt(item["value"], SET_ASIDE_PURPOSE)
                    if sealed is not None:
                        item["value"], moved = sealed, moved + 1
            if moved > before:
                changes["set_aside"] = items
        return changes, moved

    return redo


def _rehash(protector: Protector, row: Any) -> tuple[dict[str, Any], int]:
    current = protector.hashing.current
    if not row.national_id_hash or row.national_id_hash.startswith(f"{current}$") or not row.national_id_cipher:
        return {}, 0
    return {"national_id_hash": protector.keyed_hash(protector.decrypt(row.national_id_cipher))}, 1


def _cipher_columns(table: str) -> tuple[str, ...]:
    extra = ("set_aside",) if table == "source_record" else ()
    return tuple(column for column, _ in CIPHERS[table]) + extra


TARGETS: dict[str, list[Target]] = {
    ENCRYPTION: [Target(table, _cipher_columns(table), _reencrypt(table)) for table in CIPHERS],
    HASH: [Target("source_record", ("national_id_hash", "national_id_cipher"), _rehash)],
}
