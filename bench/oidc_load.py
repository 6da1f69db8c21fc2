"""Load on the release path: userinfo and resolve (each with its audit record), beside a bare FastAPI
endpoint served the same way, on SQLite and on PostgreSQL, load from separate processes.

    .venv/bin/python bench/oidc_load.py [--seconds 10] [--backends sqlite,postgresql]

For each backend: a fresh database (PostgreSQL: a throwaway cluster started like the test suite's), a small
generated campus, an app allowed pseudonym + nickname + name, a person's access token and an app token.
The broker and the bare app each run under `uvicorn --workers 1` on loopback. Then:
- saturation: `wrk -t2 -c64 -d<seconds>s` on the bare endpoint, userinfo and GET /api/apps/v1/people/{sub};
- fixed rate: 25 % of the bare endpoint's saturation throughput, offered by `hey -c 8 -q <rate/8>`, for
  p50 / p99 latency (at saturation latency is only concurrency / throughput).
Every userinfo and resolve request writes one hash-chained audit event, which is counted at the end.
Beside each saturation figure: the server process's own CPU time per request during the wrk run (user + system,
from /proc), which other processes on the machine disturb far less than requests per second.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway PostgreSQL cluster of the test suite

PY = str(ROOT / ".venv" / "bin" / "python")
CONNECTIONS = 64
HEY_WORKERS = 8
POLICY = "client_id: bench\npurpose: 基准测试\nclaims: [pseudonym, nickname, name]\n"


def key() -> str:
    import base64
    import secrets

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def free_port() -> int:
    from services.availability import free_port as port

    return port()


def prepare(database_url: str, workdir: Path, env: dict[str, str]) -> dict[str, str]:
    """Migrate, import a campus, register the app, make the tokens; returns the tokens and a pseudonym."""
    os.environ.update(env)
    from idbroker.config import get_settings

    get_settings.cache_clear()
    from sqlmodel import Session

    from idbroker.clock import utcnow
    from idbroker.db import make_engine
    from idbroker.demo.campus import generate_campus
    from idbroker.directory.queries import people_by_number
    from idbroker.migrate import upgrade
    from idbroker.oidc.rfc6749.tokens import new_grant, new_token
    from idbroker.release import registry
    from idbroker.release.gate import ReleaseGate
    from idbroker.release.policies import policy_for
    from idbroker.sources.importer import run_import

    settings = get_settings()
    engine = make_engine(database_url)
    upgrade(engine)
    generate_campus(people=200, seed=7, out_dir=workdir / "campus")
    for source in ("student", "hr"):
        with Session(engine) as session:
            run_import(session, source=source, location=str(workdir / "campus" / f"{source}.csv"),
                       settings=settings, actor="bench")  # fmt: skip
            session.commit()
    with Session(engine, expire_on_commit=False) as session:
        app = registry.register(session, settings.policies_dir, client_id="bench", name="bench",
                                redirect_uris=["https://bench.example.edu/cb"], actor="bench").app  # fmt: skip
        person = people_by_number(session, "1120101234")[0].id
        grant = new_grant(session, client_id="bench", person_id=person, scope="openid profile",
                          auth_time=utcnow(), session_id=None)  # fmt: skip
        hour = int(timedelta(hours=2).total_seconds())
        person_token = new_token(session, kind="access", client_id="bench", grant_id=grant.id,
                                 scope="openid profile", lifetime_seconds=hour)  # fmt: skip
        app_token = new_token(session, kind="access", client_id="bench", grant_id=None, scope="people",
                              lifetime_seconds=hour)  # fmt: skip
        sub = ReleaseGate(settings).release(session, app, policy_for(settings.policies_dir, "bench"), person,
                                            wanted=None, via="resolve").sub  # fmt: skip
        session.commit()
    engine.dispose()
    return {"person_token": person_token.value, "app_token": app_token.value, "sub": sub}


SERVER_PIDS: dict[str, int] = {}  # url → pid of the uvicorn process serving it


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def served(
    target: str, port: int, env: dict[str, str], *, factory: bool = False, app_dir: str | None = None
) -> Iterator[str]:
    command = [PY, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--log-level", "warning", "--no-access-log"]  # fmt: skip
    if factory:
        command.append("--factory")
    if app_dir:
        command += ["--app-dir", app_dir]
    process = subprocess.Popen(command, env={**os.environ, **env}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    SERVER_PIDS[url] = process.pid
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/", timeout=1).status_code < 600:
                    break
            time.sleep(0.1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def wrk(url: str, seconds: int, headers: dict[str, str]) -> tuple[float, float]:
    """Requests per second at saturation, and the server's CPU milliseconds per request meanwhile."""
    pid = next(pid for base, pid in SERVER_PIDS.items() if url.startswith(base + "/"))
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", url]
    for name, value in headers.items():
        command[1:1] = ["-H", f"{name}: {value}"]
    before = cpu_seconds(pid)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - before
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} failed responses from {url}:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), 1000 * cpu / max(1, requests)  # type: ignore[union-attr]


