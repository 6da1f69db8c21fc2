"""A synthetic directory for the WeChat Work benchmarks, written straight into the database (fast).

`build_directory(engine, people)` inserts people with one active role each — students (学号 in a 学院, 在读)
and staff (工号) — with a mobile for everyone and an email for most, then lets the contacts engine choose
their primaries (`collect_people`), as an import would. No real person: names are generated, numbers are
sequential, phones are in the 139 0000 0000 range and up.
"""

from __future__ import annotations

import random
import time
from typing import Any

from sqlalchemy import Engine, insert
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.contacts.collect import collect_people
from idbroker.directory.ids import new_person_id
from idbroker.directory.models import Person, SourceRecord

COLLEGES = [
    "计算机学院",
    "数学学院",
    "物理学院",
    "化学学院",
    "经济学院",
    "管理学院",
    "法学院",
    "文学院",
    "医学院",
    "艺术学院",
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚"
CHUNK = 5000


def phone(n: int) -> str:
    return f"+86139{n:08d}"


def build_directory(engine: Engine, people: int, *, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    now = utcnow()
    ids: list[str] = []
    persons: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    for n in range(people):
        pid = new_person_id()
        ids.append(pid)
        persons.append({"id": pid, "state": "active", "created_at": now, "updated_at": now})
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        staff = n % 10 == 9
        source, key = ("hr", f"6{n:09d}") if staff else ("student", f"1{n:09d}")
        records.append(
            {
                "source": source,
                "key": key,
                "person_id": pid,
                "present": True,
                "name": name,
                "phone": phone(n),
                "email": f"u{n}@example.edu.cn" if rng.random() < 0.7 else None,
                "org": rng.choice(COLLEGES) if not staff else "教务处",
                "affiliation": "staff" if staff else "student",
                "status": "active",
                "extra": {},
                "set_aside": [],
                "row_hash": f"{source}:{key}",
                "first_seen": now,
                "last_seen": now,
            }
        )
    with Session(engine) as session:
        for start in range(0, people, CHUNK):
            session.execute(insert(Person), persons[start : start + CHUNK])
            session.execute(insert(SourceRecord), records[start : start + CHUNK])
        session.commit()
    return ids


def choose_primaries(engine: Engine, ids: list[str]) -> float:
    started = time.perf_counter()
    with Session(engine) as session:
        for start in range(0, len(ids), CHUNK):
            collect_people(session, ids[start : start + CHUNK])
        session.commit()
    return time.perf_counter() - started
