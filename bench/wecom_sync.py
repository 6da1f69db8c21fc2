"""WeChat Work sync at scale: a 100,000-person directory's first sync, then an increment where 1 % changed.

    .venv/bin/python bench/wecom_sync.py [--people 100000] [--no-baseline]

Runs the API stand-in (tests/standins/wecom_api.py) as a separate process and counts every call it receives.
Figures: the first sync (departments by media/upload + batch/replaceparty + batch/getresult, then members by
media/upload + batch/syncuser + batch/getresult) — calls and wall time; the increment — calls per API and per
changed member; and, as baselines in the same run, the same first sync into a corp that already holds a
department of its own (replaceparty refused: one department/create each), and (unless --no-baseline) one
member at a time (user/create, concurrency 50), as a sync without the batch paths makes it.
Nothing is asserted: the figures are printed (and belong in bench/RESULTS.md with this command).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
STANDIN = ROOT / "tests" / "standins" / "wecom_api.py"
CORP, SECRET = "wwbench0000000001", "bench-contacts-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StandIn:
    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(STANDIN),
                "--port",
                str(self.port),
                "--corp-id",
                CORP,
                "--secret",
                SECRET,
                "--batch-delay",
                "0.5",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(self.url + "/_standin/stats", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.url + "/_standin/stats", timeout=30).json()

    def add_own_department(self) -> None:
        """A department made by hand in the admin console (through the API, as any client would)."""
        token = httpx.get(
            self.url + "/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET}, timeout=30
        ).json()["access_token"]
        answer = httpx.post(
            self.url + "/cgi-bin/department/create",
            params={"access_token": token},
            json={"id": 900, "name": "招生办", "parentid": 1},
            timeout=30,
        ).json()
        assert answer["errcode"] == 0, answer

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def configure(workdir: Path, database: Path, standin: StandIn, *, batch_threshold: int | None = None) -> None:
    policies = workdir / "policies"
    if not policies.exists():
        shutil.copytree(ROOT / "policies", policies)
    if batch_threshold is not None:
        path = policies / "wecom.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["batch_threshold"] = batch_threshold
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    os.environ.update(
        {
            "IDBROKER_DATABASE_URL": f"sqlite:///{database}",
            "IDBROKER_POLICIES_DIR": str(policies),
            "IDBROKER_NATIONAL_ID_HASH_KEY": "YmVuY2gtb25seS1oYXNoLWtleS1ub3QtYS1zZWNyZXQtMDE",
            "IDBROKER_ENCRYPTION_KEY": "YmVuY2gtb25seS1lbmMta2V5LW5vdC1hLXNlY3JldC0wMDAx",
            "IDBROKER_WECOM_CORP_ID": CORP,
            "IDBROKER_WECOM_CONTACTS_SECRET": SECRET,
            "IDBROKER_WECOM_API_BASE": standin.url + "/cgi-bin/",
            "IDBROKER_WECOM_CONCURRENCY": "50",
        }
    )
    from idbroker.config import get_settings

    get_settings.cache_clear()


def run_sync(label: str) -> tuple[float, Any]:
    from idbroker.config import get_settings
    from idbroker.db import make_engine
    from idbroker.wecom.apply import Sync

    settings = get_settings()
    engine = make_engine(settings.database_url)
    runner = Sync.open(engine, settings)
    started = time.perf_counter()
    report = runner.run(actor=f"bench:{label}")
    elapsed = time.perf_counter() - started
    runner.connect().close()
    engine.dispose()
    return elapsed, report


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {api: after.get(api, 0) - before.get(api, 0) for api in after if after.get(api, 0) != before.get(api, 0)}


def fresh_directory(workdir: Path, database: Path) -> None:
    """The directory as it was before the first sync (nothing recorded as pushed)."""
    shutil.copyfile(workdir / "directory.db", database)
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)


def change_one_percent(database: Path, ids: list[str]) -> int:
    """1 % of people change: half a new mobile, 30 % a new 学院, 20 % a new name. Returns how many."""
    from sqlalchemy import update
    from sqlmodel import Session
    from wecom_directory import choose_primaries

    from idbroker.db import make_engine
    from idbroker.directory.models import SourceRecord

    engine = make_engine(f"sqlite:///{database}")
    changed = ids[::100]
    with Session(engine) as session:
        for i, pid in enumerate(changed):
            if i % 10 < 5:
                values: dict[str, Any] = {"phone": f"+86138{i:08d}"}
            elif i % 10 < 8:
                values = {"org": "物理学院"}
            else:
                values = {"name": f"改名{i}"}
            session.execute(update(SourceRecord).where(SourceRecord.person_id == pid).values(**values))  # type: ignore[arg-type]
        session.commit()
    choose_primaries(engine, changed)
    engine.dispose()
    return len(changed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="wecom-bench-"))
    os.chdir(workdir)
    database = workdir / "bench.db"

    from wecom_directory import build_directory, choose_primaries

    from idbroker.db import make_engine
    from idbroker.migrate import upgrade

    standin = StandIn()
    try:
        configure(workdir, database, standin)
        engine = make_engine(f"sqlite:///{database}")
        upgrade(engine)
        started = time.perf_counter()
        ids = build_directory(engine, args.people)
        built = time.perf_counter() - started
        primaries = choose_primaries(engine, ids)
        engine.dispose()
        shutil.copyfile(database, workdir / "directory.db")
        print(f"directory: {args.people:,} people written in {built:.1f} s; primaries chosen in {primaries:.1f} s")

        first_time, _ = run_sync("first")
        stats = standin.stats()
        by_api = stats["by_api"]
        print(
            f"first sync: {first_time:.1f} s, {stats['calls']} calls {by_api}; "
            f"members in the corp {stats['members']:,}, departments {stats['departments'] - 1}"
        )

        changed = change_one_percent(database, ids)
        before = stats["by_api"]
        inc_time, inc = run_sync("increment")
        changes = delta(before, standin.stats()["by_api"])
        calls = sum(changes.values())
        print(
            f"increment: {changed:,} people changed (1 %): {inc_time:.1f} s, {calls} calls {changes}; "
            f"{calls / changed:.3f} calls per changed member; counts {dict(inc.counts)}"
        )
    finally:
        standin.stop()

    own = StandIn()  # baseline: a corp with a department of its own never gets replaceparty
    try:
        own.add_own_department()
        before = own.stats()["by_api"]
        fresh_directory(workdir, database)
        configure(workdir, database, own)
        own_time, _ = run_sync("own-department")
        stats = own.stats()
        changes = delta(before, stats["by_api"])
        print(
            f"baseline, a corp holding a department of its own (departments one by one): {own_time:.1f} s, "
            f"{sum(changes.values())} calls {changes}; members in the corp {stats['members']:,}"
        )
    finally:
        own.stop()

    if args.no_baseline:
        shutil.rmtree(workdir, ignore_errors=True)
        return
    baseline = StandIn()
    try:
        fresh_directory(workdir, database)
        configure(workdir, database, baseline, batch_threshold=10**9)
        base_time, _ = run_sync("baseline")
        stats = baseline.stats()
        print(
            f"baseline, one by one (user/create, concurrency 50): {base_time:.1f} s, {stats['calls']} calls; "
            f"members in the corp {stats['members']:,}"
        )
    finally:
        baseline.stop()
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