def hey(url: str, seconds: int, rate: float, headers: dict[str, str]) -> dict[str, float]:
    per_worker = max(1, round(rate / HEY_WORKERS))
    command = ["hey", "-z", f"{seconds}s", "-c", str(HEY_WORKERS), "-q", str(per_worker)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    statuses = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
    if set(statuses) != {"200"}:
        raise SystemExit(f"hey saw statuses {statuses} from {url}")

    def percentile(p: int) -> float:
        return float(re.search(rf"{p}%% in ([\d.]+) secs".replace("%%", "%"), out).group(1)) * 1000  # type: ignore[union-attr]

    achieved = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"offered": per_worker * HEY_WORKERS, "achieved": achieved, "p50": percentile(50), "p99": percentile(99)}


def audit_events(database_url: str) -> int:
    from sqlalchemy import func, select

    from idbroker.audit.models import AuditEvent
    from idbroker.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "release")
                ).scalar_one()
            )
    finally:
        engine.dispose()


def run_backend(name: str, database_url: str, workdir: Path, seconds: int) -> dict[str, object]:
    policies = workdir / "policies"
    shutil.copytree(ROOT / "policies", policies)
    (policies / "apps" / "bench.yaml").write_text(POLICY, encoding="utf-8")
    env = {
        "IDBROKER_DATABASE_URL": database_url,
        "IDBROKER_POLICIES_DIR": str(policies),
        "IDBROKER_NATIONAL_ID_HASH_KEY": key(),
        "IDBROKER_ENCRYPTION_KEY": key(),
        "IDBROKER_PUBLIC_URL": "http://127.0.0.1",
    }
    made = prepare(database_url, workdir, env)
    person = {"Authorization": f"Bearer {made['person_token']}"}
    app = {"Authorization": f"Bearer {made['app_token']}"}
    results: dict[str, object] = {"backend": name}
    with served("oidc_bare_app:app", free_port(), {}, app_dir=str(ROOT / "bench")) as bare_url:
        bare = bare_url + "/bare"
        results["bare_rps"], results["bare_cpu_ms"] = bare_rps, _ = wrk(bare, seconds, {})
        rate = 0.25 * bare_rps
        results["bare_fixed"] = hey(bare, seconds, rate, {})
    before = audit_events(database_url)
    with served("idbroker.web.app:create_app", free_port(), env, factory=True) as url:
        endpoints = {"userinfo": (url + "/oidc/userinfo", person),
                     "resolve": (f"{url}/api/apps/v1/people/{made['sub']}", app)}  # fmt: skip
        for label, (target, headers) in endpoints.items():
            body = httpx.get(target, headers=headers, timeout=10).json()
            assert set(body) == {"sub", "nickname", "name"}, body
            results[f"{label}_rps"], results[f"{label}_cpu_ms"] = wrk(target, seconds, headers)
            results[f"{label}_fixed"] = hey(target, seconds, rate, headers)
    results["audit_events_written"] = audit_events(database_url) - before
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    for tool in ("wrk", "hey"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: apt-get install {tool}")
    print(f"cores: {os.cpu_count()}, wrk -c{CONNECTIONS}, hey -c{HEY_WORKERS}, {args.seconds}s each")
    all_results = []
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix=f"idbroker-bench-{backend}-") as tmp:
            workdir = Path(tmp)
            if backend == "sqlite":
                all_results.append(run_backend(backend, f"sqlite:///{workdir / 'bench.db'}", workdir, args.seconds))
                continue
            from services import postgres

            cluster = postgres.start_cluster()
            try:
                cluster.create_database("bench")
                all_results.append(run_backend(backend, cluster.url("bench"), workdir, args.seconds))
            finally:
                postgres.remove_cluster(cluster)
    for r in all_results:
        bare = float(r["bare_rps"])  # type: ignore[arg-type]
        print(f"\n{r['backend']}: bare endpoint {bare:.0f} req/s, server CPU {r['bare_cpu_ms']:.3f} ms a request; "
              f"fixed rate {r['bare_fixed']['offered']} req/s "  # type: ignore[index]
              f"(25 %): bare p50 {r['bare_fixed']['p50']:.1f} ms p99 {r['bare_fixed']['p99']:.1f} ms")  # type: ignore[index]  # fmt: skip
        for label in ("userinfo", "resolve"):
            rps = float(r[f"{label}_rps"])  # type: ignore[arg-type]
            fixed = r[f"{label}_fixed"]
            print(f"  {label:9} {rps:7.0f} req/s = {100 * rps / bare:3.0f} % of bare (target ≥ 50 %), "
                  f"server CPU {r[f'{label}_cpu_ms']:.3f} ms a request; "
                  f"at {fixed['offered']} req/s: p50 {fixed['p50']:.1f} ms, p99 {fixed['p99']:.1f} ms "  # type: ignore[index]
                  f"(target ≤ 25 ms), achieved {fixed['achieved']:.0f} req/s")  # type: ignore[index]  # fmt: skip
        print(f"  audit events written: {r['audit_events_written']}")
    print("\n" + json.dumps(all_results, indent=1))


if __name__ == "__main__":
    main()
