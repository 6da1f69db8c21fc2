"""What the engine links: a record's id, source, key and its comparable fields; and a person's profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class LinkRecord:
    id: int
    source: str
    key: str
    fields: dict[str, Any]


@dataclass(slots=True)
class Profile:
    """Every value a (forming) person's records hold, per field, with the first record that gave it."""

    values: dict[str, dict[Any, int]] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)
    record_ids: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, record: LinkRecord) -> Profile:
        profile = cls()
        profile.add(record)
        return profile

    def add(self, record: LinkRecord) -> None:
        values = self.values
        for name, value in record.fields.items():
            if value is None or value == "":
                continue
            slot = values.get(name)
            if slot is None:
                values[name] = {value: record.id}
            elif value not in slot:
                slot[value] = record.id
        self.sources.add(record.source)
        self.record_ids.append(record.id)

    def absorb(self, other: Profile) -> None:
        for name, slot in other.values.items():
            mine = self.values.get(name)
            if mine is None:
                self.values[name] = dict(slot)
            else:
                for value, record_id in slot.items():
                    mine.setdefault(value, record_id)
        self.sources |= other.sources
        self.record_ids.extend(other.record_ids)
