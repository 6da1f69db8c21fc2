"""Verification codes through the HTTP API on SQLite, beside a bare FastAPI endpoint served the same way.

    .venv/bin/python bench/contacts_codes.py [--people 6000] [--seconds 8] [--connections 32]

A fresh SQLite database with `--people` people, each signed in (a server-side session and its CSRF token).
The broker (`uvicorn --factory idbroker.web.app:create_app --workers 1`) and the bare app
(`bench/contacts_bare_app.py`, no database) run on loopback; `wrk -t2 -c<connections>` in its own process
drives each for `--seconds`, every request a different person (a Lua script cycles through them):

1. issue: `POST /api/me/phones` — limits checked (four counting queries), a flow with the code's keyed hash
   and the encrypted number, a queued message and its job, an audit event; the message is handed to the demo
   outbox right after the response (the inline first try), as in `make demo`;
2. verify: `POST /api/me/verifications/{flow}` with the right code (read back from the outbox) — the code
   checked, the phone made a verified point, the primary phone chosen again, an audit event;
3. bare: `POST /bare` with the same headers and body, answering the same JSON shape.

All load comes from one address, so the bench runs with the per-address and per-number-block limits raised
(`limits:` rewritten in a copy of policies/); every other rule is the shipped one. Times are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
RELAXED_LIMITS = """limits:
  per_target: [1/minute, 5/hour, 10/day]
  per_person: [3/minute, 10/hour, 20/day]
  per_ip: [1000000/hour]
  per_block: [1000000/hour]
  block_digits: 3
"""


def key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(target: str, port: int, env: dict[str, str], factory: bool) -> subprocess.Popen[bytes]:
    args = [PY, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    args += ["--log-level", "warning", "--no-access-log"] + (["--factory"] if factory else [])
    process = subprocess.Popen(args, env=env, cwd=ROOT / "bench")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{target} did not start on port {port}")


def lua(items: list[dict[str, str]], method: str) -> str:
    """A wrk script: each thread cycles through the items (its own stride), one request each."""
    rows = ",\n".join("{" + ",".join(f"{k}={json.dumps(v)}" for k, v in item.items()) + "}" for item in items)
    return f"""
local items = {{
{rows}
}}
local counter = 0
local threads = 0
function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end
function init(args)
  counter = offset
