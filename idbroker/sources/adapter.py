"""The one interface source adapters plug into, and the adapter every table-shaped source uses.

An adapter turns a location (a file path, an LDAP URL, …) into a `Table` of rows; the import pipeline
then maps columns with the source's `SourceMapping` and turns rows into source records. The core never
imports an adapter: adapters are found through the `idbroker.sources` entry points (see `registry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from idbroker.config import Settings
from idbroker.sources.mapping import SourceMapping
from idbroker.sources.tables import Table, read_table


@runtime_checkable
class SourceAdapter(Protocol):
    """Reads one source. `read` raises `UnreadableFile` (or another clear error) before yielding any row
    when the location cannot be read, so that a failed read changes nothing."""

    name: str

    def read(self, location: str, mapping: SourceMapping, settings: Settings) -> Table: ...


@dataclass(frozen=True)
class FileAdapter:
    """A CSV/XLSX export at a file path: any source defined by a mapping file alone uses this."""

    name: str

    def read(self, location: str, mapping: SourceMapping, settings: Settings) -> Table:
        if mapping.source != self.name:
            raise ValueError(f"the {self.name!r} adapter was given the mapping of {mapping.source!r}")
        return read_table(Path(location), max_bytes=settings.max_import_bytes)
