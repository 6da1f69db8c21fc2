"""Source column mappings: which column of a source's export holds which canonical field.

One YAML file per source, `policies/sources/<source>.yaml`, validated by `SourceMapping` (unknown keys,
wrong types and inconsistent entries are refused with file and line). A source is defined by its mapping
file alone; an adapter is only needed when the export is not a CSV/XLSX table (see `registry`).

Column names are compared after the same normalisation as file headers (`normalize_header`: NFKC,
invisible characters removed), so a full-width or BOM-prefixed header still maps.
"""

from __future__ import annotations

import re
import typing
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from idbroker.policy import PolicyError, load_policy
from idbroker.sources.tables import normalize_header

SOURCE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
EXTRA_FIELD = re.compile(r"[a-z][a-z0-9_]{0,63}")

CanonicalField = Literal[
    "name",
    "gender",
    "birth_date",
    "national_id",
    "phone",
    "email",
    "org",
    "level",
    "status",
    "affiliation",
    "category",
    "enrolled_year",
]
CANONICAL_FIELDS: tuple[str, ...] = typing.get_args(CanonicalField)
KEY = "key"  # stands for the key column in `required`


class MappingError(ValueError):
    """A file whose header does not fit its source's mapping (the whole file is refused)."""

    def __init__(self, message: str, *, missing: list[str] | None = None) -> None:
        self.missing = missing or []
        super().__init__(message)


class UnknownValue(ValueError):
    """A value outside a closed vocabulary (`values:` in the mapping): a bad field, set aside."""


class UnknownSourceError(PolicyError):
    """A source with no mapping file (and so no way to read it)."""

    def __init__(self, source: str, path: Path, known: list[str]) -> None:
        self.source = source
        self.known = known
        listed = ", ".join(known) if known else "none"
        super().__init__(path, None, f"unknown source {source!r}: no mapping file (known sources: {listed})")


