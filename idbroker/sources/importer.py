"""`idbroker import SOURCE PATH`: read an export, update the source's records, link what changed.

All of one import happens in one transaction: a file that cannot be read, or a failure halfway,
changes nothing. Imports are idempotent (a row whose content hash is unchanged is not touched) and
incremental (a changed row updates its record; a record missing from a full export becomes inactive —
never deleted: graduates and former staff keep their person).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, select, update
from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.contacts.collect import collect_after_import
from idbroker.db import bulk_insert, bulk_update_by_id, driver_value
from idbroker.directory.events import emit_many
from idbroker.directory.models import SourceRecord
from idbroker.directory.protect import Protector
from idbroker.linking.service import link_records
from idbroker.sources.mapping import load_mapping
from idbroker.sources.models import ImportRun
from idbroker.sources.parallel import Item, prepare_rows
from idbroker.sources.prepare import PREPARED, RowPreparer
from idbroker.sources.registry import adapter_for
from idbroker.sources.report import ImportReport
from idbroker.sources.rows import RowParser

Progress = Callable[[int], None]
MASS_DEACTIVATION_SHARE = 0.5  # a full export that drops more than this share of present records is suspect


class MassDeactivation(ValueError):
    """A full export would make most of a source's records inactive: a truncated file, not a graduation."""


RECORDS = SourceRecord.__table__  # type: ignore[attr-defined]
WRITE_BATCH = 5000
LOOKUP_BATCH = 2000  # rows whose stored records are looked up in one query


def _location_label(location: str) -> str:
    """What the report and the audit log say about where the data came from: never a credential."""
    if "://" in location:
        scheme, _, rest = location.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"
    return Path(location).name


def _announce(session: Session, record_ids: list[int]) -> None:
    """Tell the directory's followers which people changed, and who no longer holds any active record."""
    changed: set[str] = set()
    left: set[str] = set()
    for start in range(0, len(record_ids), WRITE_BATCH):
        chunk = record_ids[start : start + WRITE_BATCH]
        people = set(
            session.scalars(
                select(RECORDS.c.person_id).where(RECORDS.c.id.in_(chunk), RECORDS.c.person_id.is_not(None))
            )
        )
        changed |= people
    people_list = list(changed)
    for start in range(0, len(people_list), WRITE_BATCH):
        chunk = people_list[start : start + WRITE_BATCH]
        active = func.sum(case((RECORDS.c.present, 1), else_=0))
        rows = session.execute(
            select(RECORDS.c.person_id, active).where(RECORDS.c.person_id.in_(chunk)).group_by(RECORDS.c.person_id)
        )
        left |= {pid for pid, count in rows if not count}
    emit_many(session, "person.updated", sorted(changed - left), reason="source record changed")
    emit_many(session, "person.left", sorted(left))


def _with_stored(
    session: Session, source: str, rows: list[tuple[int, str, list[str]]]
) -> Iterator[tuple[Item, tuple[int, str, tuple[int, str, bool] | None]]]:
    """Each row (number, key, cells) with its stored record, if any, looked up in one query."""
    stored = _existing(session, source, [key for _, key, _ in rows])
    for number, key, cells in rows:
        known = stored.get(key)
        yield (key, cells, known[1] if known else None), (number, key, known)


def _existing(session: Session, source: str, keys: list[str]) -> dict[str, tuple[int, str, bool]]:
    """The stored records of these keys: id, row hash, present."""
    if not keys:
        return {}
    query = select(RECORDS.c.id, RECORDS.c.key, RECORDS.c.row_hash, RECORDS.c.present).where(
        RECORDS.c.source == source, RECORDS.c.key.in_(keys)
    )
    return {key: (rid, row_hash, present) for rid, key, row_hash, present in session.execute(query)}


