"""What collecting phones and emails adds to an import, beside the same imports without it, in one run.

    .venv/bin/python bench/contacts_import.py [--people 20000] [--seed 7]

A generated campus (`idbroker.demo.campus`) is imported (student, hr, cas, billing, linking included) into
fresh SQLite databases, each in its own process (the baseline and the default twice, interleaved, since
the machine may be shared):
- `without`: the contacts hooks replaced by no-ops — the directory alone, the baseline;
- `inline`: every change collected inside its import (`IDBROKER_CONTACTS_INLINE_COLLECT_LIMIT` very large);
- `default`: the shipped limit (5,000 changed people): a large import queues a `contacts.collect` job, then
  the worker's collection (`collect_in_batches`) is timed, and a re-import of an unchanged export after it.
Times are printed, never asserted.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("student", "hr", "cas", "billing")


def key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def one(mode: str, campus: Path) -> dict[str, float]:
    """Run in a child process: import the four sources into a fresh database in `mode`."""
    import idbroker.linking.merge as merge
    import idbroker.sources.importer as importer

    if mode == "without":
        importer.collect_after_import = lambda *args, **kwargs: 0  # type: ignore[assignment]
        merge.catch_up_before_commit = lambda *args, **kwargs: None  # type: ignore[assignment]
    from sqlmodel import Session

    from idbroker.config import get_settings
    from idbroker.contacts.collect import collect_in_batches
    from idbroker.db import make_engine
    from idbroker.migrate import upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    times: dict[str, float] = {}
    started = time.perf_counter()
    for source in SOURCES:
        with Session(engine) as session:
            importer.run_import(
                session, source=source, location=str(campus / f"{source}.csv"), settings=get_settings(), actor="bench"
            )
            session.commit()
    times["imports"] = time.perf_counter() - started
    if mode == "default":
        started = time.perf_counter()
        with Session(engine) as session:
            times["people"] = collect_in_batches(session)
        times["worker"] = time.perf_counter() - started
        started = time.perf_counter()
        with Session(engine) as session:
            importer.run_import(
                session, source="billing", location=str(campus / "billing.csv"), settings=get_settings(), actor="bench"
            )
            session.commit()
        times["again"] = time.perf_counter() - started
    engine.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one(args.child[0], Path(args.child[1]))))
        return
    from idbroker.demo.campus import generate_campus

    directory = Path(tempfile.mkdtemp(prefix="idbroker-bench-contacts-import-"))
    made = generate_campus(args.people, args.seed, directory / "campus")
    records = sum(made.counts.values())
    results = {}
    for mode in ("without", "default", "inline", "without", "default"):
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("IDBROKER_")},
            "IDBROKER_DATABASE_URL": f"sqlite:///{directory / f'{mode}.db'}",
            "IDBROKER_NATIONAL_ID_HASH_KEY": key(),
            "IDBROKER_ENCRYPTION_KEY": key(),
            "IDBROKER_POLICIES_DIR": str(ROOT / "policies"),
        }
        if mode == "inline":
            env["IDBROKER_CONTACTS_INLINE_COLLECT_LIMIT"] = str(10**9)
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(directory / "campus")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        results.setdefault(mode, []).append(result)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{args.people:,} people, {records:,} records; SQLite; 2 cores, load average {load}")

    def imports(mode: str) -> str:
        return " / ".join(f"{run['imports']:.1f}" for run in results[mode]) + " s"

    print(f"four imports, directory only (baseline)        {imports('without')}")
    print(f"four imports, contacts collected inside        {imports('inline')}")
    print(f"four imports, large changes left to the worker {imports('default')}")
    worker = results["default"][-1]
    print(f"worker collects {worker['people']:,.0f} people in batches          {worker['worker']:7.1f} s")
    print(f"re-import of an unchanged billing export       {worker['again']:7.1f} s")
    shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
