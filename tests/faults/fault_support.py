"""What the fault tests share: `idbroker` commands as real processes (and SIGKILL for them), the server on a
loopback port, a burst of encrypted WeChat Work callbacks, and the audit check every fault test ends with.

- `environment(engine, **settings)` — the environment of an `idbroker` process acting on the test's database:
  the test's own settings (the fixtures put them in the environment), the database URL, WeChat Work callbacks
  configured (the test token and key), and `settings` as `IDBROKER_<NAME>`.
- `cli(env, *args)` runs `idbroker ARGS` to its end; `kill9(process)` is `kill -9` of that one process;
  `start`, `stop`, `reap`, `start_server`, `wait_until`, `log_tail` are `services.processes`'.
- `encrypted_callbacks(n)` / `Burst` — distinct `subscribe` events encrypted and signed by wechatpy (the
  independent implementation), sent concurrently from a thread; each answer's status is recorded.
- `cli_here(env, *args)` — the same command in this process (checks after a fault: no start-up cost);
  `assert_audit_verifies(env)` — `idbroker audit verify` exits 0.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from plugins.wecom import signed_post, subscribe_xml, wecom_environment
from services.processes import IDBROKER, log_tail, reap, start, start_server, stop, wait_until
from services.processes import environment as process_environment
from sqlalchemy import Engine, func, select
from sqlmodel import Session

import idbroker.config
from idbroker.wecom.callbacks.intake import WeComCallback
from idbroker.wecom.follow import WeComMemberEvent

__all__ = ["Burst", "assert_audit_verifies", "cli", "cli_here", "encrypted_callbacks", "environment",
           "events_per_callback", "kill9", "log_tail", "reap", "run_callback_worker", "start", "start_server",
           "stop", "stored_digests", "unprocessed", "wait_until"]  # fmt: skip

UNUSED_API = "http://127.0.0.1:9"  # the callback tests call no WeChat Work API


def environment(engine: Engine | str, **settings: object) -> dict[str, str]:
    """`services.processes.environment` with WeChat Work callbacks configured (the test token and key)."""
    return {**wecom_environment(UNUSED_API), **process_environment(engine, **settings)}


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*IDBROKER, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def kill9(process: subprocess.Popen[bytes]) -> None:
    """`kill -9` of that process alone, as the kernel's OOM killer or an operator would."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def cli_here(env: dict[str, str], *args: str) -> tuple[int, str]:
    """`idbroker ARGS` run in this process (the same command, without a Python start-up of several seconds on
    a busy machine): (exit code, output). For checks after a fault; the faults themselves hit real processes."""
    from typer.testing import CliRunner

    from idbroker.cli.main import app

    idbroker.config.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args), env=env)
    finally:
        idbroker.config.get_settings.cache_clear()
    return result.exit_code, result.output


def assert_audit_verifies(env: dict[str, str]) -> str:
    """`idbroker audit verify` on the database of `env` exits 0."""
    code, output = cli_here(env, "audit", "verify")
    assert code == 0 and "audit log verified" in output, f"audit verify failed:\n{output}"
    return output


# --- WeChat Work callbacks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Callback:
    digest: str  # what the broker stores as the callback's dedupe key: SHA-256 of the decrypted XML
    query: dict[str, str]
    body: bytes


def encrypted_callbacks(count: int, prefix: str) -> list[Callback]:
    """`count` distinct subscribe events (userids PREFIX00000…), as WeChat Work sends them."""
    made = []
    for n in range(count):
        xml = subscribe_xml(f"{prefix}{n:05d}", at=1_700_000_000 + n)
        query, body = signed_post(xml, nonce=f"{n:010d}")
        made.append(Callback(hashlib.sha256(xml.encode()).hexdigest(), query, body))
    return made


@dataclass
class Burst:
    """Send callbacks concurrently from a background thread; `statuses[i]` is callback i's HTTP status
    (None: no answer — the connection was refused or cut)."""

    url: str
    callbacks: list[Callback]
    concurrency: int = 32
    statuses: dict[int, int | None] = field(default_factory=dict)
    answered_at: dict[int, float] = field(default_factory=dict)
    _thread: threading.Thread | None = None

    def start(self) -> Burst:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._send_all()), name="burst", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float = 180) -> Burst:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the burst did not finish in time"
        return self

    def count(self, status: int | None) -> int:
        return sum(1 for value in list(self.statuses.values()) if value == status)

    def with_status(self, status: int | None) -> list[Callback]:
        return [self.callbacks[i] for i, value in sorted(self.statuses.items()) if value == status]

    async def _send_all(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        gate = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=30) as client:

            async def send(index: int, callback: Callback) -> None:
                async with gate:
                    try:
                        response = await client.post("/wecom/callback", params=callback.query, content=callback.body)
                        status: int | None = response.status_code
                    except httpx.HTTPError:
                        status = None
                    self.statuses[index] = status
                    self.answered_at[index] = time.monotonic()

            await asyncio.gather(*(send(i, c) for i, c in enumerate(self.callbacks)))


def stored_digests(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.scalars(select(WeComCallback.digest)))


def unprocessed(engine: Engine) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(WeComCallback).where(WeComCallback.processed_at.is_(None))  # type: ignore[union-attr]
        return int(session.scalar(query) or 0)


def events_per_callback(engine: Engine) -> dict[int, int]:
    """How many member events each stored callback produced (the worker's effect; once each is right)."""
    with Session(engine) as session:
        counted = select(WeComMemberEvent.callback_id, func.count()).group_by(WeComMemberEvent.callback_id)
        effects = dict(session.execute(counted).all())
        ids = session.scalars(select(WeComCallback.id)).all()
    return {callback_id: effects.get(callback_id, 0) for callback_id in ids}


def run_callback_worker(env: dict[str, str], engine: Engine, log: Path, timeout: float = 120) -> None:
    """`idbroker worker --queue wecom.callbacks` until no stored callback waits, then stopped with SIGTERM."""
    worker = start(env, "worker", "--queue", "wecom.callbacks", log=log)
    try:
        wait_until(lambda: unprocessed(engine) == 0, "the worker to process every stored callback", timeout=timeout)
    finally:
        stop(worker)
