"""The production mix (issue 7): PostgreSQL, `idbroker serve --workers 2`, `idbroker worker`, and a fixed-rate
mixed load from a separate process, beside a bare FastAPI baseline driven the same way in the same run.

    .venv/bin/python bench/mixed_load.py [--minutes 10] [--rate 100] [--connections 64] [--workers 2]
                                         [--people 3000] [--baseline-seconds 60]

What it does, in order:
1. a throwaway PostgreSQL cluster (Debian's, started like the test suite's, but durable: fsync and synchronous
   commit on, as `bench/wecom_callbacks.py` starts it), migrated;
2. a generated campus of `--people` people (`idbroker/demo/campus.py`; student, HR, CAS and billing exports,
   imported and linked), an app `bench` whose policy allows pseudonym, nickname, name, affiliation and
   department, its pseudonym of every person (as if each had signed in once), a client-credentials token for
   resolve and a person's access token for 1,000 people for userinfo, a WeChat Work member for every person,
   the callback settings, and one helpdesk member (the campus's example teacher) signed in;
3. every request of the run precomputed into a file: resolve 70 % (`GET /api/apps/v1/people/{sub}`, cycling
   through every person), userinfo 20 % (`GET /oidc/userinfo`, cycling through the 1,000 tokens), WeChat Work
   callbacks 9 % (`POST /wecom/callback`, each a distinct event encrypted and signed by wechatpy, an
   independent implementation, so each is stored and processed), contact updates 1 % (the helpdesk's
   `POST /helpdesk/people/{id}/contacts` form with its session cookie and CSRF token: a new mobile number
   for a different person each time, with the ticket as the reason). The kinds are interleaved at random
   (seeded) in exact proportions in every block of 100;
4. the baseline: a bare FastAPI app answering the same four routes with a fixed body and no database
   (`bare_app` below), under `uvicorn --workers <workers>`, driven by the load generator for
   `--baseline-seconds` at the same rate;
5. the broker: `idbroker serve --workers <workers>` and `idbroker worker` as their own processes; the load
   generator (this file with `--load`, its own process) offers `--rate` requests a second for `--minutes`,
   open loop: request i is due at start + i / rate whatever happened to the ones before, over at most
   `--connections` keep-alive connections. Latency is measured from when a request was due (so a slow
   answer that delays the next ones is counted, not hidden), and the generator's own lateness is reported;
6. afterwards: the callbacks the broker acknowledged vs stored vs processed (the worker is given up to a
   minute to drain), the release audit events vs the 200s of resolve and userinfo, the helpdesk corrections
   audited, the RSS of each API worker process and of the worker (idle before the load, then every 30 s;
   growth is judged from the first minute's sample, after the warm-up, to the end), p50/p99 per minute of
   the run (a drift would show), the CPU seconds the API workers, the worker and PostgreSQL spent, what
   PostgreSQL logged meanwhile (statements over 250 ms, lock waits over 250 ms, errors, checkpoints), the
   servers' log lines at warning level or above (the logs are kept in bench/out/mixed_load/), and
   `idbroker audit verify`.

Nothing is asserted: the figures are printed as a table, then as JSON. Needs Debian's postgresql.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# At module level: FastAPI reads the routes' annotations (strings here) from the module's globals.
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV_BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(BENCH))  # the callback encryption and the durable cluster of bench/wecom_callbacks.py

KINDS = ("resolve", "userinfo", "callback", "contact")
MIX = {"resolve": 70, "userinfo": 20, "callback": 9, "contact": 1}  # per block of 100 requests
USERINFO_PEOPLE = 1000
CLIENT_ID = "bench"
POLICY = "client_id: bench\npurpose: 基准测试：混合负载\nclaims: [pseudonym, nickname, name, affiliation, department]\n"
HELPDESK_UID = "6120170032"  # the generated campus's example teacher 张帅
RSS_EVERY_SECONDS = 30
DRAIN_SECONDS = 60
SLOW_STATEMENT_MS = 250  # PostgreSQL logs statements slower than this during the run
WINDOW_SECONDS = 60  # latency is also reported per window of the run, to show a drift
KEEP_ALIVE_SECONDS = 4.0  # the generator reuses a connection idle for less than this (uvicorn closes at 5 s)


def key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- preparing the database (this process) -------------------------------------------------------------------


@dataclass
class Prepared:
    subs: list[str]  # the app's pseudonym of every person
    person_tokens: list[str]  # access tokens of USERINFO_PEOPLE people
    app_token: str  # client credentials
    userids: list[str]  # WeChat Work members
    helpdesk_cookie: str
    correctable: list[str]  # person IDs for the helpdesk's corrections


def environment(database_url: str, workdir: Path) -> dict[str, str]:
    from wecom_callbacks import AES_KEY, CORP, TOKEN

    policies = workdir / "policies"
    shutil.copytree(ROOT / "policies", policies)
    (policies / "apps" / f"{CLIENT_ID}.yaml").write_text(POLICY, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDBROKER_")}
    env.update(
        {
            "IDBROKER_DATABASE_URL": database_url,
            "IDBROKER_POLICIES_DIR": str(policies),
            "IDBROKER_NATIONAL_ID_HASH_KEY": key(),
            "IDBROKER_ENCRYPTION_KEY": key(),
            "IDBROKER_PUBLIC_URL": "http://127.0.0.1",
            "IDBROKER_WECOM_CORP_ID": CORP,
            "IDBROKER_WECOM_CONTACTS_SECRET": "unused",
            "IDBROKER_WECOM_CALLBACK_TOKEN": TOKEN,
            "IDBROKER_WECOM_ENCODING_AES_KEY": AES_KEY,
            "IDBROKER_WECOM_API_BASE": "http://127.0.0.1:9/cgi-bin/",  # nothing here may call out
        }
    )
    return env


def prepare(database_url: str, workdir: Path, env: dict[str, str], people: int, lifetime: int) -> Prepared:
    """Migrate, import a campus, register the app, issue pseudonyms and tokens, members, a helpdesk session."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("IDBROKER_")})
    from idbroker.config import get_settings

    get_settings.cache_clear()
    from sqlalchemy import insert, select
    from sqlmodel import Session

    from idbroker.clock import utcnow
    from idbroker.db import make_engine
    from idbroker.demo.campus import generate_campus
    from idbroker.directory.models import Person
    from idbroker.directory.protect import Protector
    from idbroker.directory.queries import people_by_number
    from idbroker.migrate import upgrade
    from idbroker.oidc.rfc6749.tokens import new_grant, new_token
    from idbroker.release import registry
    from idbroker.release.pseudonyms import Pseudonyms
    from idbroker.sources.importer import run_import
    from idbroker.staff.roles import grant
    from idbroker.web.session import open_session
    from idbroker.wecom.state import WeComMember
    from idbroker.wecom.userid import userid_for

    settings = get_settings()
    engine = make_engine(database_url)
    upgrade(engine)
    generate_campus(people=people, seed=7, out_dir=workdir / "campus")
    for source in ("student", "hr", "cas", "billing"):
        with Session(engine) as session:
            run_import(
                session,
                source=source,
                location=str(workdir / "campus" / f"{source}.csv"),
                settings=settings,
                actor="bench",
            )
            session.commit()
    now = utcnow()
    with Session(engine, expire_on_commit=False) as session:
        app = registry.register(
            session,
            settings.policies_dir,
            client_id=CLIENT_ID,
            name="bench",
            redirect_uris=["https://bench.example.edu/cb"],
            actor="bench",
        ).app
        person_ids = list(session.scalars(select(Person.id).where(Person.state == "active").order_by(Person.id)))
        pseudonyms = Pseudonyms(settings)
        subs = [pseudonyms.own(session, app.sector, person) for person in person_ids]
        person_tokens = []
        for person in person_ids[:USERINFO_PEOPLE]:
            made = new_grant(
                session, client_id=CLIENT_ID, person_id=person, scope="openid profile", auth_time=now, session_id=None
            )
            person_tokens.append(
                new_token(
                    session,
                    kind="access",
                    client_id=CLIENT_ID,
                    grant_id=made.id,
                    scope="openid profile",
                    lifetime_seconds=lifetime,
                ).value
            )
        app_token = new_token(
            session, kind="access", client_id=CLIENT_ID, grant_id=None, scope="people", lifetime_seconds=lifetime
        ).value
        hash_key = Protector.from_settings(settings).hash_key
        userids = [userid_for(hash_key, person) for person in person_ids]
        members = [
            {
                "userid": u,
                "person_id": p,
                "in_corp": True,
                "departments": [101],
                "enabled": True,
                "retired": False,
                "followed": False,
                "created_at": now,
            }
            for u, p in zip(userids, person_ids, strict=True)
        ]
        session.execute(insert(WeComMember), members)
        grant(session, HELPDESK_UID, "helpdesk", actor="bench")
        staff = people_by_number(session, HELPDESK_UID)[0].id
        cookie = open_session(session, settings, person_id=staff, uid=HELPDESK_UID, auth_time=now)
        session.commit()
    engine.dispose()
    correctable = [p for p in person_ids if p != staff]
    random.Random(11).shuffle(correctable)
    return Prepared(subs, person_tokens, app_token, userids, cookie, correctable)