end
function request()
  counter = counter + 2
  local item = items[(counter % #items) + 1]
  local headers = {{["Content-Type"]="application/json", ["X-CSRF-Token"]=item.csrf}}
  headers["Cookie"] = "idb_session=" .. item.cookie
  return wrk.format("{method}", item.path, headers, item.body)
end
"""


def item(path: str, cookie: str, body: dict[str, str]) -> dict[str, str]:
    from idbroker.web.csrf import token_for

    return {"path": path, "cookie": cookie, "csrf": token_for(cookie), "body": json.dumps(body)}


def wrk(url: str, script: str, *, seconds: int, connections: int, directory: Path, name: str) -> dict[str, float]:
    path = directory / f"{name}.lua"
    path.write_text(script)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(path), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "requests": total,
        "ok": total - (int(bad.group(1)) if bad else 0),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": float(p50.group(1)) * scale[p50.group(2)] if p50 else float("nan"),
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=6000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/contacts_codes.py needs wrk (Debian package wrk)")

    directory = Path(tempfile.mkdtemp(prefix="idbroker-bench-codes-"))
    policies = directory / "policies"
    shutil.copytree(ROOT / "policies", policies)
    contacts = (policies / "contacts.yaml").read_text(encoding="utf-8")
    start, end = contacts.index("limits:"), contacts.index("update_link:")
    (policies / "contacts.yaml").write_text(contacts[:start] + RELAXED_LIMITS + "\n" + contacts[end:], encoding="utf-8")
    port, bare_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IDBROKER_")},
        "IDBROKER_DATABASE_URL": f"sqlite:///{directory / 'bench.db'}",
        "IDBROKER_NATIONAL_ID_HASH_KEY": key(),
        "IDBROKER_ENCRYPTION_KEY": key(),
        "IDBROKER_POLICIES_DIR": str(policies),
        "IDBROKER_DEMO_MODE": "true",  # the demo outbox: codes stay readable for step 2, nothing leaves
        "IDBROKER_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import insert
    from sqlmodel import Session, select

    from idbroker.clock import utcnow
    from idbroker.config import get_settings
    from idbroker.contacts.models import MessageDelivery, VerificationFlow
    from idbroker.db import make_engine
    from idbroker.directory.ids import new_person_id
    from idbroker.directory.models import Person, SourceRecord
    from idbroker.directory.protect import Protector
    from idbroker.migrate import upgrade
    from idbroker.web.session import open_session

    settings = get_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    now = utcnow()
    people = [new_person_id() for _ in range(args.people)]
    cookies: dict[str, str] = {}
    with Session(engine) as session:
        person_rows = [{"id": p, "state": "active", "created_at": now, "updated_at": now} for p in people]
        session.execute(insert(Person.__table__), person_rows)  # type: ignore[attr-defined]
        record = {"source": "student", "present": True, "name": "基准", "extra": {}, "set_aside": []}
        record_rows = [
            {**record, "key": f"31{i:08d}", "person_id": p, "row_hash": f"b{i}", "first_seen": now, "last_seen": now}
            for i, p in enumerate(people)
        ]
        session.execute(insert(SourceRecord.__table__), record_rows)  # type: ignore[attr-defined]
        for person in people:
            cookies[person] = open_session(session, settings, person_id=person, uid="bench", auth_time=now)
        session.commit()
    numbers = set()
    while len(numbers) < args.people:
        numbers.add(f"139{secrets.randbelow(10**8):08d}")
    issue_items = [
        item("/api/me/phones", cookies[p], {"phone": n}) for p, n in zip(people, sorted(numbers), strict=True)
    ]

    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    broker = serve("idbroker.web.app:create_app", port, env, factory=True)
    bare = serve("contacts_bare_app:app", bare_port, env, factory=False)
    try:
        load = {"seconds": args.seconds, "connections": args.connections, "directory": directory}
        half = max(2, args.seconds // 2)
        issue = wrk(f"http://127.0.0.1:{port}", lua(issue_items, "POST"), name="issue", **load)
        time.sleep(1)  # the inline outbox tries of the last responses
        protector = Protector.from_settings(settings)
        verify_items = []
        with Session(engine) as session:
            rows = session.exec(
                select(VerificationFlow.id, VerificationFlow.person_id, MessageDelivery.params_cipher)
                .join(MessageDelivery, MessageDelivery.id == VerificationFlow.delivery_id)
                .where(VerificationFlow.state == "sent")
            ).all()
        for flow_id, person, cipher in rows:
            code = json.loads(protector.decrypt(cipher, purpose="message_params"))["code"]
            verify_items.append(item(f"/api/me/verifications/{flow_id}", cookies[person], {"code": code}))
        # Half as long: every request must find a code not yet used (verifying is faster than issuing).
        verify = wrk(f"http://127.0.0.1:{port}", lua(verify_items, "POST"), name="verify", **{**load, "seconds": half})
        bare_items = [{**item, "path": "/bare"} for item in issue_items]
        baseline = wrk(f"http://127.0.0.1:{bare_port}", lua(bare_items, "POST"), name="bare", **load)
    finally:
        for process in (broker, bare):
            process.terminate()
            process.wait(timeout=10)
    with Session(engine) as session:
        verified = len(session.exec(select(VerificationFlow.id).where(VerificationFlow.state == "passed")).all())
    print(f"SQLite, {args.people} people signed in; wrk -t2 -c{args.connections} -d{args.seconds}s (verify {half}s)")
    print(f"one uvicorn worker each, {os.cpu_count()} cores, load average before {load_before}")
    print(f"{'':28}{'req/s':>9}{'2xx/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}")
    runs = (
        ("issue  POST /api/me/phones", issue),
        ("verify POST …/verifications", verify),
        ("bare   POST /bare", baseline),
    )
    for name, result in runs:
        ok_rate = result["ok"] / (half if result is verify else args.seconds)
        print(
            f"{name:28}{result['rps']:9.0f}{ok_rate:9.0f}{result['p50_ms']:9.1f}{result['p99_ms']:9.1f}{result['requests']:10.0f}"
        )
    print(f"codes issued {len(verify_items)} (flows waiting), verified {verified} (flows passed)")
    print(f"issue/bare {issue['rps'] / baseline['rps']:.1%}, verify/bare {verify['rps'] / baseline['rps']:.1%}")
    engine.dispose()
    shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
