"""What an import tells its operator: counts, and each problem with file, row and reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

COUNTS = ("read", "new", "updated", "unchanged", "inactive", "skipped", "fields_set_aside")
MAX_PROBLEMS_KEPT = 10_000  # a file of bad rows must not exhaust memory: beyond this, problems are only counted


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
    problems: list[Problem] = field(default_factory=list)  # the first MAX_PROBLEMS_KEPT, in file order
    problems_omitted: int = 0  # problems counted but not kept
    import_run_id: int | None = None
    link: dict[str, Any] | None = None

    def skip(self, file: str, row: int, reason: str) -> None:
        self.counts["skipped"] += 1
        self._keep(Problem(file, row, "skipped", reason))

    def set_aside(self, file: str, row: int, name: str, reason: str) -> None:
        self.counts["fields_set_aside"] += 1
        self._keep(Problem(file, row, "set_aside", reason, name))

    def _keep(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(problem)
        else:
            self.problems_omitted += 1