# --- the requests ----------------------------------------------------------------------------------------------


def kinds_in_order(total: int, seed: int = 3) -> list[str]:
    """`total` kinds, every block of 100 holding exactly MIX of each, shuffled within the block."""
    rng = random.Random(seed)
    block = [kind for kind, share in MIX.items() for _ in range(share)]
    order: list[str] = []
    while len(order) < total:
        rng.shuffle(block)
        order.extend(block)
    return order[:total]


def http_request(method: str, target: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def build_requests(prepared: Prepared, total: int) -> list[tuple[str, bytes]]:
    """Every request of the run, in order: distinct callbacks and corrections, cycling reads."""
    from wecom_callbacks import encrypt_all

    from idbroker.web.csrf import token_for

    order = kinds_in_order(total)
    counts = {kind: order.count(kind) for kind in KINDS}
    if counts["contact"] > len(prepared.correctable):
        raise SystemExit(f"{counts['contact']} contact updates need as many people: raise --people")
    callbacks, _ = encrypt_all(counts["callback"], 0.0, prepared.userids)
    numbers: set[str] = set()
    rng = random.Random(13)
    while len(numbers) < counts["contact"]:
        numbers.add(f"199{rng.randrange(10**8):08d}")
    csrf = token_for(prepared.helpdesk_cookie)
    corrections = []
    for n, (person, number) in enumerate(zip(prepared.correctable, sorted(numbers), strict=False)):
        form = urllib.parse.urlencode(
            {"kind": "phone", "value": number, "reason": f"工单 HD-{n:06d}：本人来电确认", "csrf_token": csrf}
        ).encode()
        headers = {
            "Cookie": f"idb_session={prepared.helpdesk_cookie}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        corrections.append(http_request("POST", f"/helpdesk/people/{person}/contacts", headers, form))
    app = {"Authorization": f"Bearer {prepared.app_token}"}
    used = dict.fromkeys(KINDS, 0)
    requests: list[tuple[str, bytes]] = []
    for kind in order:
        n = used[kind]
        used[kind] += 1
        if kind == "resolve":
            sub = prepared.subs[n % len(prepared.subs)]
            requests.append((kind, http_request("GET", f"/api/apps/v1/people/{sub}", app)))
        elif kind == "userinfo":
            token = prepared.person_tokens[n % len(prepared.person_tokens)]
            requests.append((kind, http_request("GET", "/oidc/userinfo", {"Authorization": f"Bearer {token}"})))
        elif kind == "callback":
            query, body = callbacks[n]
            headers = {"Content-Type": "text/xml"}
            requests.append((kind, http_request("POST", f"/wecom/callback?{query}", headers, body)))
        else:
            requests.append((kind, corrections[n]))
    return requests


def write_requests(path: Path, requests: list[tuple[str, bytes]]) -> None:
    with path.open("w", encoding="ascii") as out:
        for kind, raw in requests:
            out.write(json.dumps([kind, base64.b64encode(raw).decode()]) + "\n")


def read_requests(path: Path) -> list[tuple[str, bytes]]:
    with path.open(encoding="ascii") as source:
        return [(kind, base64.b64decode(raw)) for kind, raw in map(json.loads, source)]


# --- the load generator (its own process) --------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection (a minimal client: the generator must not be what limits the figures)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = 0  # requests answered on it
        self.idle_since = time.perf_counter()

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def exchange(self, request: bytes) -> tuple[int, bool]:
        """Send one request, read its whole response: (status, whether the server keeps the connection)."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        self.used += 1
        self.idle_since = time.perf_counter()
        return status, headers.get("connection") != "close"

    def close(self) -> None:
        self.writer.close()


TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError)


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    statuses: dict[str, dict[str, int]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    late: list[float] = field(default_factory=list)  # how late the generator itself dispatched each request
    resent: int = 0  # requests sent again on a new connection after a kept-alive one turned out closed
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (due, seconds after start; latency)


async def drive(port: int, requests: list[tuple[str, bytes]], rate: float, connections: int) -> dict[str, Any]:
    """Offer `requests` at `rate` a second, open loop, over at most `connections` connections.

    Like any HTTP client, a kept-alive connection idle for longer than the server keeps it (uvicorn: 5 s) is
    not reused, and a request whose reused connection closes before any answer is sent once more on a new one."""
    clock = time.perf_counter  # uvloop's loop.time() counts whole milliseconds
    idle: list[Connection] = []
    freed = asyncio.Condition()
    opened = 0
    tally = Tally()

    async def connection() -> Connection:
        nonlocal opened
        async with freed:
            while True:
                while idle:
                    conn = idle.pop()  # the most recently used
                    if clock() - conn.idle_since < KEEP_ALIVE_SECONDS:
                        return conn
                    conn.close()
                    opened -= 1
                if opened < connections:
                    opened += 1
                    break
                await freed.wait()
        try:
            return await Connection.open(port)
        except OSError:
            opened -= 1
            raise

    async def release(conn: Connection, keep: bool) -> None:
        nonlocal opened
        if keep:
            idle.append(conn)
        else:
            conn.close()
            opened -= 1
        async with freed:
            freed.notify()

    async def one(kind: str, request: bytes, due: float) -> None:
        status = "transport"
        for _attempt in range(2):
            try:
                conn = await connection()
            except OSError:
                break
            reused = conn.used > 0
            try:
                code, keep = await conn.exchange(request)
            except TRANSPORT_ERRORS:
                await release(conn, False)
                if reused:  # closed by the server while idle: send again, on a new connection
                    tally.resent += 1
                    continue
                break
            status = str(code)
            await release(conn, keep)
            break
        tally.latencies[kind].append(clock() - due)
        tally.timeline.append((due - start, clock() - due))
        tally.statuses[kind][status] = tally.statuses[kind].get(status, 0) + 1

    loop = asyncio.get_running_loop()
    tasks = []
    start = clock() + 0.2
    for i, (kind, request) in enumerate(requests):
        due = start + i / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tally.late.append(max(0.0, clock() - due))
        tasks.append(loop.create_task(one(kind, request, due)))
    await asyncio.gather(*tasks)
    elapsed = clock() - start
    for conn in idle:
        conn.close()
    return summarise(tally, elapsed, rate, opened)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def summarise(tally: Tally, elapsed: float, rate: float, connections: int) -> dict[str, Any]:
    kinds = {}
    for kind in KINDS:
        values = tally.latencies[kind]
        kinds[kind] = {
            "requests": len(values),
            "per_second": len(values) / elapsed,
            "p50_ms": percentile(values, 0.50) * 1000,
            "p99_ms": percentile(values, 0.99) * 1000,
            "max_ms": max(values, default=float("nan")) * 1000,
            "statuses": tally.statuses[kind],
        }
    total = sum(len(v) for v in tally.latencies.values())
    every = [value for values in tally.latencies.values() for value in values]
    windows: dict[int, list[float]] = {}
    for due, latency in tally.timeline:
        windows.setdefault(int(due // WINDOW_SECONDS), []).append(latency)
    timeline = [
        {"from_s": n * WINDOW_SECONDS, "p50_ms": percentile(v, 0.50) * 1000, "p99_ms": percentile(v, 0.99) * 1000}
        for n, v in sorted(windows.items())
    ]
    return {
        "offered_per_second": rate,
        "timeline": timeline,
        "seconds": elapsed,
        "requests": total,
        "per_second": total / elapsed,
        "p50_ms": percentile(every, 0.50) * 1000,
        "p99_ms": percentile(every, 0.99) * 1000,
        "kinds": kinds,
        "generator_late_p99_ms": percentile(tally.late, 0.99) * 1000,
        "generator_late_max_ms": max(tally.late, default=0.0) * 1000,
        "connections_open_at_end": connections,
        "resent_after_idle_close": tally.resent,
    }


def load_main(args: argparse.Namespace) -> None:
    requests = read_requests(Path(args.requests))
    if args.count:
        requests = requests[: args.count]
    try:
        import uvloop

        result = uvloop.run(drive(args.port, requests, args.rate, args.connections))
    except ImportError:
        result = asyncio.run(drive(args.port, requests, args.rate, args.connections))
    Path(args.out).write_text(json.dumps(result), encoding="utf-8")


# --- the baseline: the same four routes, bare ------------------------------------------------------------------


def bare_app() -> Any:
    """A FastAPI app answering the mix's four routes with fixed bodies and no database (uvicorn --factory)."""
    app = FastAPI()
    claims = {"sub": "7rpom6ogiu6qitncy6pjmxdoiw7dvd23", "nickname": "从容的喜鹊4146", "name": "基准"}

    @app.get("/health/live")
    def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/apps/v1/people/{pseudonym}")
    def resolve(pseudonym: str) -> dict[str, str]:
        return {**claims, "sub": pseudonym}

    @app.get("/oidc/userinfo")
    def userinfo() -> dict[str, str]:
        return claims

    @app.post("/wecom/callback")
    async def callback(request: Request) -> Response:
        await request.body()
        return Response(status_code=200)

    @app.post("/helpdesk/people/{person_id}/contacts", response_class=HTMLResponse)
    async def correct(request: Request, person_id: str) -> str:
        await request.form()
        return "<!doctype html><title>done</title><p>corrected</p>"

    return app


# --- the processes ---------------------------------------------------------------------------------------------


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


@contextlib.contextmanager
def started(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def api_workers(server_pid: int) -> list[int]:
    """The processes of `serve --workers N` that answer requests (not the supervisor, not the resource tracker)."""
    import psutil

    found = []
    for child in psutil.Process(server_pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            command = " ".join(child.cmdline())
            if "resource_tracker" not in command:
                found.append(child.pid)
    return sorted(found) or [server_pid]  # --workers 1: uvicorn serves in the process itself


def rss_mib(pids: list[int]) -> list[float]:
    import psutil

    sizes = []
    for pid in pids:
        try:
            sizes.append(psutil.Process(pid).memory_info().rss / 2**20)
        except psutil.Error:
            sizes.append(float("nan"))
    return sizes


def cpu_seconds(pids: list[int], postmaster: int | None = None) -> dict[int, float]:
    """User + system CPU seconds of each process (and of every process of the PostgreSQL cluster)."""
    import psutil

    every = list(pids)
    if postmaster is not None:
        with contextlib.suppress(psutil.Error):
            every += [postmaster, *(child.pid for child in psutil.Process(postmaster).children())]
    spent = {}
    for pid in every:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            spent[pid] = times.user + times.system
    return spent


def cpu_used(before: dict[int, float], after: dict[int, float], pids: list[int] | None = None) -> float:
    """CPU seconds spent between two `cpu_seconds` (by `pids`, else by all); a process that exited is lost."""
    return sum(after[pid] - before.get(pid, 0.0) for pid in after if pids is None or pid in pids)


def run_load(
    port: int, requests_file: Path, out: Path, args: argparse.Namespace, count: int
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        __file__,
        "--load",
        "--port",
        str(port),
        "--requests",
        str(requests_file),
        "--out",
        str(out),
        "--rate",
        str(args.rate),
        "--connections",
        str(args.connections),
        "--count",
        str(count),
    ]
    return subprocess.Popen(command)


def database_figures(database_url: str) -> dict[str, int]:
    from sqlalchemy import func, select
    from sqlmodel import Session

    from idbroker.audit.models import AuditEvent
    from idbroker.db import make_engine
    from idbroker.wecom.callbacks.intake import WeComCallback
    from idbroker.wecom.follow import WeComMemberEvent

    engine = make_engine(database_url)

    def count(query: Any) -> int:
        return int(session.scalar(query) or 0)

    with Session(engine) as session:
        callbacks = select(func.count()).select_from(WeComCallback)
        audits = select(func.count()).select_from(AuditEvent)
        figures = {
            "callbacks_stored": count(callbacks),
            "callbacks_processed": count(callbacks.where(WeComCallback.processed_at.is_not(None))),  # type: ignore[union-attr]
            "member_events": count(select(func.count()).select_from(WeComMemberEvent)),
            "release_events": count(audits.where(AuditEvent.action == "release")),
            "correction_events": count(audits.where(AuditEvent.action == "contact.helpdesk.corrected")),
            "audit_events": count(audits),
        }
    engine.dispose()
    return figures


def log_problems(log: Path) -> dict[str, Any]:
    """The lines of a server's log at level warning or above (JSON lines), and any other line that looks like
    trouble (a traceback, a plain `ERROR`, a 5xx access line)."""
    found: dict[str, list[str]] = {"error": [], "warning": []}
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    for line in text.splitlines():
        try:
            level = str(json.loads(line).get("level", "")).lower()
        except (ValueError, AttributeError):
            level = "error" if any(mark in line.lower() for mark in ("traceback", "error", "critical")) else ""
        if level in ("error", "critical", "exception"):
            found["error"].append(line)
        elif level in ("warning", "warn"):
            found["warning"].append(line)
    return {
        "errors": len(found["error"]),
        "warnings": len(found["warning"]),
        "first": found["error"][:5] + found["warning"][:5],
    }


def slow_statements(log: Path, offset: int) -> dict[str, Any]:
    """What PostgreSQL logged during the load: statements slower than SLOW_STATEMENT_MS (by kind), lock waits,
    checkpoints (with their sync time) and errors."""
    with log.open("rb") as source:
        source.seek(offset)
        text = source.read().decode("utf-8", errors="replace")
    slow: dict[str, list[float]] = {}
    figures: dict[str, Any] = {"lock_waits": 0, "checkpoints": [], "errors": {}}
    entries: list[str] = []  # a log entry is a timestamped line and its continuation lines (a statement's)
    for line in text.splitlines():
        if re.match(r"\d{4}-\d\d-\d\d ", line) or not entries:
            entries.append(line)
        else:
            entries[-1] += " " + line.strip()
    for line in entries:
        duration = re.search(r"duration: ([\d.]+) ms\s+(?:statement|execute [^:]*): (.*)", line)
        if duration:
            words = " ".join(duration.group(2).split()[:4])[:60]
            slow.setdefault(words, []).append(float(duration.group(1)))
        elif "still waiting for" in line:
            figures["lock_waits"] += 1
        elif "checkpoint complete" in line:
            figures["checkpoints"].append(" ".join(line.split("checkpoint complete:")[1].split()[:16]))
        elif error := re.search(r"\b(?:ERROR|FATAL|PANIC):\s+(.*)", line):
            figures["errors"][error.group(1)[:120]] = figures["errors"].get(error.group(1)[:120], 0) + 1
    figures["slow"] = {
        words: {"count": len(ms), "max_ms": max(ms)} for words, ms in sorted(slow.items(), key=lambda i: -len(i[1]))
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the broker is loaded")
    parser.add_argument("--rate", type=float, default=100.0, help="requests offered a second (fixed, open loop)")
    parser.add_argument("--connections", type=int, default=64, help="at most this many connections at once")
    parser.add_argument("--workers", type=int, default=2, help="API worker processes (serve --workers)")
    parser.add_argument("--people", type=int, default=3000, help="the generated campus")
    parser.add_argument("--baseline-seconds", type=float, default=60.0, help="how long the bare app is loaded")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)  # the load generator process
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--requests", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load_main(args)
        return
    if args.rate <= 0 or args.minutes <= 0 or args.connections < 1 or args.workers < 1:
        raise SystemExit("--rate, --minutes, --connections and --workers must be positive")

    from wecom_callbacks import durable_postgresql

    started_at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    workdir = Path(tempfile.mkdtemp(prefix="idbroker-mixed-"))
    cluster, database_url = durable_postgresql()
    try:
        postmaster = int((cluster.directory / "data" / "postmaster.pid").read_text().split()[0])
        with cluster.connect() as connection:  # the slow statements and lock waits, for the report
            connection.execute(f"ALTER SYSTEM SET log_min_duration_statement = {SLOW_STATEMENT_MS}")
            connection.execute("ALTER SYSTEM SET log_lock_waits = on")  # a wait longer than deadlock_timeout
            connection.execute(f"ALTER SYSTEM SET deadlock_timeout = {SLOW_STATEMENT_MS}")
            connection.execute("SELECT pg_reload_conf()")
        results = run(args, workdir, database_url, postmaster, cluster.directory / "server.log")
    finally:
        from services import postgres  # tests/ is on sys.path once durable_postgresql has run

        postgres.remove_cluster(cluster)
        shutil.rmtree(workdir, ignore_errors=True)
    results["started"] = started_at
    report(results, args)
    print("\n" + json.dumps(results, indent=1, ensure_ascii=False))


def run(args: argparse.Namespace, workdir: Path, database_url: str, postmaster: int, pg_log: Path) -> dict[str, Any]:
    seconds = args.minutes * 60
    total = int(args.rate * seconds)
    baseline_count = int(args.rate * min(args.baseline_seconds, seconds))
    env = environment(database_url, workdir)
    lifetime = int(seconds + args.baseline_seconds + 3600)
    clock = time.monotonic()
    prepared = prepare(database_url, workdir, env, args.people, lifetime)
    requests = build_requests(prepared, total)
    requests_file = workdir / "requests.jsonl"
    write_requests(requests_file, requests)
    results: dict[str, Any] = {"prepare_seconds": time.monotonic() - clock, "people": len(prepared.subs)}
    print(f"prepared in {results['prepare_seconds']:.0f} s: {len(prepared.subs)} people, {total} requests", flush=True)

    # The baseline: the bare app under the same uvicorn worker count, the same generator, the same rate.
    port = free_port()
    bare_command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "mixed_load:bare_app",
        "--app-dir",
        str(BENCH),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
    ]
    bare_env = {**env, "PYTHONPATH": str(BENCH)}
    with started(bare_command, bare_env, workdir, workdir / "bare.log") as bare:
        wait_until_up(f"http://127.0.0.1:{port}/health/live", bare)
        results["load_average_before_baseline"] = os.getloadavg()
        out = workdir / "bare.json"
        if run_load(port, requests_file, out, args, baseline_count).wait() != 0:
            raise SystemExit("the load generator failed on the baseline")
        results["baseline"] = json.loads(out.read_text())
    results["baseline_log"] = log_problems(workdir / "bare.log")

    # The broker: serve --workers N and the worker, each its own process.
    before = database_figures(database_url)
    port = free_port()
    idbroker = str(VENV_BIN / "idbroker")
    serve_command = [idbroker, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]
    with (
        started(serve_command, env, workdir, workdir / "serve.log") as server,
        started([idbroker, "worker"], env, workdir, workdir / "worker.log") as worker,
    ):
        wait_until_up(f"http://127.0.0.1:{port}/health/ready", server)
        time.sleep(2)
        pids = api_workers(server.pid)
        results["api_worker_pids"] = pids
        samples = [{"t": 0.0, "api": rss_mib(pids), "worker": rss_mib([worker.pid])[0]}]
        results["load_average_before"] = os.getloadavg()
        out = workdir / "broker.json"
        pg_log_from = pg_log.stat().st_size
        cpu_before = cpu_seconds([*pids, worker.pid], postmaster)
        load = run_load(port, requests_file, out, args, total)
        began = time.monotonic()
        next_sample = RSS_EVERY_SECONDS
        while load.poll() is None:
            time.sleep(0.5)
            if time.monotonic() - began >= next_sample:
                samples.append({"t": next_sample, "api": rss_mib(pids), "worker": rss_mib([worker.pid])[0]})
                next_sample += RSS_EVERY_SECONDS
        if load.returncode != 0:
            raise SystemExit("the load generator failed on the broker")
        samples.append({"t": time.monotonic() - began, "api": rss_mib(pids), "worker": rss_mib([worker.pid])[0]})
        results["load_average_after"] = os.getloadavg()
        cpu_after = cpu_seconds([*pids, worker.pid], postmaster)
        results["postgresql_log"] = slow_statements(pg_log, pg_log_from)
        results["cpu_seconds"] = {
            "api_workers": cpu_used(cpu_before, cpu_after, pids),
            "worker": cpu_used(cpu_before, cpu_after, [worker.pid]),
            "postgresql": cpu_used(cpu_before, cpu_after) - cpu_used(cpu_before, cpu_after, [*pids, worker.pid]),
        }
        results["broker"] = json.loads(out.read_text())
        acknowledged = results["broker"]["kinds"]["callback"]["statuses"].get("200", 0)
        deadline = time.monotonic() + DRAIN_SECONDS
        while True:
            figures = database_figures(database_url)
            drained = figures["callbacks_processed"] - before["callbacks_processed"] >= acknowledged
            if drained or time.monotonic() > deadline:
                break
            time.sleep(1)
        results["drain_seconds"] = time.monotonic() - began - samples[-1]["t"]
        results["api_workers_at_end"] = api_workers(server.pid)  # a worker that died would be replaced
    results["rss"] = samples
    results["database"] = {k: figures[k] - before[k] for k in figures}
    results["serve_log"] = log_problems(workdir / "serve.log")
    results["worker_log"] = log_problems(workdir / "worker.log")
    kept = BENCH / "out" / "mixed_load"  # the logs of the last run, for a closer look
    kept.mkdir(parents=True, exist_ok=True)
    for name in ("bare.log", "serve.log", "worker.log"):
        if (workdir / name).exists():
            shutil.copy(workdir / name, kept / name)
    verify = subprocess.run(
        [idbroker, "audit", "verify"], env=env, cwd=workdir, capture_output=True, text=True, check=False
    )
    results["audit_verify"] = {"exit": verify.returncode, "output": (verify.stdout + verify.stderr).strip()}
    return results


# --- the report ------------------------------------------------------------------------------------------------


def errors_of(statuses: dict[str, int]) -> str:
    bad = {status: n for status, n in statuses.items() if not status.startswith("2")}
    return ", ".join(f"{status}: {n}" for status, n in sorted(bad.items())) or "none"


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    broker, bare = results["broker"], results["baseline"]
    load = " ".join(f"{x:.1f}" for x in results["load_average_before"])
    print(
        f"\nmixed load, started {results['started']}: PostgreSQL (durable), {results['people']} people, "
        f"{args.workers} API workers + 1 worker, {os.cpu_count()} cores; {args.rate:g} req/s offered for "
        f"{args.minutes:g} min (baseline {args.baseline_seconds:g} s), ≤ {args.connections} connections; "
        f"load average before {load}, after {' '.join(f'{x:.1f}' for x in results['load_average_after'])}"
    )
    print(f"{'':10}{'kind':9}{'req/s':>8}{'requests':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}  errors")
    for label, run in (("bare", bare), ("broker", broker)):
        for kind in KINDS:
            k = run["kinds"][kind]
            print(
                f"{label:10}{kind:9}{k['per_second']:8.1f}{k['requests']:10d}{k['p50_ms']:9.1f}{k['p99_ms']:9.1f}"
                f"{k['max_ms']:9.1f}  {errors_of(k['statuses'])}"
            )
        print(
            f"{label:10}{'total':9}{run['per_second']:8.1f}{run['requests']:10d}{run['p50_ms']:9.1f}"
            f"{run['p99_ms']:9.1f}{'':9}  generator late p99 {run['generator_late_p99_ms']:.1f} ms, "
            f"max {run['generator_late_max_ms']:.1f} ms"
        )
    db = results["database"]
    kinds = broker["kinds"]
    ok = {kind: kinds[kind]["statuses"].get("200", 0) for kind in KINDS}
    print(
        f"callbacks: acknowledged {ok['callback']}, stored {db['callbacks_stored']}, processed "
        f"{db['callbacks_processed']} ({results['drain_seconds']:.1f} s after the load), member events "
        f"{db['member_events']}"
    )
    print(
        f"releases audited {db['release_events']} for {ok['resolve'] + ok['userinfo']} resolve + userinfo 200s; "
        f"helpdesk corrections audited {db['correction_events']} for {ok['contact']} 200s; "
        f"audit events written {db['audit_events']}"
    )
    samples = results["rss"]
    warm = next((s for s in samples if s["t"] >= 60), samples[min(1, len(samples) - 1)])
    end = samples[-1]
    for n, pid in enumerate(results["api_worker_pids"]):
        print(
            f"RSS API worker {pid}: idle {samples[0]['api'][n]:.0f} MiB, at {warm['t']:.0f} s "
            f"{warm['api'][n]:.0f} MiB, end {end['api'][n]:.0f} MiB "
            f"({100 * (end['api'][n] / warm['api'][n] - 1):+.1f} % since {warm['t']:.0f} s)"
        )
    print(
        f"RSS worker: idle {samples[0]['worker']:.0f} MiB, at {warm['t']:.0f} s {warm['worker']:.0f} MiB, "
        f"end {end['worker']:.0f} MiB ({100 * (end['worker'] / warm['worker'] - 1):+.1f} % since {warm['t']:.0f} s)"
    )
    logs = {name: results[f"{name}_log"] for name in ("serve", "worker")} | {"bare": results["baseline_log"]}
    print(
        "log lines at error / warning level: "
        + ", ".join(f"{name} {found['errors']} / {found['warnings']}" for name, found in logs.items())
        + " (bench/out/mixed_load/*.log)"
    )
    drift = ", ".join(f"{w['p50_ms']:.0f}/{w['p99_ms']:.0f}" for w in broker["timeline"])
    print(f"broker p50/p99 ms per {WINDOW_SECONDS} s of the run: {drift}")
    pg = results["postgresql_log"]
    slowest = "; ".join(
        f"{words} ×{v['count']} (max {v['max_ms']:.0f} ms)" for words, v in list(pg["slow"].items())[:4]
    )
    print(
        f"PostgreSQL during the load: {sum(v['count'] for v in pg['slow'].values())} statements over "
        f"{SLOW_STATEMENT_MS} ms{': ' + slowest if slowest else ''}; "
        f"lock waits over {SLOW_STATEMENT_MS} ms {pg['lock_waits']}; "
        f"errors {sum(pg['errors'].values())} {pg['errors'] or ''}; checkpoints {len(pg['checkpoints'])}"
    )
    cpu = results["cpu_seconds"]
    per_request = 1000 * cpu["api_workers"] / max(1, broker["requests"])
    print(
        f"CPU during the load: API workers {cpu['api_workers']:.0f} s ({per_request:.1f} ms a request), "
        f"worker {cpu['worker']:.0f} s, PostgreSQL {cpu['postgresql']:.0f} s, over {broker['seconds']:.0f} s"
    )
    print(f"audit verify (exit {results['audit_verify']['exit']}): {results['audit_verify']['output']}")


if __name__ == "__main__":
    main()
