"""The access token, cached in the database and shared by every worker; refreshed once, under a lock.

A process keeps the token in memory until shortly before it expires, then reads the database; when the
database's copy is stale too, it locks the row (`FOR UPDATE` on PostgreSQL; SQLite's write lock, taken by
`BEGIN IMMEDIATE`) and checks again before calling `gettoken`, so concurrent workers make one call between
them. The token is a credential: it is stored encrypted (AES-GCM, the broker's encryption key), and the
row is keyed by a keyed hash of corp id and secret, never the secret.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel

from idbroker.clock import utcnow
from idbroker.directory.protect import Protector

Fetch = Callable[[], tuple[str, int]]  # → (access_token, expires_in seconds)
PURPOSE = "wecom_token"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class WeComToken(SQLModel, table=True):
    __tablename__ = "wecom_token"

    cache_key: str = Field(primary_key=True, max_length=64)
    token_cipher: str | None = Field(default=None, max_length=1024)
    expires_at: datetime = Field(default_factory=utcnow)  # already shortened by the refresh margin
    fetched_at: datetime | None = None
    fetches: int = 0


def refresh_margin(expires_in: int) -> int:
    """Refresh this many seconds early: five minutes of a two-hour token, a quarter of a short one."""
    return min(300, expires_in // 4)


class TokenCache:
    def __init__(self, engine: Engine, protector: Protector, corp_id: str, secret: str, fetch: Fetch) -> None:
        self.engine, self.protector, self.fetch = engine, protector, fetch
        self.key = protector.keyed_hash(f"{corp_id}\x00{secret}", purpose="wecom_secret")[3:]
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = EPOCH

    def get(self) -> str:
        with self._lock:
            if self._token is not None and utcnow() < self._expires:
                return self._token
            return self._load(stale=None)

    def replace(self, stale: str) -> str:
        """The server refused `stale` (40014/42001/41001): a fresh token, fetched once by whoever comes first."""
        with self._lock:
            if self._token is not None and self._token != stale and utcnow() < self._expires:
                return self._token
            return self._load(stale=stale)

    def _usable(self, row: WeComToken | None, stale: str | None) -> str | None:
        if row is None or row.token_cipher is None or utcnow() >= row.expires_at:
            return None
        token = self.protector.decrypt(row.token_cipher, purpose=PURPOSE)
        return None if token == stale else token

    def _remember(self, token: str, expires: datetime) -> str:
        self._token, self._expires = token, expires
        return token

    def _load(self, stale: str | None) -> str:
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.get(WeComToken, self.key)
            token = self._usable(row, stale)
            if token is not None and row is not None:
                return self._remember(token, row.expires_at)
        with Session(self.engine, expire_on_commit=False) as session:
            session.execute(self._insert_if_missing(session))
            row = session.scalars(
                select(WeComToken)
                .where(WeComToken.cache_key == self.key)  # type: ignore[arg-type]
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one()
            token = self._usable(row, stale)
            if token is None:  # nobody refreshed it while we waited for the lock: we do, once
                token, expires_in = self.fetch()
                now = utcnow()
                row.token_cipher = self.protector.encrypt(token, purpose=PURPOSE)
                row.expires_at = now + timedelta(seconds=expires_in - refresh_margin(expires_in))
                row.fetched_at, row.fetches = now, row.fetches + 1
                session.add(row)
            expires = row.expires_at
            session.commit()
        return self._remember(token, expires)

    def _insert_if_missing(self, session: Session):  # type: ignore[no-untyped-def]
        values = {"cache_key": self.key, "expires_at": utcnow(), "fetches": 0}
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            return pg_insert(WeComToken).values(**values).on_conflict_do_nothing()
        if dialect == "sqlite":
            return sqlite_insert(WeComToken).values(**values).on_conflict_do_nothing()
        return insert(WeComToken).values(**values)
