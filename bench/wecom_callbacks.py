"""A burst of WeChat Work callbacks: 50,000 encrypted callbacks at 500 concurrent connections.

    .venv/bin/python bench/wecom_callbacks.py [--callbacks 50000] [--concurrency 500] [--retries 0.1]

Three processes beside this one, as in production: the broker (`create_app` under uvicorn, one process), the
worker (`idbroker worker --queue wecom.callbacks`) and the load generator, which encrypts every callback with
wechatpy (an independent implementation) before the clock starts, then sends them. A share of the sends
(`--retries`) repeat an earlier callback — the same request again, or the same event re-encrypted — as WeChat
Work's retries and replays do. Figures: every answer's status and latency (p50, p99, max), throughput, and
afterwards what the database holds: distinct events stored, processed, member events applied (each at most
once: a unique key per callback) and when the last one was processed. The baseline, in the same run against
the same server process: a bare FastAPI endpoint doing nothing (`POST /bench/noop`), the same requests.
The database is SQLite (WAL) unless `--database-url` says otherwise. Nothing is asserted: figures are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORP = "wwbench0000000001"
TOKEN = "benchToken01"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
MEMBERS = 5000


def server_app() -> Any:
    """The broker's app plus the baseline: a bare endpoint that does nothing (uvicorn --factory)."""
    from fastapi import Response

    from idbroker.web.app import create_app

    app = create_app()

    @app.post("/bench/noop", include_in_schema=False)
    async def noop() -> Response:
        return Response(status_code=200)

    # Matched as early as the callback route (routes are tried in order), so the two compare fairly.
    app.router.routes.insert(1, app.router.routes.pop())
    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(database_url: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDBROKER_")}
    env.update(
        {
            "IDBROKER_DATABASE_URL": database_url,
            "IDBROKER_POLICIES_DIR": str(ROOT / "policies"),
            "IDBROKER_NATIONAL_ID_HASH_KEY": "YmVuY2gtb25seS1oYXNoLWtleS1ub3QtYS1zZWNyZXQtMDE",
            "IDBROKER_ENCRYPTION_KEY": "YmVuY2gtb25seS1lbmMta2V5LW5vdC1hLXNlY3JldC0wMDAx",
            "IDBROKER_WECOM_CORP_ID": CORP,
            "IDBROKER_WECOM_CONTACTS_SECRET": "unused",
            "IDBROKER_WECOM_CALLBACK_TOKEN": TOKEN,
            "IDBROKER_WECOM_ENCODING_AES_KEY": AES_KEY,
            "IDBROKER_MAX_REQUEST_BYTES": str(1024 * 1024),
        }
    )
    return env


def prepare_database(database_url: str) -> list[str]:
    """A migrated database with MEMBERS members the callbacks are about."""
    from sqlalchemy import insert
    from sqlmodel import Session

    from idbroker.clock import utcnow
    from idbroker.db import make_engine
    from idbroker.directory.ids import new_person_id
    from idbroker.directory.models import Person
    from idbroker.migrate import upgrade
    from idbroker.wecom.state import WeComMember

    engine = make_engine(database_url)
    upgrade(engine)
    now = utcnow()
    people = [new_person_id() for _ in range(MEMBERS)]
    userids = [f"wx-bench{n:06d}" for n in range(MEMBERS)]
    with Session(engine) as session:
        session.execute(
            insert(Person), [{"id": p, "state": "active", "created_at": now, "updated_at": now} for p in people]
        )
        session.execute(
            insert(WeComMember),
            [
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
                for u, p in zip(userids, people, strict=True)
            ],
        )
        session.commit()
    engine.dispose()
    return userids


# --- the load generator (its own process) ------------------------------------------------------------------


def event_xml(n: int, userid: str) -> str:
    """Distinct events: follows and unfollows at their own times, and change_contact events that share one
    second and FromUserName `sys` (the documented dedupe key would collapse them)."""
    if n % 3 == 2:
        return (
            f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
            "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[change_contact]]></Event><ChangeType>update_user</ChangeType>"
            f"<UserID><![CDATA[{userid}]]></UserID><Department><![CDATA[101]]></Department><Seq>{n}</Seq></xml>"
        )
    event = "subscribe" if n % 3 == 0 else "unsubscribe"
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[{userid}]]></FromUserName>"
        f"<CreateTime>{1_700_000_000 + n}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><AgentID>1000002</AgentID></xml>"
    )


