"""Generated campus rows for tests: no real person, valid national IDs made by the checksum rule."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from idbroker.normalize import make_national_id

STUDENT_HEADER = [
    "学号",
    "姓名",
    "性别",
    "出生日期",
    "身份证号",
    "培养层次",
    "入学年份",
    "学院",
    "手机号",
    "电子邮箱",
    "学籍状态",
]
HR_HEADER = [
    "工号",
    "姓名",
    "性别",
    "出生日期",
    "身份证号",
    "人员类别",
    "部门",
    "手机号",
    "电子邮箱",
    "在职状态",
]
CAS_HEADER = ["uid", "cn", "mail", "mobile", "eduPersonAffiliation"]
BILLING_HEADER = ["account", "name", "mobile"]


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