def run_import(
    session: Session,
    *,
    source: str,
    location: str,
    settings: Settings,
    actor: str = "cli",
    full: bool = True,
    link: bool = True,
    allow_mass_deactivation: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import one export of one source in the caller's transaction and return its report."""
    policies = Path(settings.policies_dir)
    mapping = load_mapping(policies, source)
    protector = Protector.from_settings(settings)
    table = adapter_for(source, policies).read(location, mapping, settings)
    columns = mapping.resolve_header(table.header)
    label = _location_label(location)
    report = ImportReport(source=source, location=label, full=full)

    run = ImportRun(source=source, location=label, full=full, actor=actor)
    session.add(run)
    session.flush()
    report.import_run_id = run.id

    seen: dict[str, int] = {}
    Tag = tuple[int, str, tuple[int, str, bool] | None]  # row number, key, the stored record (id, row hash, present)

    def to_prepare() -> Iterator[tuple[Item, Tag]]:
        """The rows that can be records, with their stored records, read and looked up a batch at a time as
        the workers ask for more."""
        batch: list[tuple[int, str, list[str]]] = []
        for table_row in table.rows:
            report.counts["read"] += 1
            if progress is not None:
                progress(1)
            values = table_row.values
            if len(values) != columns.width:
                report.skip(
                    label, table_row.number, f"wrong number of columns: {len(values)}, the header has {columns.width}"
                )
                continue
            key = columns.key_of(values).strip()
            if not key:
                report.skip(label, table_row.number, f"no key ({mapping.key} is empty)")
                continue
            if len(key) > 64:
                report.skip(label, table_row.number, f"key longer than 64 characters ({mapping.key})")
                continue
            if key in seen:
                report.skip(label, table_row.number, f"key {mapping.key} {key} already in row {seen[key]} of this file")
                continue
            seen[key] = table_row.number
            batch.append((table_row.number, key, values))
            if len(batch) >= LOOKUP_BATCH:
                yield from _with_stored(session, source, batch)
                batch = []
        yield from _with_stored(session, source, batch)

    now = utcnow()
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    revived: list[int] = []
    insert_fixed = {"source": source, "present": True, "first_seen": now, "last_seen": now, "import_run_id": run.id}
    update_fixed = {"present": True, "last_seen": now, "import_run_id": run.id}
    insert_tail = tuple(driver_value(session, RECORDS.c[name], value) for name, value in insert_fixed.items())
    update_tail = tuple(driver_value(session, RECORDS.c[name], value) for name, value in update_fixed.items())
    preparer = RowPreparer(RowParser(mapping, protector), columns, session.get_bind().engine.url.drivername)
    for prepared, (number, key, known) in prepare_rows(preparer, to_prepare()):
        if prepared is None:  # the stored record's row, unchanged
            assert known is not None
            report.counts["unchanged"] += 1
            if not known[2]:
                revived.append(known[0])
            continue
        for name, reason in prepared.set_aside:
            report.set_aside(label, number, name, reason)
        if known is None:
            inserts.append((*prepared.values, *insert_tail, key))
            report.counts["new"] += 1
        else:
            updates.append((*prepared.values, *update_tail, known[0]))
            report.counts["updated"] += 1
        if len(inserts) >= WRITE_BATCH:
            bulk_insert(session, RECORDS, [*PREPARED, *insert_fixed, "key"], inserts)
            inserts = []
    bulk_insert(session, RECORDS, [*PREPARED, *insert_fixed, "key"], inserts)
    bulk_update_by_id(session, RECORDS, [*PREPARED, *update_fixed], updates)
    report.problems.sort(key=lambda problem: problem.row)  # found while reading or while preparing: in file order
    if revived:
        session.execute(update(RECORDS).where(RECORDS.c.id.in_(revived)).values(present=True, last_seen=now))
    gone: list[int] = []
    if full:
        present_now = session.execute(
            select(RECORDS.c.id, RECORDS.c.key).where(RECORDS.c.source == source, RECORDS.c.present.is_(True))
        ).all()
        gone = [rid for rid, key in present_now if key not in seen]
        present_before = len(present_now)
        if gone and not allow_mass_deactivation and len(gone) > MASS_DEACTIVATION_SHARE * present_before:
            raise MassDeactivation(
                f"{label}: this full export would make {len(gone)} of {present_before} {source} records inactive; "
                "if that is right, import again with --allow-mass-deactivation, else use --partial"
            )
        for start in range(0, len(gone), WRITE_BATCH):
            chunk = gone[start : start + WRITE_BATCH]
            session.execute(update(RECORDS).where(RECORDS.c.id.in_(chunk)).values(present=False, last_seen=now))
        report.counts["inactive"] = len(gone)

    updated = [row[-1] for row in updates]
    _announce(session, updated + gone)
    if link and (report.counts["new"] or report.counts["updated"]):
        report.link = link_records(session, settings=settings, actor=actor, changed=updated).as_dict()

    collect_after_import(session, run, settings)  # contacts (issue 3): claims and primaries of who changed
    run.finished_at = utcnow()
    run.counts = dict(report.counts)
    session.add(run)
    audit(
        session,
        actor=actor,
        action="import",
        details={
            "source": source,
            "location": label,
            "full": full,
            "import_run": run.id,
            **report.counts,
            "link": report.link or {},
        },
    )
    return report
