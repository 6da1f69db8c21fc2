"""What the engine links: a record's id, source, key and its comparable fields; and a person's profile."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class LinkRecord:
    """`fields` holds no empty values: a missing value is None (or absent). `linking.fields.RecordReader`
    makes them from stored records; `LinkRecord.of` from values that may hold empty strings."""

    id: int
    source: str
    key: str
    fields: dict[str, Any]

    @classmethod
    def of(cls, id: int, source: str, key: str, fields: dict[str, Any]) -> LinkRecord:
        return cls(id, source, key, {name: None if value == "" else value for name, value in fields.items()})


class Profile:
    """Every value a (forming) person's records hold, per field, with the first record that gave it.

    Built lazily: most people are never compared with anyone, so their values are only gathered when a
    comparison first asks for them.
    """

    __slots__ = ("_values", "records")

    def __init__(self) -> None:
        self.records: list[LinkRecord] = []
        self._values: dict[str, dict[Any, int]] | None = None

    @classmethod
    def of(cls, records: Iterable[LinkRecord]) -> Profile:
        profile = cls()
        profile.records = list(records)
        return profile

    @property
    def record_ids(self) -> list[int]:
        return [record.id for record in self.records]

    @property
    def sources(self) -> set[str]:
        return {record.source for record in self.records}

    @property
    def values(self) -> dict[str, dict[Any, int]]:
        if self._values is None:
            self._values = {}
            for record in self.records:
                self._gather(record)
        return self._values

    def _gather(self, record: LinkRecord) -> None:
        values = self._values
        assert values is not None
        for name, value in record.fields.items():
            if value is None:
                continue
            slot = values.get(name)
            if slot is None:
                values[name] = {value: record.id}
            elif value not in slot:
                slot[value] = record.id

    def add(self, record: LinkRecord) -> None:
        self.records.append(record)
        if self._values is not None:
            self._gather(record)

    def absorb(self, other: Profile) -> None:
        self.records.extend(other.records)
        if self._values is not None:
            for record in other.records:
                self._gather(record)
