"""Generated campus rows for tests: no real person, valid national IDs made by the checksum rule."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from idbroker.demo import campus
from idbroker.normalize import make_national_id

STUDENT_HEADER, HR_HEADER, CAS_HEADER, BILLING_HEADER = (
    list(h) for h in (campus.STUDENT_HEADER, campus.HR_HEADER, campus.CAS_HEADER, campus.BILLING_HEADER)
)


def national_id(birth: date, sequence: int, region: str = "110108") -> str:
    return make_national_id(region, birth, sequence)


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def student(
    number: str,
    name: str,
    gender: str,
    birth: str,
    nid: str,
    level: str,
    year: str,
    phone: str,
    email: str = "",
    status: str = "在读",
    college: str = "计算机学院",
) -> list[str]:
    return [number, name, gender, birth, nid, level, year, college, phone, email, status]


def staff(
    number: str,
    name: str,
    gender: str,
    birth: str,
    nid: str,
    phone: str,
    email: str = "",
    category: str = "专任教师",
    status: str = "在职",
    department: str = "计算机学院",
) -> list[str]:
    return [number, name, gender, birth, nid, category, department, phone, email, status]


def cas(uid: str, name: str, phone: str = "", mail: str = "", affiliation: str = "student") -> list[str]:
    return [uid, name, mail, phone, affiliation]
