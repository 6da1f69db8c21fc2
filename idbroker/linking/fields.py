"""From a stored source record to the fields the campus matching policy compares."""

from __future__ import annotations

from typing import Any

from idbroker.keys.matching import for_matching
from idbroker.linking.records import LinkRecord

COLUMNS = (
    "id",
    "source",
    "key",
    "name_key",
    "name_pinyin",
    "gender",
    "birth_date",
    "national_id_hash",
    "national_id_cipher",  # issue 7: during a hash key rotation, to compare hashes of two versions
    "phone",
    "email",
)


def link_record(row: Any, key_spaces: dict[str, str]) -> LinkRecord:
    """`row` has the attributes in COLUMNS (an ORM object or a SQL row); `key_spaces` maps source → space."""
    space = key_spaces.get(row.source)
    national_id, national_ids = for_matching(row.national_id_hash, row.national_id_cipher)
    record = LinkRecord(
        id=row.id,
        source=row.source,
        key=row.key,
        fields={
            "national_id_hash": national_id,
            "account": f"{space}:{row.key}" if space else None,
            "name": (row.name_key, row.name_pinyin) if row.name_key else None,
            "name_key": row.name_key,
            "name_pinyin": row.name_pinyin,
            "birth_date": row.birth_date,
            "gender": row.gender,
            "phone": row.phone,
            "email": row.email,
        },
    )
    if national_ids:  # a hash key rotation is under way: blocking looks up every version (service.py)
        record.fields["national_id_hashes"] = national_ids
    return record
