"""One export row → the fields of a source record. A bad field is set aside, never used for matching."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from idbroker.directory.protect import Protector
from idbroker.normalize import (
    InvalidValue,
    clean_text,
    normalize_email,
    normalize_name,
    normalize_phone,
    parse_date,
    parse_gender,
    parse_national_id,
)
from idbroker.sources.mapping import CANONICAL_FIELDS, SourceMapping, UnknownValue

# The fields of a record; anything else a mapping names goes to `extra`.
RECORD_FIELDS = CANONICAL_FIELDS


@dataclass
class ParsedRow:
    key: str
    values: dict[str, Any]
    extra: dict[str, str]
    set_aside: list[dict[str, str]] = field(default_factory=list)
    row_hash: str = ""

    def reject(self, name: str, reason: str, raw: str, protector: Protector) -> None:
        self.set_aside.append({"field": name, "reason": reason, "value": protector.encrypt(raw, purpose="set_aside")})


def _year(raw: str) -> int | None:
    text = raw.strip()
    if not text:
        return None
    if not text.isdigit() or not 1900 <= int(text) <= 2100:
        raise InvalidValue("not a year between 1900 and 2100")
    return int(text)


class RowParser:
    """Parses the rows of one file for one source mapping; holds the caches of that file."""

    def __init__(self, mapping: SourceMapping, protector: Protector) -> None:
        self.mapping = mapping
        self.protector = protector
        self._hash_cache: dict[str, tuple[str, str]] = {}

    def _vocabulary(self, name: str, raw: str) -> str | None:
        if clean_text(raw) is None:
            return None
        try:
            return self.mapping.translate(name, raw)
        except UnknownValue as problem:
            raise InvalidValue(str(problem)) from None

    def _national_id(self, raw: str, row: ParsedRow) -> None:
        parsed = parse_national_id(raw)
        if parsed is None:
            return
        cached = self._hash_cache.get(parsed.number)
        if cached is None:
            cached = (self.protector.keyed_hash(parsed.number), self.protector.encrypt(parsed.number))
            self._hash_cache[parsed.number] = cached
        row.values["national_id_hash"], row.values["national_id_cipher"] = cached
        row.values["_id_birth"], row.values["_id_gender"] = parsed.birth_date, parsed.gender

    def parse(self, key: str, raw: dict[str, str], extra: dict[str, str]) -> ParsedRow:
        """`raw`: canonical field → non-empty cell; `extra`: the other mapped cells, kept as they are."""
        row = ParsedRow(key=key, values={}, extra=dict(extra))
        handlers: dict[str, Callable[[str], Any]] = {
            "gender": parse_gender,
            "birth_date": parse_date,
            "email": normalize_email,
            "org": clean_text,
            "category": clean_text,
            "enrolled_year": _year,
        }
        if isinstance(self.mapping.affiliation, str):
            row.values["affiliation"] = self.mapping.affiliation
        for name, value in raw.items():
            if name not in RECORD_FIELDS:
                row.extra[name] = value
                continue
            try:
                if name == "name":
                    parsed = normalize_name(value)
                    if parsed is not None:
                        row.values.update(name=parsed.display, name_key=parsed.key, name_pinyin=parsed.pinyin)
                elif name == "national_id":
                    self._national_id(value, row)
                elif name == "phone":
                    phone = normalize_phone(value)
                    if phone is not None:
                        row.values["phone"] = phone.e164
                elif name in ("level", "status", "affiliation"):
                    row.values[name] = self._vocabulary(name, value)
                else:
                    row.values[name] = handlers[name](value)
            except InvalidValue as problem:
                row.reject(name, problem.reason, value, self.protector)
        self._reconcile_with_id(row)
        return row

    def _reconcile_with_id(self, row: ParsedRow) -> None:
        """A national ID carries a birth date and a sex; a disagreeing column is the suspect one."""
        for name, carried, what in (("birth_date", "_id_birth", "birth date"), ("gender", "_id_gender", "sex")):
            from_id = row.values.pop(carried, None)
            if from_id is None:
                continue
            stated = row.values.get(name)
            if stated is not None and stated != from_id:
                text = stated.isoformat() if isinstance(stated, date) else str(stated)
                row.reject(name, f"differs from the {what} in the national ID", text, self.protector)
            row.values[name] = from_id
