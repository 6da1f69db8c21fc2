"""From a stored source record to the fields the campus matching policy compares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from idbroker.keys.matching import for_matching, rotation_under_way
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


class RecordReader:
    """Turns stored records into `LinkRecord`s: the key spaces and the hash key versions looked up once."""

    def __init__(self, key_spaces: dict[str, str]) -> None:
        self.key_spaces = key_spaces
        self.rotating = rotation_under_way()

    def __call__(self, values: Sequence[Any]) -> LinkRecord:
        """`values` in COLUMNS order (a SQL row or a tuple; columns after them are ignored)."""
        rid, source, key, name_key, name_pinyin, gender, birth_date, national_id, cipher, phone, email = values[:11]
        space = self.key_spaces.get(source)
        fields = {
            "national_id_hash": national_id or None,
            "account": f"{space}:{key}" if space else None,
            "name": (name_key, name_pinyin) if name_key else None,
            "name_key": name_key or None,
            "name_pinyin": name_pinyin or None,
            "birth_date": birth_date or None,
            "gender": gender or None,
            "phone": phone or None,
            "email": email or None,
        }
        if self.rotating and national_id:  # blocking looks up the hash under every version (service.py)
            fields["national_id_hash"], fields["national_id_hashes"] = for_matching(national_id, cipher)
        return LinkRecord(rid, source, key, fields)

    def of(self, record: Any) -> LinkRecord:
        """An object with the attributes in COLUMNS (an ORM `SourceRecord`)."""
        return self(tuple(getattr(record, name) for name in COLUMNS))


def link_record(row: Any, key_spaces: dict[str, str]) -> LinkRecord:
    """One record with the attributes in COLUMNS (an ORM object or a SQL row); `key_spaces` maps source → space."""
    return RecordReader(key_spaces).of(row)
