"""Durable intake: a callback is checked, stored, committed — and only then acknowledged.

`CallbackReceiver.accept` does everything that can refuse a callback before anything is stored: the size,
the envelope XML (defusedxml: no entities, no DTDs), the corp it is addressed to, the signature (constant
time), the decryption (padding and receiveid checked) and the decrypted XML. What it accepts is stored as
it came — the `Encrypt` text, still encrypted with the corp's key — with the SHA-256 of the decrypted XML
as its dedupe key: a replayed or retried callback has the same XML and so the same digest, while two
distinct `change_contact` events of the same second (same FromUserName `sys`, same CreateTime) differ in
their XML and are both kept. (The ciphertext itself cannot be the key: it starts with random bytes.)

`Intake` writes in groups: one writer thread takes whatever callbacks are waiting (up to `max_batch`),
inserts them in one transaction (`ON CONFLICT (digest) DO NOTHING`), wakes the worker through the job
queue in the same transaction (once a second), commits, and only then resolves the requests' futures — all
of a group in one hand-over to the event loop — so thousands of callbacks a second cost a few hundred
commits, and none is answered before it is durable. A failed commit fails every request of the group
(HTTP 503): WeChat Work retries them. The writer is a thread, not the event loop, on purpose: writing on
the loop measured faster, but a database waiting for a lock would then stall every route of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from sqlalchemy import Engine, Text, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel

from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.jobs.queue import enqueue
from idbroker.wecom.callbacks.crypto import CallbackCrypto, CallbackRejected, WrongReceiver
from idbroker.wecom.errors import WeComNotConfigured

log = logging.getLogger("idbroker.wecom")

MAX_BODY_BYTES = 64 * 1024
QUEUE = "wecom.callbacks"


class WeComCallback(SQLModel, table=True):
    __tablename__ = "wecom_callback"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, unique=True)  # SHA-256 of the decrypted XML: the dedupe key
    received_at: datetime = Field(default_factory=utcnow)
    kind: str = Field(max_length=64)  # e.g. subscribe, change_contact/update_user, batch_job_result
    encrypt: str = Field(sa_type=Text)  # the raw event as received, still encrypted with the corp's key
    processed_at: datetime | None = Field(default=None, index=True)
    outcome: str | None = Field(default=None, max_length=32)


CALLBACKS = WeComCallback.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Accepted:
    digest: str
    kind: str
    encrypt: str


def parse_xml(data: bytes, what: str) -> Element:
    try:
        root = ElementTree.fromstring(data, forbid_dtd=True)  # WeChat Work never sends a DOCTYPE (nor does CAS)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        raise CallbackRejected(f"{what} is not well-formed XML") from None
    if root.tag != "xml":
        raise CallbackRejected(f"{what} is not an <xml> document")
    return root


def event_kind(root: Element) -> str:
    msg_type = (root.findtext("MsgType") or "").strip()
    event = (root.findtext("Event") or "").strip()
    if msg_type != "event" or not event:
        return f"message/{msg_type or 'unknown'}"[:64]
    change = (root.findtext("ChangeType") or "").strip()
    return (f"{event}/{change}" if change else event)[:64]


def callback_crypto(settings: Settings) -> CallbackCrypto:
    token, key, corp = settings.wecom_callback_token, settings.wecom_encoding_aes_key, settings.wecom_corp_id
    if token is None or key is None or not corp:
        raise WeComNotConfigured(
            "WeChat Work callbacks are not configured: set IDBROKER_WECOM_CORP_ID, "
            "IDBROKER_WECOM_CALLBACK_TOKEN and IDBROKER_WECOM_ENCODING_AES_KEY"
        )
    try:
        return CallbackCrypto(token.get_secret_value(), key.get_secret_value(), corp)
    except ValueError as exc:
        raise WeComNotConfigured(f"WeChat Work callback settings: {exc}") from None


class CallbackReceiver:
    """Checks callbacks for one corp and hands what it accepts to the intake."""

    def __init__(self, crypto: CallbackCrypto, corp_id: str, intake: Intake) -> None:
        self.crypto, self.corp_id, self.intake = crypto, corp_id, intake

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> CallbackReceiver:
        return cls(callback_crypto(settings), settings.wecom_corp_id or "", Intake(engine))

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The URL check (GET): the decrypted echostr, to be answered alone."""
        plain = self.crypto.open(msg_signature, timestamp, nonce, echostr)
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise CallbackRejected("echostr is not text") from None

    def accept(self, body: bytes, msg_signature: str, timestamp: str, nonce: str) -> Accepted:
        if len(body) > MAX_BODY_BYTES:
            raise CallbackRejected("the callback is too large")
        envelope = parse_xml(body, "the callback body")
        to = (envelope.findtext("ToUserName") or "").strip()
        if to and to != self.corp_id:
            raise WrongReceiver("the callback is addressed to another corp")
        encrypt = (envelope.findtext("Encrypt") or "").strip()
        if not encrypt:
            raise CallbackRejected("the callback has no Encrypt")
        xml = self.crypto.open(msg_signature, timestamp, nonce, encrypt)
        kind = event_kind(parse_xml(xml, "the decrypted event"))
        return Accepted(hashlib.sha256(xml).hexdigest(), kind, encrypt)


