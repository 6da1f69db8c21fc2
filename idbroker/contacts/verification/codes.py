"""Codes, links and their hashes: random values shown once, kept only as keyed hashes.

A code's hash is bound to its flow (`flow id ‖ code`), so a code can only ever pass the flow it was sent
for; comparisons are constant-time. Link tokens and flow IDs are 256 and 128 random bits.
"""

from __future__ import annotations

import secrets

from idbroker.directory.protect import Protector


def new_code(digits: int = 6) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def new_flow_id() -> str:
    return secrets.token_urlsafe(16)


def new_link_token() -> str:
    return secrets.token_urlsafe(32)


def code_hash(protector: Protector, flow_id: str, code: str) -> str:
    return protector.keyed_hash(f"{flow_id}\x00{code}", purpose="verification_code")


def code_matches(protector: Protector, stored: str | None, flow_id: str, code: str) -> bool:
    if stored is None:
        return False
    return protector.hash_matches(stored, f"{flow_id}\x00{code}", "verification_code")  # under its own key version


def token_hash(protector: Protector, token: str, purpose: str) -> str:
    return protector.keyed_hash(token, purpose=purpose)


def target_hash(protector: Protector, kind: str, value: str) -> str:
    """The keyed hash of a phone or address, for counting what was sent to it without keeping it."""
    return protector.keyed_hash(f"{kind}\x00{value}", purpose="contact_target")


def block_hash(protector: Protector, e164: str, block_digits: int) -> str:
    """Numbers that differ only in their last digits share this (sequential-number SMS pumping)."""
    return protector.keyed_hash(e164[:-block_digits], purpose="contact_block")


def ip_hash(protector: Protector, ip: str) -> str:
    return protector.keyed_hash(ip, purpose="client_ip")
