"""A member's userid: `wx-` + a short, stable pseudonym of the person's opaque ID — never a number they hold.

The pseudonym is a keyed hash (HMAC-SHA256 with the broker's hash key) of the person ID, in lower-case
base32: 16 characters, 80 bits. It survives every change of student or staff number because it never saw
one, and WeChat Work's rules hold by construction: 19 bytes of `[a-z2-7-]`, starting with a letter, and
unique case-insensitively because it is all lower case. The userid is computed once, when the member is
first recorded, and read from the record ever after, so a later key rotation changes no member.
"""

from __future__ import annotations

import base64
import hmac
import re
from hashlib import sha256

PREFIX = "wx-"
PSEUDONYM_CHARS = 16
USERID_RULE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_\-@.]{0,63}")


def pseudonym(hash_key: bytes, person_id: str, length: int = PSEUDONYM_CHARS) -> str:
    digest = hmac.new(hash_key, f"wecom-userid\x00{person_id}".encode(), sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:length]


def userid_for(hash_key: bytes, person_id: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """The userid of a person's member; longer (never different in its first characters) on a collision."""
    for length in (PSEUDONYM_CHARS, 24, 32, 52):
        candidate = PREFIX + pseudonym(hash_key, person_id, length)
        if candidate.lower() not in taken:
            return candidate
    raise ValueError("no free userid for this person")  # 2^-260: never


def is_valid_userid(userid: str) -> bool:
    return len(userid.encode()) <= 64 and USERID_RULE.fullmatch(userid) is not None