def encrypt_all(
    total: int, retry_share: float, userids: list[str], seed: int = 5
) -> tuple[list[tuple[str, bytes]], int]:
    from wechatpy.enterprise.crypto import WeChatCrypto

    crypto = WeChatCrypto(TOKEN, AES_KEY, CORP)
    rng = random.Random(seed)
    distinct = int(total * (1 - retry_share))
    requests: list[tuple[str, bytes]] = []
    xmls: list[str] = []
    for n in range(total):
        if n < distinct:
            xml = event_xml(n, userids[n % len(userids)])
        else:
            earlier = rng.randrange(len(requests))
            xml = xmls[earlier]
            if rng.random() < 0.5:  # a retry: the very same request again
                requests.append(requests[earlier])
                xmls.append(xml)
                continue
            # else a replay: the same event, encrypted anew
        xmls.append(xml)
        nonce, timestamp = str(rng.randrange(10**9)), str(1_700_000_000 + n)
        envelope = crypto.encrypt_message(xml, nonce, timestamp)
        encrypt = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]>", envelope).group(1)  # type: ignore[union-attr]
        signature = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]>", envelope).group(1)  # type: ignore[union-attr]
        query = f"msg_signature={signature}&timestamp={timestamp}&nonce={nonce}"
        body = (
            f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            "<AgentID><![CDATA[1000002]]></AgentID></xml>"
        )
        requests.append((query, body.encode()))
    # Retries come after what they repeat, spread through the second half of the burst.
    head, tail = requests[: distinct // 2], requests[distinct // 2 :]
    rng.shuffle(tail)
    return head + tail, distinct


async def _connection(
    host: str,
    port: int,
    path: str,
    queue: asyncio.Queue[tuple[str, bytes]],
    latencies: list[float],
    statuses: dict[int, int],
) -> int:
    """One keep-alive HTTP/1.1 connection taking requests from the queue; returns its transport failures."""
    failures = 0
    reader, writer = await asyncio.open_connection(host, port)
    while True:
        try:
            query, body = queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        request = (
            f"POST {path}?{query} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        started = time.perf_counter()
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            if length:
                await reader.readexactly(length)
            statuses[status] = statuses.get(status, 0) + 1
        except (OSError, asyncio.IncompleteReadError, ValueError, AttributeError):
            failures += 1
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
        latencies.append(time.perf_counter() - started)
    writer.close()
    return failures


async def send_all(url: str, requests: list[tuple[str, bytes]], concurrency: int) -> dict[str, Any]:
    """Send every request over `concurrency` connections at once (a minimal HTTP/1.1 client: the load
    generator must not be what limits the figures)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    started = time.perf_counter()
    failures = await asyncio.gather(
        *(
            _connection(parts.hostname or "127.0.0.1", parts.port or 80, parts.path, queue, latencies, statuses)
            for _ in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(requests),
        "seconds": elapsed,
        "per_second": len(requests) / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
        "max": latencies[-1],
        "over_5s": sum(1 for value in latencies if value > 5),
        "statuses": statuses,
        "transport_failures": sum(failures),
        "started_at": time.time() - elapsed,
    }


def load_main(args: argparse.Namespace) -> None:
    userids = [f"wx-bench{n:06d}" for n in range(MEMBERS)]
    requests, distinct = encrypt_all(args.callbacks, args.retries, userids)
    ready = time.time()
    results: dict[str, Any] = {"distinct": distinct, "encrypted_in": ready}
    results["noop"] = asyncio.run(send_all(f"{args.base}/bench/noop", requests, args.concurrency))
    results["callbacks"] = asyncio.run(send_all(f"{args.base}/wecom/callback", requests, args.concurrency))
    Path(args.out).write_text(json.dumps(results))


# --- the orchestra -------------------------------------------------------------------------------------------


def wait_until_up(url: str, timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(0.2)


def database_figures(database_url: str) -> dict[str, Any]:
    from sqlalchemy import func, select
    from sqlmodel import Session

    from idbroker.db import make_engine
    from idbroker.wecom.callbacks.intake import WeComCallback
    from idbroker.wecom.follow import WeComMemberEvent

    engine = make_engine(database_url)
    with Session(engine) as session:
        stored = session.scalar(select(func.count()).select_from(WeComCallback))
        processed = session.scalar(
            select(func.count()).select_from(WeComCallback).where(WeComCallback.processed_at.is_not(None))
        )  # type: ignore[union-attr]
        applied = session.scalar(select(func.count()).select_from(WeComMemberEvent))
        distinct_applied = session.scalar(select(func.count(func.distinct(WeComMemberEvent.callback_id))))
        last = session.scalar(select(func.max(WeComCallback.processed_at)))
        first = session.scalar(select(func.min(WeComCallback.received_at)))
    engine.dispose()
    return {
        "stored": stored,
        "processed": processed,
        "applied": applied,
        "distinct_applied": distinct_applied,
        "first_received": first.timestamp() if first else None,
        "last_processed": last.timestamp() if last else None,
    }


def durable_postgresql() -> tuple[Any, str]:
    """A throwaway PostgreSQL cluster (Debian's, as the tests start it) but durable: fsync and synchronous
    commit on, so an acknowledged callback is on disk. Returns (cluster, database URL)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from services import postgres

    class Durable(postgres.PostgresCluster):
        def start(self) -> None:
            options = (
                f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=on "
                "-c synchronous_commit=on -c max_connections=200"
            )
            data, log = str(self.directory / "data"), str(self.directory / "server.log")
            result = self._run("pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start")
            if result.returncode != 0:
                raise RuntimeError(f"PostgreSQL did not start:\n{self._log_tail()}")
            self.running = True

    plain = postgres.start_cluster()
    plain.stop()
    cluster = Durable(plain.bin_dir, plain.directory, plain.port, plain.run_as)
    cluster.start()
    cluster.create_database("broker")
    return cluster, cluster.url("broker")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callbacks", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--retries", type=float, default=0.1, help="share of sends that repeat an earlier callback")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--postgresql", action="store_true", help="a throwaway, durable PostgreSQL cluster")
    parser.add_argument("--worker-after", action="store_true", help="start the worker only once the burst is over")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)  # the load generator process
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load_main(args)
        return

    workdir = Path(tempfile.mkdtemp(prefix="wecom-callbacks-"))
    cluster = None
    if args.postgresql:
        cluster, args.database_url = durable_postgresql()
    database_url = args.database_url or f"sqlite:///{workdir / 'broker.db'}"
    env = environment(database_url, workdir)
    os.environ.update({k: v for k, v in env.items() if k.startswith("IDBROKER_")})
    prepare_database(database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(ROOT / "bench"),
            "--factory",
            "wecom_callbacks:server_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--backlog",
            "4096",
        ],
        env=env,
        cwd=workdir,
    )

    def start_worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "idbroker.cli.main", "worker", "--queue", "wecom.callbacks"],
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
        )

    worker = start_worker() if not args.worker_after else None
    try:
        wait_until_up(f"{base}/health/live")
        out = workdir / "load.json"
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--load",
                "--base",
                base,
                "--out",
                str(out),
                "--callbacks",
                str(args.callbacks),
                "--concurrency",
                str(args.concurrency),
                "--retries",
                str(args.retries),
            ],
            env=env,
            check=True,
        )
        if worker is None:
            worker = start_worker()
        results = json.loads(out.read_text())
        burst = results["callbacks"]
        deadline = time.monotonic() + 300
        while True:
            figures = database_figures(database_url)
            if figures["processed"] >= results["distinct"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(20)
        if worker is not None:
            worker.terminate()
            worker.wait(20)
        if cluster is not None:
            from services import postgres

            postgres.remove_cluster(cluster)
    shutil.rmtree(workdir, ignore_errors=True)  # the database and the load file

    def line(name: str, r: dict[str, Any]) -> str:
        return (
            f"{name:<30} {r['requests']:>7,} requests in {r['seconds']:6.1f} s = {r['per_second']:7,.0f}/s; "
            f"p50 {r['p50'] * 1000:6.1f} ms, p99 {r['p99'] * 1000:7.1f} ms, max {r['max'] * 1000:7.1f} ms; "
            f"over 5 s: {r['over_5s']}; statuses {r['statuses']}; transport failures {r['transport_failures']}"
        )

    print(
        f"database: {database_url.split('://')[0]}; {args.concurrency} concurrent connections; "
        f"{results['distinct']:,} distinct events among {args.callbacks:,} callbacks"
    )
    print(line("baseline (bare endpoint, noop)", results["noop"]))
    print(line("broker (/wecom/callback)", burst))
    after_burst = (
        figures["last_processed"] - (burst["started_at"] + burst["seconds"]) if figures["last_processed"] else None
    )
    since_start = figures["last_processed"] - burst["started_at"] if figures["last_processed"] else None
    print(
        f"stored {figures['stored']:,} distinct (expected {results['distinct']:,}); "
        f"processed {figures['processed']:,}; "
        f"member events applied {figures['applied']:,} from {figures['distinct_applied']:,} callbacks; "
        f"last processed {since_start:.1f} s after the burst began ({after_burst:+.1f} s after it ended)"
    )


if __name__ == "__main__":
    main()
