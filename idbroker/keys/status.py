"""How many stored values use each version of each key kind (what `keys status` shows, what retiring checks)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import String, cast, func, select
from sqlmodel import Session

from idbroker.keys.columns import CIPHERS, TABLES
from idbroker.keys.keyring import ENCRYPTION, HASH, PSEUDONYM
from idbroker.oidc.keys import live_keys
from idbroker.release.models import Pseudonym


def _prefix_counts(session: Session, table: str, column: str, separator: str) -> Counter[str]:
    """version → rows, from the `k2:`/`k2$` prefix of each non-empty value."""
    col = TABLES[table].c[column]
    if session.get_bind().dialect.name == "sqlite":
        version = func.substr(col, 1, func.instr(col, separator) - 1)
    else:
        version = func.split_part(col, separator, 1)
    rows = session.execute(select(version, func.count()).where(col.is_not(None), col != "").group_by(version))
    return Counter({str(v): int(n) for v, n in rows})


def _set_aside_counts(session: Session) -> Counter[str]:
    table = TABLES["source_record"]
    counts: Counter[str] = Counter()
    for (items,) in session.execute(select(table.c.set_aside).where(cast(table.c.set_aside, String) != "[]")):
        for item in items or []:
            if item.get("value"):
                counts[str(item["value"]).partition(":")[0]] += 1
    return counts


def usage(session: Session, kind: str) -> dict[str, Counter[str]]:
    """Per place (`table.column`): version → how many stored values use it."""
    if kind == HASH:
        return {"source_record.national_id_hash": _prefix_counts(session, "source_record", "national_id_hash", "$")}
    if kind == ENCRYPTION:
        found = {
            f"{table}.{column}": _prefix_counts(session, table, column, ":")
            for table, columns in CIPHERS.items()
            for column, _ in columns
        }
        found["source_record.set_aside"] = _set_aside_counts(session)
        return found
    if kind == PSEUDONYM:
        rows = session.execute(select(Pseudonym.key_version, func.count()).group_by(Pseudonym.key_version))
        return {"pseudonym.key_version": Counter({str(v): int(n) for v, n in rows})}
    return {"oidc_signing_key": Counter({"live": len(live_keys(session))})}


def totals(session: Session, kind: str) -> Counter[str]:
    """version → stored values using it, over every place."""
    total: Counter[str] = Counter()
    for counts in usage(session, kind).values():
        total.update(counts)
    return total
