"""One export row → the values stored for its record, ready for the driver: the part of an import that runs in
worker processes (`sources/parallel.py`), so the importer's own process only reads the file, looks up the
stored records and writes.

A row whose keyed hash equals its stored record's is unchanged: it is recognised without being parsed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from idbroker.db import dialect_named, driver_converter
from idbroker.directory.models import SourceRecord
from idbroker.sources.mapping import ColumnIndex
from idbroker.sources.rows import RowParser

RECORDS = SourceRecord.__table__  # type: ignore[attr-defined]
COLUMNS = (
    "name",
    "name_key",
    "name_pinyin",
    "gender",
    "birth_date",
    "national_id_hash",
    "national_id_cipher",
    "phone",
    "email",
    "org",
    "affiliation",
    "level",
    "status",
)
PREPARED = [*COLUMNS, "extra", "set_aside", "row_hash"]  # the columns of `Prepared.values`, in order


@dataclass(slots=True)
class Prepared:
    values: tuple[Any, ...]  # PREPARED's columns, as the driver takes them
    set_aside: list[tuple[str, str]]  # (field, reason) of each bad field, for the import's report


class RowPreparer:
    """Everything a worker needs: the row parser (mapping and keys), where the columns sit, the database's
    dialect (how dates and JSON are sent to its driver)."""

    def __init__(self, parser: RowParser, columns: ColumnIndex, drivername: str) -> None:
        self.parser = parser
        self.columns = columns
        self.drivername = drivername
        self._converters: list[Callable[[Any], Any]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"parser": self.parser, "columns": self.columns, "drivername": self.drivername, "_converters": None}

    def row_hash(self, cells: list[str]) -> str:
        """A keyed hash of the whole row as read."""
        return self.parser.protector.keyed_hash("\x1f".join(cells), purpose="row")[3:]

    def prepare(self, key: str, cells: list[str], stored_hash: str | None) -> Prepared | None:
        """The row's record values, or None when the row is exactly what was stored (`stored_hash`)."""
        row_hash = self.row_hash(cells)
        if row_hash == stored_hash:
            return None
        parsed = self.parser.parse(key, self.columns.fields_of(cells), self.columns.extra_of(cells))
        values = parsed.values
        raw = [values.get(name) for name in COLUMNS]
        raw += [parsed.extra, parsed.set_aside, row_hash]
        converters = self._converters or self._converters_now()
        shaped = tuple([convert(value) for convert, value in zip(converters, raw, strict=True)])
        return Prepared(shaped, [(aside["field"], aside["reason"]) for aside in parsed.set_aside])

    def _converters_now(self) -> list[Callable[[Any], Any]]:
        dialect = dialect_named(self.drivername)
        self._converters = [driver_converter(dialect, RECORDS.c[name]) for name in PREPARED]
        return self._converters
