"""Nicknames: a per-app display name that is not the person's real name (unless the policy allows it).

It is derived from the app and the person's pseudonym in that app's sector, so it is stable for life
(merges keep the canonical pseudonym), differs from app to app, and reveals nothing: the pseudonym is
already a keyed hash. Shape: an adjective, an animal and four digits — `安静的海豚4821`.
"""

from __future__ import annotations

import hashlib

ADJECTIVES = (
    "安静的", "勇敢的", "聪明的", "快乐的", "认真的", "温和的", "热情的", "机灵的",
    "沉稳的", "好奇的", "开朗的", "细心的", "勤奋的", "爽朗的", "可靠的", "从容的",
)  # fmt: skip
ANIMALS = (
    "海豚", "熊猫", "白鹭", "松鼠", "麋鹿", "海鸥", "仙鹤", "小狐",
    "企鹅", "刺猬", "喜鹊", "锦鲤", "骏马", "云雀", "黄鹂", "水獭",
)  # fmt: skip


def nickname(client_id: str, pseudonym: str) -> str:
    digest = hashlib.sha256(f"{client_id}\x00{pseudonym}".encode()).digest()
    number = int.from_bytes(digest[2:6], "big") % 10000
    return f"{ADJECTIVES[digest[0] % len(ADJECTIVES)]}{ANIMALS[digest[1] % len(ANIMALS)]}{number:04d}"
