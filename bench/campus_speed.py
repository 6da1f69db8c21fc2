"""End to end on SQLite: generate a campus, import and link it with the CLI, score it, link records one by
one, and run Splink on the same records in the same run.

    .venv/bin/python bench/campus_speed.py [--people 250000] [--seed 7] [--holdout 200] [--no-splink]

Each CLI step runs as its own process on a fresh database (`bench/out/bench.db`, keys generated once into
`bench/out/bench.env`); wall time and peak RSS (`os.wait4`) are printed per step. Then `--holdout` rows held
back from the bulk files are imported one at a time (`--partial`, through `idbroker.sources.importer`) and
the time of linking each (`idbroker.linking.service.link_records`) and of the whole call is reported.
Times are printed, never asserted.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from campus_records import REPO
from score import Score, count_open_candidates, load_national_ids, load_prediction, load_truth, score

from idbroker.demo.campus import SOURCES, generate_campus

OUT = REPO / "bench" / "out"
IDBROKER = REPO / ".venv" / "bin" / "idbroker"
PYTHON = REPO / ".venv" / "bin" / "python"
KEY_COLUMN = {"student": "学号", "hr": "工号", "cas": "uid", "billing": "account"}


@dataclass
class Step:
    name: str
    seconds: float
    peak_mib: float
    returncode: int
    last_line: str


def run_step(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Step:
    """Run one process; its wall time and peak RSS (sampled every 20 ms with psutil, children included)."""
    import psutil

    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name.replace(' ', '_')}.log"
    started = time.perf_counter()
    peak = 0
    with log.open("w", encoding="utf-8") as handle:
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                rss = watched.memory_info().rss + sum(c.memory_info().rss for c in watched.children(recursive=True))
            except psutil.Error:
                rss = 0
            peak = max(peak, rss)
            time.sleep(0.02)
    seconds = time.perf_counter() - started
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    step = Step(name, seconds, peak / 2**20, process.returncode, lines[-1] if lines else "")
    if step.returncode != 0:
        raise SystemExit(f"step {name!r} failed (exit {step.returncode}); see {log}")
    return step


def bench_env(out: Path) -> dict[str, str]:
    """The environment of every step: the bench database and keys made once, kept in bench.env."""
    env_file = out / "bench.env"
    if not env_file.exists():
        keys = {
            name: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
            for name in ("IDBROKER_NATIONAL_ID_HASH_KEY", "IDBROKER_ENCRYPTION_KEY")
        }
        env_file.write_text("".join(f"{k}={v}\n" for k, v in keys.items()), encoding="utf-8")
        env_file.chmod(0o600)
    env = dict(os.environ)
    for line in env_file.read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition("=")
        env[name] = value
    env["IDBROKER_DATABASE_URL"] = f"sqlite:///{out / 'bench.db'}"
    env["IDBROKER_POLICIES_DIR"] = str(REPO / "policies")
    return env


def split_holdout(campus: Path, bulk: Path, holdout: Path, count: int, seed: int) -> None:
    """Copy the campus into `bulk` without `count` random rows; write those rows one per file in `holdout`."""
    rng = random.Random(seed)
    bulk.mkdir(parents=True, exist_ok=True)
    holdout.mkdir(parents=True, exist_ok=True)
    for old in holdout.glob("*.csv"):
        old.unlink()
    tables = {}
    for source in SOURCES:
        with (campus / f"{source}.csv").open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        tables[source] = (rows[0], rows[1:])
    chosen = [(source, i) for source in SOURCES for i in range(len(tables[source][1]))]
    held = set(rng.sample(chosen, min(count, len(chosen))))
    held_keys = set()
    for number, (source, i) in enumerate(sorted(held)):
        header, rows = tables[source]
        held_keys.add((source, rows[i][0]))
        with (holdout / f"{number:04d}-{source}.csv").open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows([header, rows[i]])
    for source, (header, rows) in tables.items():
        with (bulk / f"{source}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(row for i, row in enumerate(rows) if (source, i) not in held)
    with (campus / "truth.csv").open(encoding="utf-8", newline="") as src:
        truth = list(csv.reader(src))
    with (bulk / "truth.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(truth[0])
        writer.writerows(row for row in truth[1:] if (row[0], row[1]) not in held_keys)


def incremental_worker(holdout: Path) -> None:
    """Run inside the bench environment: import each one-row file and link it; print the timings as JSON."""
    from idbroker.config import get_settings
    from idbroker.db import session_scope
    from idbroker.linking.service import link_records
    from idbroker.sources.importer import run_import

    settings = get_settings()
    link_ms, whole_ms = [], []
    for path in sorted(holdout.glob("*.csv")):
        source = path.stem.split("-", 1)[1]
        started = time.perf_counter()
        with session_scope() as session:
            run_import(
                session,
                source=source,
                location=str(path),
                settings=settings,
                actor="bench",
                full=False,
                link=False,
            )
            before = time.perf_counter()
            link_records(session, settings=settings, actor="bench")
            link_ms.append((time.perf_counter() - before) * 1000)
        whole_ms.append((time.perf_counter() - started) * 1000)
    print(json.dumps({"link_ms": link_ms, "whole_ms": whole_ms}))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="campus import + link speed and accuracy, with Splink beside")
    parser.add_argument("--people", type=int, default=250_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--holdout", type=int, default=200)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--no-splink", action="store_true")
    parser.add_argument("--incremental-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.incremental_worker:
        incremental_worker(args.incremental_worker)
        return 0

    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    campus, bulk, holdout, logs = out / "campus", out / "bulk", out / "holdout", out / "logs"
    started = time.perf_counter()
    files = generate_campus(args.people, args.seed, campus)
    generated = time.perf_counter() - started
    split_holdout(campus, bulk, holdout, args.holdout, args.seed)
    print(f"campus: {files.people:,} people, {files.records:,} records {files.counts} generated in {generated:.1f} s")

    for suffix in ("", "-wal", "-shm"):
        (out / f"bench.db{suffix}").unlink(missing_ok=True)
    env = bench_env(out)
    steps = [run_step("db upgrade", [str(IDBROKER), "db", "upgrade"], env, logs)]
    for source in SOURCES:
        argv = [str(IDBROKER), "import", source, str(bulk / f"{source}.csv"), "--no-link"]
        steps.append(run_step(f"import {source}", argv, env, logs))
    steps.append(run_step("link", [str(IDBROKER), "link"], env, logs))
    identities, candidates = out / "identities.csv", out / "candidates.csv"
    steps.append(run_step("export identities", [str(IDBROKER), "export", "identities", str(identities)], env, logs))
    steps.append(run_step("export candidates", [str(IDBROKER), "export", "candidates", str(candidates)], env, logs))

    print(f"\n{'step':<20}{'wall s':>9}{'peak RSS MiB':>14}")
    for step in steps:
        print(f"{step.name:<20}{step.seconds:>9.1f}{step.peak_mib:>14.0f}")
    load = [s for s in steps if s.name.startswith(("db", "import", "link"))]
    print(f"{'import + link':<20}{sum(s.seconds for s in load):>9.1f}{max(s.peak_mib for s in load):>14.0f}")
    print(f"{'all steps':<20}{sum(s.seconds for s in steps):>9.1f}{max(s.peak_mib for s in steps):>14.0f}")

    ours: Score = score(
        load_truth(bulk / "truth.csv"),
        load_prediction(identities),
        load_national_ids(bulk),
        count_open_candidates(candidates),
    )
    print("\nour engine (CLI, SQLite):")
    print("\n".join("   " + line for line in ours.lines()))

    worker = run_step(
        "incremental",
        [str(PYTHON), str(Path(__file__).resolve()), "--incremental-worker", str(holdout)],
        env,
        logs,
    )
    timings = json.loads(worker.last_line)
    link_ms, whole_ms = timings["link_ms"], timings["whole_ms"]
    if link_ms:
        print(
            f"\nincremental, {len(link_ms)} records one at a time:"
            f" link median {statistics.median(link_ms):.1f} ms"
            f"  p95 {_percentile(link_ms, 0.95):.1f} ms;  whole import call (parse + store + link + commit)"
            f" median {statistics.median(whole_ms):.1f} ms  p95 {_percentile(whole_ms, 0.95):.1f} ms"
        )
    final = out / "identities-after.csv"
    run_step("export after", [str(IDBROKER), "export", "identities", str(final)], env, logs)
    after = score(load_truth(campus / "truth.csv"), load_prediction(final), load_national_ids(campus))
    print("after the incremental records (whole campus):")
    print("\n".join("   " + line for line in after.lines()[1:5]))

    if not args.no_splink:
        splink = run_step(
            "splink",
            [str(PYTHON), str(REPO / "bench" / "splink_campus.py"), "--campus", str(bulk), "--json"],
            env,
            logs,
        )
        result = json.loads(splink.last_line)
        link_step = next(s for s in steps if s.name == "link")
        print(
            f"\nSplink 5, same records, same run: normalise {result['normalise_s']:.1f} s, link"
            f" {result['link_s']:.1f} s, peak RSS {splink.peak_mib:.0f} MiB"
            f"\nours: the same records in memory, in the same process after Splink: link {result['ours_link_s']:.1f} s"
            f" (after {result['ours_convert_s']:.1f} s making its records);"
            f" the CLI's link step (reads and writes the database) {link_step.seconds:.1f} s"
        )
        for name, figures in result["scores"].items():
            queue = "" if figures["review_queue"] is None else f"  review queue {figures['review_queue']}"
            print(
                f"   {'our engine in memory' if name == 'ours' else f'threshold {name}'}: P {figures['precision']:.5f}"
                f" R {figures['recall']:.5f}  false merges {figures['false_merges']}"
                f"  across valid IDs {figures['id_conflicts']}  split {figures['split_people']}{queue}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
