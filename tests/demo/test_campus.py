"""The synthetic campus generator: layouts, truth, determinism and the hard cases it must contain."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from idbroker.demo.campus import (
    BILLING_HEADER,
    CAS_HEADER,
    EXAMPLE_HOMONYM,
    EXAMPLE_NUMBERS,
    EXAMPLE_PERSON,
    HR_HEADER,
    STUDENT_HEADER,
    TRUTH_HEADER,
    CampusFiles,
    generate_campus,
)
from idbroker.normalize import InvalidValue, normalize_phone, parse_national_id

HEADERS = {
    "student": STUDENT_HEADER,
    "hr": HR_HEADER,
    "cas": CAS_HEADER,
    "billing": BILLING_HEADER,
    "truth": TRUTH_HEADER,
}


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _valid_id(raw: str) -> str | None:
    try:
        parsed = parse_national_id(raw)
    except InvalidValue:
        return None
    return parsed.number if parsed else None


@pytest.fixture(scope="module")
def campus(tmp_path_factory: pytest.TempPathFactory) -> CampusFiles:
    return generate_campus(3000, 11, tmp_path_factory.mktemp("campus"))


@pytest.fixture(scope="module")
def files(campus: CampusFiles) -> dict[str, list[dict[str, str]]]:
    out = {}
    for name, header in HEADERS.items():
        columns, rows = _read(campus.directory / f"{name}.csv")
        assert tuple(columns) == header
        out[name] = rows
    return out


@pytest.fixture(scope="module")
def person_of(files: dict[str, list[dict[str, str]]]) -> dict[tuple[str, str], str]:
    return {(row["source"], row["record"]): row["person"] for row in files["truth"]}


def test_headers_exact() -> None:
    assert (
        ",".join(STUDENT_HEADER) == "学号,姓名,性别,出生日期,身份证号,培养层次,入学年份,学院,手机号,电子邮箱,学籍状态"
    )
    assert ",".join(HR_HEADER) == "工号,姓名,性别,出生日期,身份证号,人员类别,部门,手机号,电子邮箱,在职状态"
    assert ",".join(CAS_HEADER) == "uid,cn,mail,mobile,eduPersonAffiliation"
    assert ",".join(BILLING_HEADER) == "account,name,mobile"


def test_counts_and_truth_cover_every_record(campus: CampusFiles, files: dict, person_of: dict) -> None:
    assert campus.people == 3000
    for source in ("student", "hr", "cas", "billing"):
        assert campus.counts[source] == len(files[source]) > 0
    assert campus.records == len(files["truth"]) == len(person_of)  # each (source, record) once
    assert 3.5 <= campus.records / campus.people <= 4.5
    assert len(set(person_of.values())) == campus.people
    keys = {"student": "学号", "hr": "工号", "cas": "uid", "billing": "account"}
    written = {(source, row[keys[source]]) for source in keys for row in files[source]}
    assert written == set(person_of)


def test_every_number_has_its_cas_account_of_the_same_person(files: dict, person_of: dict) -> None:
    cas = {row["uid"] for row in files["cas"]}
    numbers = [row["学号"] for row in files["student"]] + [row["工号"] for row in files["hr"]]
    assert set(numbers) == cas and len(numbers) == len(cas)
    for row in files["student"]:
        assert person_of[("cas", row["学号"])] == person_of[("student", row["学号"])]
    for row in files["billing"]:
        assert ("cas", row["account"]) in person_of
        assert person_of[("billing", row["account"])] == person_of[("cas", row["account"])]


def test_numbers_say_level_and_year(files: dict) -> None:
    prefix = {"本科": "1", "硕士": "2", "博士": "3"}
    for row in files["student"]:
        number = row["学号"]
        assert len(number) == 10 and number.isdigit()
        assert number[0] == prefix[row["培养层次"]]
        assert number[2:6] == row["入学年份"]
        assert row["学籍状态"] in {"在读", "毕业", "休学", "退学"}
    for row in files["hr"]:
        assert row["工号"].startswith("6") and len(row["工号"]) == 10
        assert row["在职状态"] in {"在职", "离职", "退休"}


def test_people_hold_several_numbers(files: dict, person_of: dict) -> None:
    numbers: Counter[str] = Counter()
    for (source, _), person in person_of.items():
        if source in ("student", "hr"):
            numbers[person] += 1
    spread = Counter(numbers.values())
    assert spread[1] > 0 and spread[2] > 0 and spread[3] > 0
    assert max(spread) <= 5


def test_example_person_and_homonym(files: dict, person_of: dict) -> None:
    for number in EXAMPLE_NUMBERS:
        source = "hr" if number.startswith("6") else "student"
        assert person_of[(source, number)] == EXAMPLE_PERSON
        assert person_of[("cas", number)] == EXAMPLE_PERSON
    ids = {
        _valid_id(row["身份证号"]) for row in files["student"] if person_of[("student", row["学号"])] == EXAMPLE_PERSON
    }
    hr = [row for row in files["hr"] if row["工号"] == "6120170032"]
    ids.add(_valid_id(hr[0]["身份证号"]))
    assert len(ids) == 1 and None not in ids
    homonym = [row for row in files["student"] if person_of[("student", row["学号"])] == EXAMPLE_HOMONYM]
    assert homonym and all(row["姓名"] == "张帅" for row in homonym)
    other_id = _valid_id(homonym[0]["身份证号"])
    assert other_id is not None and other_id not in ids
    assert other_id[6:10] == next(iter(ids))[6:10]  # born the same year


def test_example_present_in_small_demo_campus(tmp_path: Path) -> None:
    small = generate_campus(200, 3, tmp_path)
    _, truth = _read(small.truth)
    assert small.people == 200
    assert {row["record"] for row in truth if row["person"] == EXAMPLE_PERSON} == set(EXAMPLE_NUMBERS)


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    one = generate_campus(500, 5, tmp_path / "one")
    two = generate_campus(500, 5, tmp_path / "two")
    other = generate_campus(500, 6, tmp_path / "other")
    for name in ("student", "hr", "cas", "billing", "truth"):
        assert (one.directory / f"{name}.csv").read_bytes() == (two.directory / f"{name}.csv").read_bytes()
    assert (one.directory / "student.csv").read_bytes() != (other.directory / "student.csv").read_bytes()


def test_national_ids_valid_missing_and_mistyped_as_truth_says(files: dict, person_of: dict) -> None:
    flags = {(row["source"], row["record"]): row["national_id_valid"] for row in files["truth"]}
    seen: Counter[str] = Counter()
    id_of_person: dict[str, set[str]] = defaultdict(set)
    for source, key in (("student", "学号"), ("hr", "工号")):
        for row in files[source]:
            raw, flag = row["身份证号"], flags[(source, row[key])]
            valid = _valid_id(raw)
            if not raw:
                assert flag == ""
                seen["missing"] += 1
            elif valid is None:
                assert flag == "0"
                seen["mistyped"] += 1
            else:
                assert flag == "1"
                seen["valid"] += 1
                id_of_person[person_of[(source, row[key])]].add(valid)
    assert seen["missing"] > 50 and seen["mistyped"] > 50 and seen["valid"] > 10 * seen["mistyped"]
    assert all(len(ids) == 1 for ids in id_of_person.values())  # one valid ID per person
    owners = Counter(next(iter(ids)) for ids in id_of_person.values())
    assert max(owners.values()) == 1  # and never two people with one ID


def test_homonyms_share_name_and_birth_year(files: dict, person_of: dict) -> None:
    people_by_name_year: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in files["student"]:
        valid = _valid_id(row["身份证号"])
        if valid:
            people_by_name_year[(row["姓名"], valid[6:10])].add(person_of[("student", row["学号"])])
    assert sum(1 for people in people_by_name_year.values() if len(people) > 1) >= 5


def test_twins_share_a_phone_and_birth_date_with_different_valid_ids(files: dict, person_of: dict) -> None:
    by_phone: dict[str, set[str]] = defaultdict(set)
    facts: dict[str, tuple[str, str, str]] = {}
    for row in files["student"]:
        valid = _valid_id(row["身份证号"])
        phone = normalize_phone(row["手机号"]) if row["手机号"] else None
        person = person_of[("student", row["学号"])]
        if valid and phone:
            by_phone[phone.e164].add(person)
            facts[person] = (valid, row["姓名"], valid[6:14])
    twins = 0
    for people in by_phone.values():
        known = [facts[p] for p in people if p in facts]
        if len(known) == 2 and known[0][2] == known[1][2]:  # same birth date
            (id_a, name_a, _), (id_b, name_b, _) = known
            if name_a[0] == name_b[0] and name_a != name_b and id_a != id_b:
                twins += 1
    assert twins >= 3


def test_messy_values_are_present(files: dict) -> None:
    hr_names = [row["姓名"] for row in files["hr"]]
    assert any(name.isascii() and "," in name for name in hr_names)  # Zhang, Shuai
    assert any(name.isascii() and name.isupper() for name in hr_names)  # SHUAI ZHANG
    phones = [row["手机号"] for row in files["student"] + files["hr"]]
    assert any(p.startswith("+86 ") for p in phones) and any("-" in p for p in phones)
    assert any(p.startswith("86") and len(p) == 13 for p in phones)
    dates = {row["出生日期"] for row in files["student"] + files["hr"]}
    assert any("年" in d for d in dates) and any("/" in d for d in dates) and any("-" in d for d in dates)
    names = [row["姓名"] for row in files["student"]]
    assert any(c in "張陳劉楊黃趙吳" for name in names for c in name)  # traditional characters


def test_generates_a_large_campus_quickly(tmp_path: Path) -> None:
    big = generate_campus(20_000, 1, tmp_path)
    assert 70_000 <= big.records <= 90_000


def test_work_mail_addresses_belong_to_one_person(files: dict, person_of: dict) -> None:
    owners: dict[str, set[str]] = defaultdict(set)
    for row in files["cas"]:
        if row["mail"].endswith("@example.edu.cn"):
            owners[row["mail"]].add(person_of[("cas", row["uid"])])
    assert owners and all(len(people) == 1 for people in owners.values())
