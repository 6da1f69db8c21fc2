"""What an import tells its operator: counts, and each problem with file, row and reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

COUNTS = ("read", "new", "updated", "unchanged", "inactive", "skipped", "fields_set_aside")


@dataclass(frozen=True)
class Problem:
    file: str
    row: int  # as a spreadsheet numbers it: the header is row 1
    level: Literal["skipped", "set_aside"]
    reason: str
    field: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}, row {self.row}"
        what = f"{self.field}: {self.reason}" if self.field else self.reason
        verdict = "row skipped" if self.level == "skipped" else "field set aside"
        return f"{where}: {what} ({verdict})"


@dataclass
class ImportReport:
    source: str
    location: str
    full: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    problems: list[Problem] = field(default_factory=list)
    import_run_id: int | None = None
    link: dict[str, Any] | None = None

    def skip(self, file: str, row: int, reason: str) -> None:
        self.counts["skipped"] += 1
        self.problems.append(Problem(file, row, "skipped", reason))

    def set_aside(self, file: str, row: int, name: str, reason: str) -> None:
        self.counts["fields_set_aside"] += 1
        self.problems.append(Problem(file, row, "set_aside", reason, name))
