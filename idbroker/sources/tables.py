"""Reading campus exports as tables: CSV in any encoding Chinese exports use, and XLSX.

`read_table(path, max_bytes=...)` checks everything that makes a file unreadable *before* it returns:
missing, not a regular file, empty, larger than `max_bytes`, neither CSV nor XLSX, undecodable, malformed
CSV quoting, a CSV field over `MAX_FIELD_CHARS`, no header row. So an importer that gets a `Table` can
start writing; one that gets `UnreadableFile` changes nothing.

CSV: the encoding is a BOM's (UTF-8 or UTF-16, as Excel's "Unicode text" writes), else UTF-8 when the whole
file decodes strictly, else GB18030 (a superset of GBK, what Excel on Chinese Windows writes), else the
file is refused. The delimiter is a comma, or a tab or `;` when the header line has those and no commas
(`.tsv` is always tab). Quoting is strict: a broken quote makes everything after it untrustworthy, so a
file with one is refused whole (naming the row) rather than read as shifted columns; so is a field longer
than `MAX_FIELD_CHARS`, which only a broken quote or a hostile file produces. The file is parsed
twice: once to validate (and count rows for a progress bar), once to stream the rows (a file changed in
between raises `UnreadableFile` while iterating).

XLSX (openpyxl, read-only, cached formula values): the first sheet. Whole numbers read as `1120101234`
(never `1120101234.0`), dates and date-times as `YYYY-MM-DD`. Rows are fitted to the header's width
(trailing empty cells dropped, short rows padded): in a spreadsheet an empty cell and a missing one are
the same thing. The zip's CRCs and declared sizes are checked first; an XML error deep inside a sheet
can still surface while iterating, as `UnreadableFile` — importers run in one transaction for that reason.

Everywhere: the header is the first row with any content, its cells NFKC-normalised (full-width letters
and spaces) with BOMs and zero-width characters removed and whitespace collapsed. Data cells are
stripped strings ("" when empty); empty cells beyond the header's width are dropped, but a short CSV
row stays short (the importer reports its wrong number of columns). A row whose cells are all empty is
not a record and is skipped.
Row numbers are what a spreadsheet shows: record index + 1 with the header on row 1, even when a quoted
cell holds a line break.
"""

from __future__ import annotations

import codecs
import csv
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

MAX_FIELD_CHARS = 1_000_000
# The csv module's limit is process-wide; we set it to our documented ceiling (the default is 128 KiB).
csv.field_size_limit(MAX_FIELD_CHARS)

CSV_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls, or an encrypted workbook
# An XLSX may expand this many times its size on disk; beyond, it is treated as a zip bomb.
XLSX_MAX_EXPANSION = 100
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"))