class AffiliationColumn(BaseModel):
    """`affiliation: {column: eduPersonAffiliation}` — the affiliation is read from a column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str

    @field_validator("column")
    @classmethod
    def _column(cls, value: str) -> str:
        return _column_name(value)


@dataclass(frozen=True)
class ColumnIndex:
    """Where a mapping's columns sit in one file's header."""

    key: int
    fields: dict[str, int]  # canonical field -> column index, for the mapped columns present
    extra: dict[str, int]  # extra field -> column index, for those present
    width: int  # columns in the header
    absent: tuple[str, ...] = ()  # optional mapped fields whose column this file lacks

    def key_of(self, values: list[str]) -> str:
        return values[self.key] if self.key < len(values) else ""

    def fields_of(self, values: list[str]) -> dict[str, str]:
        """Canonical field -> raw cell, for the non-empty mapped cells of a row."""
        return _pick(self.fields, values)

    def extra_of(self, values: list[str]) -> dict[str, str]:
        return _pick(self.extra, values)


def _pick(index: dict[str, int], values: list[str]) -> dict[str, str]:
    return {name: values[at] for name, at in index.items() if at < len(values) and values[at]}


def _column_name(value: str) -> str:
    name = normalize_header(value)
    if not name:
        raise ValueError("a column name cannot be empty")
    return name


def _vocabulary_entry(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


class SourceMapping(BaseModel):
    """The validated content of `policies/sources/<source>.yaml` (see the default files for examples)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    key: str = Field(description="the column holding the record's number within its source")
    key_space: str = Field(description="sources with the same key space share numbers; default: the source")
    affiliation: str | AffiliationColumn | None = None
    columns: dict[CanonicalField, str] = Field(default_factory=dict)
    extra: dict[str, str] = Field(default_factory=dict)
    values: dict[CanonicalField, dict[str, str]] = Field(default_factory=dict)
    active_statuses: list[str] = Field(default_factory=lambda: ["active"])
    required: list[str] = Field(default_factory=lambda: [KEY, "name"])

    @model_validator(mode="before")
    @classmethod
    def _default_key_space(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("key_space") is None and isinstance(data.get("source"), str):
            return {**data, "key_space": data["source"]}
        return data

    @field_validator("source", "key_space")
    @classmethod
    def _name(cls, value: str, info: ValidationInfo) -> str:
        if not SOURCE_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid name (lower-case letters, digits and _, at most 32)")
        expected = (info.context or {}).get("source")
        if info.field_name == "source" and expected is not None and value != expected:
            raise ValueError(f"source is {value!r} but the file is {expected}.yaml: they must be the same")
        return value

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        return _column_name(value)

    @field_validator("affiliation")
    @classmethod
    def _affiliation(cls, value: str | AffiliationColumn | None) -> str | AffiliationColumn | None:
        if isinstance(value, str) and not value.strip():
            raise ValueError("affiliation cannot be empty: give a value, or {column: COLUMN}")
        return value.strip() if isinstance(value, str) else value

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if "affiliation" in value and info.data.get("affiliation") is not None:
            raise ValueError("affiliation is given both as `affiliation:` and under `columns:`; keep one")
        return {name: _column_name(column) for name, column in value.items()}

    @field_validator("extra")
    @classmethod
    def _extra(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name == KEY:
                raise ValueError("`key` cannot be an extra field name: the key column is `key:`")
            if name in CANONICAL_FIELDS:
                raise ValueError(f"{name!r} is a canonical field: map it under `columns:`")
            if not EXTRA_FIELD.fullmatch(name):
                raise ValueError(f"extra field {name!r} must be lower-case letters, digits and _")
        return {name: _column_name(column) for name, column in value.items()}

    @field_validator("values")
    @classmethod
    def _values(cls, value: dict[str, dict[str, str]], info: ValidationInfo) -> dict[str, dict[str, str]]:
        mapped = set(info.data.get("columns", {}))
        if isinstance(info.data.get("affiliation"), AffiliationColumn):
            mapped.add("affiliation")
        result: dict[str, dict[str, str]] = {}
        for name, vocabulary in value.items():
            if name not in mapped:
                raise ValueError(f"values are given for {name!r}, which no column is mapped to")
            if not vocabulary:
                raise ValueError(f"the values of {name!r} are empty")
            result[name] = {_vocabulary_entry(raw): canonical.strip() for raw, canonical in vocabulary.items()}
        return result

    @field_validator("active_statuses")
    @classmethod
    def _active_statuses(cls, value: list[str], info: ValidationInfo) -> list[str]:
        known = set(info.data.get("values", {}).get("status", {}).values())
        unknown = [status for status in value if known and status not in known]
        if unknown:
            raise ValueError(f"{', '.join(unknown)} is not a status in values.status ({', '.join(sorted(known))})")
        return value

    @field_validator("required")
    @classmethod
    def _required(cls, value: list[str], info: ValidationInfo) -> list[str]:
        mapped = {KEY, *info.data.get("columns", {}), *info.data.get("extra", {})}
        if isinstance(info.data.get("affiliation"), AffiliationColumn):
            mapped.add("affiliation")
        unmapped = [name for name in value if name not in mapped]
        if unmapped:
            raise ValueError(f"required {', '.join(unmapped)} is not mapped to a column")
        return [KEY, *(name for name in value if name != KEY)]

    def mapped_columns(self) -> dict[str, str]:
        """Canonical field -> column name, including a column-based affiliation."""
        columns = dict(self.columns)
        if isinstance(self.affiliation, AffiliationColumn):
            columns["affiliation"] = self.affiliation.column
        return columns

    def resolve_header(self, header: list[str]) -> ColumnIndex:
        """Locate the mapped columns in a file's header; `MappingError` if a required one is missing."""
        names = [normalize_header(cell) for cell in header]
        positions: dict[str, int] = {}
        for at, name in enumerate(names):
            if name and name in positions and self._is_mapped(name):
                raise MappingError(
                    f"column {name!r} is in the header twice (columns {positions[name] + 1} and {at + 1})"
                )
            positions.setdefault(name, at)
        wanted = {KEY: self.key, **self.mapped_columns(), **self.extra}
        missing = [
            f"{column} ({field})"
            for field, column in wanted.items()
            if field in self.required and column not in positions
        ]
        if missing:
            raise MappingError(
                f"source {self.source!r}: missing required column(s) {', '.join(missing)}; "
                f"the header has: {', '.join(name for name in names if name) or 'nothing'}",
                missing=[wanted[field] for field in self.required if wanted[field] not in positions],
            )
        fields = {f: positions[c] for f, c in self.mapped_columns().items() if c in positions}
        extra = {f: positions[c] for f, c in self.extra.items() if c in positions}
        absent = tuple(f for f, c in wanted.items() if c not in positions)
        return ColumnIndex(positions[self.key], fields, extra, len(names), absent)

    def _is_mapped(self, column: str) -> bool:
        return column == self.key or column in self.mapped_columns().values() or column in self.extra.values()

    def translate(self, field: str, raw: str) -> str:
        """A raw value as its canonical form. Fields with a closed vocabulary (`values:`) accept only its
        entries (or the canonical values themselves); anything else is `UnknownValue`."""
        value = _vocabulary_entry(raw)
        vocabulary = self.values.get(typing.cast(CanonicalField, field))
        if vocabulary is None:
            return value
        if value in vocabulary:
            return vocabulary[value]
        if value in vocabulary.values():
            return value
        raise UnknownValue(f"unknown {field} {value!r} (expected one of: {', '.join(vocabulary)})")

    def affiliation_of(self, fields: dict[str, str]) -> str | None:
        """The record's affiliation: the fixed value, or the (translated) value of its column."""
        if isinstance(self.affiliation, str):
            return self.affiliation
        raw = fields.get("affiliation")
        return self.translate("affiliation", raw) if raw else None

    def is_active(self, status: str | None) -> bool:
        """Whether a record with this canonical status holds an active role. Without a status, it does."""
        return status is None or status in self.active_statuses


def mapping_path(policies_dir: Path, source: str) -> Path:
    return policies_dir / "sources" / f"{source}.yaml"


def known_sources(policies_dir: Path) -> list[str]:
    """The sources that have a mapping file, sorted."""
    folder = policies_dir / "sources"
    if not folder.is_dir():
        return []
    return sorted(path.stem for path in folder.glob("*.yaml") if SOURCE_NAME.fullmatch(path.stem))


def load_mapping(policies_dir: Path, source: str) -> SourceMapping:
    """The mapping of `source`; `UnknownSourceError` without one, `PolicyError` (file:line) if invalid."""
    if not SOURCE_NAME.fullmatch(source):
        raise UnknownSourceError(source, policies_dir / "sources", known_sources(policies_dir))
    path = mapping_path(policies_dir, source)
    if not path.is_file():
        raise UnknownSourceError(source, path, known_sources(policies_dir))
    return load_policy(path, SourceMapping, context={"source": source})