class Intake:
    """The group-committing writer (see the module docstring). `submit` is thread-safe."""

    def __init__(self, engine: Engine, *, max_batch: int = 500, linger: float = 0.002) -> None:
        self.engine, self.max_batch, self.linger = engine, max_batch, linger
        self._queue: queue.Queue[tuple[Accepted, asyncio.Future[None] | Future[None]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._woken = 0  # the second of the last wake-up job this writer committed

    def submit(self, accepted: Accepted) -> asyncio.Future[None]:
        """From a coroutine: a future of the event loop, resolved once the callback is committed."""
        self._ensure_started()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put((accepted, future))
        return future

    def store(self, accepted: Accepted, timeout: float = 30.0) -> None:
        """Store one callback and wait until it is committed (for callers without an event loop)."""
        self._ensure_started()
        future: Future[None] = Future()
        self._queue.put((accepted, future))
        future.result(timeout)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="wecom-intake", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            deadline = time.monotonic() + self.linger
            while len(group) < self.max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                group.append(item)
            try:
                self._write([accepted for accepted, _ in group])
            except Exception as exc:  # the database failed: nobody is acknowledged, WeChat Work retries
                log.warning("callback intake could not commit %d callbacks: %s", len(group), type(exc).__name__)
                _settle([future for _, future in group], exc)
                continue
            _settle([future for _, future in group], None)

    def _write(self, group: list[Accepted]) -> None:
        now = utcnow()
        rows = {a.digest: {"digest": a.digest, "kind": a.kind, "encrypt": a.encrypt, "received_at": now} for a in group}
        second = int(time.time())
        with Session(self.engine) as session:
            session.execute(_insert_new(session), list(rows.values()))
            if second != self._woken:  # one wake-up a second is enough: it takes every waiting callback
                wake_worker(session)
            session.commit()
        self._woken = second


def _settle(futures: list[asyncio.Future[None] | Future[None]], error: Exception | None) -> None:
    """Resolve a group's futures: one hand-over per event loop (not one per request), so a group of hundreds
    wakes the loop once."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for future in futures:
        if isinstance(future, asyncio.Future):
            by_loop.setdefault(future.get_loop(), []).append(future)
        elif error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
    for loop, waiting in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_resolve, waiting, error)


def _resolve(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    for future in futures:
        if future.done():  # the request went away (its client hung up)
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _insert_new(session: Session):  # type: ignore[no-untyped-def]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return pg_insert(CALLBACKS).on_conflict_do_nothing(index_elements=["digest"])
    if dialect == "sqlite":
        return sqlite_insert(CALLBACKS).on_conflict_do_nothing(index_elements=["digest"])
    return insert(CALLBACKS)


def wake_worker(session: Session, *, delay: float = 0.0, tag: str = "", payload: dict[str, Any] | None = None) -> None:
    """A wake-up job for the worker, at most one per second and tag: it takes every waiting callback."""
    second = int(time.time() + delay)
    enqueue(session, QUEUE, payload or {}, delay=delay, dedupe_key=f"{QUEUE}:{tag}{second}", max_attempts=20)
