"""Audit search over a large generated log: a person's report, console searches, and `audit verify` throughput.

    .venv/bin/python bench/audit_search.py [--events 10000000] [--people 100000] [--backend sqlite|postgresql|both]
                                           [--reports 101] [--no-verify] [--keep]

For each backend: a fresh database migrated to head, filled by `bench/audit_events.py` (sealed and chained in
Python, bulk-loaded), then:
- a person's access report (`idbroker.audit.reports.access_report`, which also appends its own `audit.report`
  event) for `--reports` random people: median and p95 in ms; beside it, in the same run, the bare indexed
  SELECT of the same rows (the floor) and one report with the subject index bypassed (what the index buys);
- three console searches (first page of 50): by app and a 30-day window, by staff member, by action prefix;
- `verify_chain` over the whole log in events/s, beside reading every row without checking (the I/O floor).
Nothing is asserted; the figures are printed (and recorded in bench/RESULTS.md with this command).
SQLite lives in bench/out/audit/; PostgreSQL in a throwaway cluster (tests/services/postgres.py, fsync off).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text
from sqlmodel import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from audit_events import load  # noqa: E402

from idbroker.audit.models import AuditEvent  # noqa: E402
from idbroker.audit.reports import access_report  # noqa: E402
from idbroker.audit.search import AuditFilter, read_page  # noqa: E402
from idbroker.audit.verify import COLUMNS, verify_chain  # noqa: E402
from idbroker.clock import utcnow  # noqa: E402
from idbroker.db import make_engine, session_scope  # noqa: E402
from idbroker.migrate import upgrade  # noqa: E402

OUT = ROOT / "bench" / "out" / "audit"


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def measure(engine: Engine, people: list[str], reports: int, verify: bool) -> dict[str, str]:
    figures: dict[str, str] = {}
    rng = random.Random(11)
    chosen = [people[rng.randrange(len(people))] for _ in range(reports)]
    for person in chosen[:3]:  # warm the caches the way a running console has them warm
        with session_scope(engine) as session:
            access_report(session, person, actor="cli:bench")

    report_times, bare_times, sizes = [], [], []
    for person in chosen:
        with session_scope(engine) as session:
            seconds, report = timed(lambda p=person, s=session: access_report(s, p, actor="cli:bench"))
        report_times.append(seconds)
        sizes.append(len(report.entries))
        with engine.connect() as connection:
            seconds, _rows = timed(
                lambda p=person, c=connection: c.execute(
                    select(AuditEvent.__table__).where(AuditEvent.subject == p).order_by(AuditEvent.seq.desc())  # type: ignore[attr-defined]
                ).all()
            )
        bare_times.append(seconds)
    report_times.sort()
    figures["report median"] = ms(statistics.median(report_times))
    figures["report p95"] = ms(report_times[int(len(report_times) * 0.95) - 1])
    figures["events per report (median)"] = f"{statistics.median(sizes):.0f}"
    figures["baseline: bare indexed SELECT, median"] = ms(statistics.median(bare_times))

    unindexed = (
        "SELECT * FROM audit_event NOT INDEXED WHERE subject = :p ORDER BY seq DESC"
        if engine.dialect.name == "sqlite"
        else "SELECT * FROM audit_event WHERE subject || '' = :p ORDER BY seq DESC"
    )
    with engine.connect() as connection:
        seconds, _rows = timed(lambda: connection.execute(text(unindexed), {"p": chosen[0]}).all())
    figures["baseline: same person without the subject index"] = ms(seconds)

    now = utcnow()
    searches = {
        "search: app + 30 days, first page": AuditFilter(app="app03.example", since=now - timedelta(days=30)),
        "search: staff member, first page": AuditFilter(actor=f"person:{people[0]}"),
        "search: action prefix helpdesk.*, first page": AuditFilter(action="helpdesk.*"),
        "search: purpose, first page": AuditFilter(purpose="helpdesk"),
    }
    for label, query in searches.items():
        with Session(engine) as session:
            read_page(session, query, limit=50)  # warm
            seconds, page = timed(lambda q=query, s=session: read_page(s, q, limit=50))
        figures[label] = f"{ms(seconds)} ({len(page.entries)} events)"

    if verify:
        with engine.connect() as connection:

            def read_all() -> int:
                count, cursor = 0, 0
                while True:
                    rows = connection.execute(
                        select(*COLUMNS).where(AuditEvent.seq > cursor).order_by(AuditEvent.seq).limit(10000)
                    ).all()
                    if not rows:
                        return count
                    count += len(rows)
                    cursor = rows[-1][0]

            seconds, count = timed(read_all)
        figures["baseline: read every row, no checks"] = f"{count / seconds:,.0f} events/s"
        with Session(engine) as session:
            seconds, result = timed(lambda: verify_chain(session))
        status = "ok" if result.ok else f"FAILED: {result.problem}"
        figures["audit verify"] = (
            f"{result.checked / seconds:,.0f} events/s ({result.checked:,} events, {seconds:.0f} s, {status})"
        )
    return figures


def run_backend(backend: str, events: int, people_count: int, reports: int, verify: bool, keep: bool) -> None:
    cluster = None
    if backend == "sqlite":
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / "audit.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        from services import postgres

        cluster = postgres.start_cluster()
        cluster.create_database("audit_bench")
        url = cluster.url("audit_bench")
    engine = make_engine(url)
    try:
        upgrade(engine)
        seconds, (people, last_seq, _head) = timed(lambda: load(engine, events, seed=7, people_count=people_count))
        print(
            f"[{backend}] generated and loaded {last_seq:,} events for {people_count:,} people in {seconds:.0f} s "
            f"({last_seq / seconds:,.0f} events/s)",
            flush=True,
        )
        for label, value in measure(engine, people, reports, verify).items():
            print(f"[{backend}] {label}: {value}", flush=True)
    finally:
        engine.dispose()
        if cluster is not None and not keep:
            postgres.remove_cluster(cluster)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--reports", type=int, default=101)
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--keep", action="store_true", help="Keep the PostgreSQL cluster (SQLite's file is kept).")
    args = parser.parse_args()
    for backend in ("sqlite", "postgresql") if args.backend == "both" else (args.backend,):
        run_backend(backend, args.events, args.people, args.reports, not args.no_verify, args.keep)


if __name__ == "__main__":
    main()
