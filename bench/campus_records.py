"""Read a generated campus the way the importer does, in memory: one normalised record per source row.

The rows go through the product's own column mappings (`policies/sources/*.yaml`) and row parser
(`idbroker.sources.rows.RowParser`), so the benchmarks compare exactly the values the engine would store.
National IDs are hashed with a throw-away key. Used by the in-memory campus linking and by Splink.
"""

from __future__ import annotations

import base64
import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from idbroker.config import get_settings
from idbroker.directory.protect import Protector
from idbroker.linking.fields import link_record
from idbroker.linking.records import LinkRecord
from idbroker.sources.mapping import load_mapping
from idbroker.sources.rows import RowParser

# National IDs are hashed with throw-away keys (the linker reads the settings' keys too)
for _name in ("IDBROKER_NATIONAL_ID_HASH_KEY", "IDBROKER_ENCRYPTION_KEY"):
    os.environ.setdefault(_name, base64.urlsafe_b64encode(os.urandom(32)).decode("ascii"))

SOURCES = ("student", "hr", "cas", "billing")
REPO = Path(__file__).resolve().parent.parent


@dataclass(slots=True)
class CampusRecord:
    source: str
    key: str
    key_space: str
    values: dict[str, Any]


def read_campus(campus: Path, policies: Path = REPO / "policies") -> Iterator[CampusRecord]:
    protector = Protector.from_settings(get_settings())
    for source in SOURCES:
        mapping = load_mapping(policies, source)
        parser = RowParser(mapping, protector)
        with (campus / f"{source}.csv").open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            index = mapping.resolve_header(next(reader))
            for values in reader:
                key = index.key_of(values).strip()
                if not key:
                    continue
                parsed = parser.parse(key, index.fields_of(values), index.extra_of(values))
                yield CampusRecord(source, key, mapping.key_space, parsed.values)


def link_records(records: list[CampusRecord]) -> list[LinkRecord]:
    """The engine's view of each record, built by the same function the database path uses."""
    out = []
    for number, record in enumerate(records):
        v = record.values
        row = SimpleNamespace(
            id=number, source=record.source, key=record.key, name_key=v.get("name_key"),
            name_pinyin=v.get("name_pinyin"), gender=v.get("gender"), birth_date=v.get("birth_date"),
            national_id_hash=v.get("national_id_hash"),
            national_id_cipher=v.get("national_id_cipher"), phone=v.get("phone"), email=v.get("email"),
        )  # fmt: skip
        out.append(link_record(row, {record.source: record.key_space}))
    return out
