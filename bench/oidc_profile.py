"""Where a release's time goes, in-process: no network, no load tool, one request at a time.

    .venv/bin/python bench/oidc_profile.py [--requests 300] [--backend sqlite|postgresql] [--profile DIR]

Prepares the database as `bench/oidc_load.py` does (a small generated campus, an app allowed pseudonym +
nickname + name, a person's token and an app token), then times, each `--requests` times in turn:
- `release`: the userinfo work without HTTP — token lookup, policy, the gate (pseudonym, claims, audit), commit;
- the ASGI stack called directly (no sockets, no uvicorn): the bare FastAPI endpoint (`bench/oidc_bare_app.py`),
  the broker's `/health/live`, `/oidc/userinfo` and `GET /api/apps/v1/people/{sub}`.
Prints wall and CPU time per request for each; with `--profile DIR` also writes a cProfile dump per step
(`python -m pstats DIR/<step>.prof`, or `snakeviz`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests"))

from oidc_load import POLICY, key, prepare  # noqa: E402 (bench/ on the path first)


async def call(app: Any, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One GET through the ASGI app, as uvicorn would hand it over."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")] + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    status = 0
    body = bytearray()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, bytes(body)


def timed(label: str, count: int, step: Callable[[], None], profile_dir: Path | None) -> tuple[float, float]:
    for _ in range(min(20, count)):  # warm up: caches, compiled statements, pools
        step()
    profiler = cProfile.Profile() if profile_dir else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    for _ in range(count):
        step()
    if profiler:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if profiler and profile_dir:
        profiler.dump_stats(str(profile_dir / f"{label}.prof"))
    return 1000 * wall / count, 1000 * cpu / count


def run(database_url: str, workdir: Path, count: int, profile_dir: Path | None) -> None:
    import shutil

    policies = workdir / "policies"
    shutil.copytree(ROOT.parent / "policies", policies)
    (policies / "apps" / "bench.yaml").write_text(POLICY, encoding="utf-8")
    env = {
        "IDBROKER_DATABASE_URL": database_url,
        "IDBROKER_POLICIES_DIR": str(policies),
        "IDBROKER_NATIONAL_ID_HASH_KEY": key(),
        "IDBROKER_ENCRYPTION_KEY": key(),
        "IDBROKER_PUBLIC_URL": "http://127.0.0.1",
    }
    made = prepare(database_url, workdir, env)
    os.environ.update(env)

    from sqlmodel import Session

    from idbroker.config import get_settings
    from idbroker.db import make_engine
    from idbroker.oidc.provider import Provider
    from idbroker.oidc.userinfo import userinfo
    from idbroker.web.app import create_app

    get_settings.cache_clear()
    settings = get_settings()
    engine = make_engine(database_url)
    provider = Provider.create(engine, settings)

    def release() -> None:
        with Session(engine, expire_on_commit=False) as session:
            claims = userinfo(session, provider, made["person_token"])
            session.commit()
        assert claims["name"]

    import oidc_bare_app

    broker = create_app(settings)
    loop = asyncio.new_event_loop()
    person = {"Authorization": f"Bearer {made['person_token']}"}
    app_token = {"Authorization": f"Bearer {made['app_token']}"}

    def asgi(app: Any, path: str, headers: dict[str, str]) -> Callable[[], None]:
        def step() -> None:
            status, body = loop.run_until_complete(call(app, path, headers))
            assert status == 200, (path, status, body[:300])

        return step

    steps = {
        "release": release,
        "bare": asgi(oidc_bare_app.app, "/bare", {}),
        "health_live": asgi(broker, "/health/live", {}),
        "userinfo": asgi(broker, "/oidc/userinfo", person),
        "resolve": asgi(broker, f"/api/apps/v1/people/{made['sub']}", app_token),
    }
    print(f"{count} requests each, one at a time, in-process ({engine.dialect.name})")
    for label, step in steps.items():
        wall, cpu = timed(label, count, step, profile_dir)
        print(f"  {label:12} wall {wall:6.3f} ms  cpu {cpu:6.3f} ms per request")
    loop.close()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile dump per step here")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="idbroker-profile-") as tmp:
        workdir = Path(tmp)
        if args.backend == "sqlite":
            run(f"sqlite:///{workdir / 'bench.db'}", workdir, args.requests, args.profile)
            return
        from services import postgres

        cluster = postgres.start_cluster()
        try:
            cluster.create_database("bench")
            run(cluster.url("bench"), workdir, args.requests, args.profile)
        finally:
            postgres.remove_cluster(cluster)


if __name__ == "__main__":
    main()