class UnreadableFile(Exception):
    """A file that cannot be read at all; nothing in it may be imported."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: cannot be read: {reason}")


@dataclass
class TableRow:
    number: int  # the row number a spreadsheet shows; the header is row 1
    values: list[str]


@dataclass
class Table:
    name: str  # the file as the operator named it (or a source's location), for reports
    header: list[str]
    rows: Iterator[TableRow]
    header_row: int = 1
    encoding: str | None = None  # "xlsx" for a workbook
    expected_rows: int | None = None  # rows after the header (an upper bound), for a progress bar


def read_table(path: Path, *, max_bytes: int) -> Table:
    """Open `path` as a table; `UnreadableFile` (before any row) if it cannot be read."""
    name = str(path)
    size = _checked_size(path, name, max_bytes)
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise UnreadableFile(name, exc.strerror or str(exc)) from None
    suffix = path.suffix.lower()
    if head.startswith(OLE_MAGIC):
        raise UnreadableFile(name, "a legacy .xls (or password-protected) workbook: save it as .xlsx or CSV")
    if head.startswith(ZIP_MAGIC):
        return _read_xlsx(path, name, size, max_bytes)
    if suffix in XLSX_SUFFIXES:
        raise UnreadableFile(name, "not a valid XLSX workbook")
    if suffix not in CSV_SUFFIXES:
        raise UnreadableFile(name, f"not a CSV or XLSX file (expected {', '.join(_known_suffixes())})")
    return _read_csv(path, name, head, suffix)


def normalize_header(cell: str) -> str:
    """A header cell as mappings name it: NFKC, no invisible characters, single spaces, stripped."""
    return " ".join(unicodedata.normalize("NFKC", cell).translate(_INVISIBLE).split())


def _known_suffixes() -> list[str]:
    return sorted(CSV_SUFFIXES | XLSX_SUFFIXES)


def _checked_size(path: Path, name: str, max_bytes: int) -> int:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UnreadableFile(name, "no such file") from None
    except OSError as exc:
        raise UnreadableFile(name, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise UnreadableFile(name, "is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableFile(name, "not a regular file")
    if info.st_size == 0:
        raise UnreadableFile(name, "the file is empty")
    if info.st_size > max_bytes:
        raise UnreadableFile(
            name, f"{info.st_size} bytes is more than the limit of {max_bytes} (IDBROKER_MAX_IMPORT_BYTES)"
        )
    return info.st_size


# --- CSV ---------------------------------------------------------------------------------------------


def _read_csv(path: Path, name: str, head: bytes, suffix: str) -> Table:
    if head.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif b"\x00" in head:
        raise UnreadableFile(name, "binary data, not a CSV text file")
    else:
        candidates = ["utf-8", "gb18030"]
    for encoding in candidates:
        try:
            delimiter = "\t" if suffix == ".tsv" else _sniff_delimiter(path, encoding)
            header_row, header, count = _scan_csv(path, name, encoding, delimiter)
        except UnicodeDecodeError:
            continue
        rows = _csv_rows(path, name, encoding, delimiter, header_row, len(header))
        return Table(name, header, rows, header_row, encoding, count)
    raise UnreadableFile(name, f"the text is not in a supported encoding ({' or '.join(candidates)})")


def _open_text(path: Path, encoding: str) -> Any:
    return path.open(encoding=encoding, errors="strict", newline="")


def _sniff_delimiter(path: Path, encoding: str) -> str:
    with _open_text(path, encoding) as text:
        first = text.readline(MAX_FIELD_CHARS)
    counts = {delimiter: first.count(delimiter) for delimiter in (",", "\t", ";")}
    best = max(counts, key=lambda delimiter: counts[delimiter])  # ties go to the comma
    return best if counts[best] else ","


def _scan_csv(path: Path, name: str, encoding: str, delimiter: str) -> tuple[int, list[str], int]:
    """Parse the whole file once: (header row number, header, rows after it). Raises UnicodeDecodeError."""
    header_row, header, number = 0, [], 0
    with _open_text(path, encoding) as text:
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        try:
            for number, cells in enumerate(reader, 1):
                if not header_row:
                    names = [normalize_header(cell) for cell in cells]
                    if any(names):
                        header_row, header = number, names
        except csv.Error as exc:
            raise UnreadableFile(name, f"row {number + 1}: malformed CSV ({exc})") from None
    if not header_row:
        raise UnreadableFile(name, "no header row (the file holds only empty lines)")
    return header_row, _trim_trailing_empty(header), number - header_row


def _csv_rows(path: Path, name: str, encoding: str, delimiter: str, header_row: int, width: int) -> Iterator[TableRow]:
    with _open_text(path, encoding) as text:
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        try:
            for number, cells in enumerate(reader, 1):
                if number <= header_row:
                    continue
                values = [cell.strip() for cell in cells]
                if any(values):
                    yield TableRow(number, _fit(values, width, pad=False))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise UnreadableFile(name, f"the file changed while it was being read ({exc})") from None


def _trim_trailing_empty(cells: list[str]) -> list[str]:
    end = len(cells)
    while end and not cells[end - 1]:
        end -= 1
    return cells[:end]


# --- XLSX --------------------------------------------------------------------------------------------


def _read_xlsx(path: Path, name: str, size: int, max_bytes: int) -> Table:
    import openpyxl  # imported here: only workbook imports pay for it
    from openpyxl.utils.exceptions import InvalidFileException

    _check_zip(path, name, size, max_bytes)
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, zlib.error, KeyError, ValueError, OSError) as exc:
        raise UnreadableFile(name, f"not a valid XLSX workbook ({exc})") from None
    try:
        if not workbook.worksheets:
            raise UnreadableFile(name, "the workbook has no sheet")
        sheet = workbook.worksheets[0]
        cells = sheet.iter_rows(min_row=1, values_only=True)
        header_row, header = 0, []
        for number, raw in enumerate(cells, 1):
            names = [normalize_header(_cell_text(value)) for value in raw]
            if any(names):
                header_row, header = number, _trim_trailing_empty(names)
                break
        if not header:
            raise UnreadableFile(name, "no header row (the first sheet is empty)")
    except UnreadableFile:
        workbook.close()
        raise
    except Exception as exc:  # openpyxl raises many kinds on a corrupt sheet
        workbook.close()
        raise UnreadableFile(name, f"the first sheet cannot be read ({exc})") from None
    max_row = sheet.max_row if isinstance(sheet.max_row, int) else None
    expected = max(max_row - header_row, 0) if max_row else None
    rows = _xlsx_rows(workbook, cells, name, header_row, len(header))
    return Table(name, header, rows, header_row, "xlsx", expected)


def _check_zip(path: Path, name: str, size: int, max_bytes: int) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(member.file_size for member in archive.infolist())
            if expanded > max(size, 1) * XLSX_MAX_EXPANSION or expanded > max_bytes * XLSX_MAX_EXPANSION:
                raise UnreadableFile(name, f"the workbook expands to {expanded} bytes (a zip bomb?)")
            broken = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError) as exc:
        raise UnreadableFile(name, f"not a valid XLSX workbook ({exc})") from None
    if broken is not None:
        raise UnreadableFile(name, f"the workbook is corrupt (member {broken} fails its checksum)")


def _xlsx_rows(
    workbook: Any, cells: Iterator[tuple[Any, ...]], name: str, header_row: int, width: int
) -> Iterator[TableRow]:
    try:
        for number, raw in enumerate(cells, header_row + 1):
            values = [_cell_text(value) for value in raw]
            if any(values):
                yield TableRow(number, _fit(values, width))
    except Exception as exc:  # a corrupt sheet found late: the whole file is unreadable
        raise UnreadableFile(name, f"the first sheet cannot be read ({exc})") from None
    finally:
        workbook.close()


def _fit(values: list[str], width: int, *, pad: bool = True) -> list[str]:
    """Drop empty cells beyond the header's width; with `pad`, fill a short row up to it."""
    if len(values) > width:
        values = values[:width] + _trim_trailing_empty(values[width:])
    return values + [""] * (width - len(values)) if pad else values


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()
