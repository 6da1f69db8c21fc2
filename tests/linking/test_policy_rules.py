"""The campus matching policy keeps the product's rules: each test is one rule the policy must not break."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from idbroker.linking.engine import link_in_memory
from idbroker.linking.policy import load_matching_policy
from idbroker.linking.records import LinkRecord
from idbroker.normalize import normalize_name
from idbroker.policy import PolicyError

POLICY = load_matching_policy(Path(__file__).resolve().parents[2] / "policies" / "matching.yaml")


def rec(rid: int, source: str, key: str, name: str, **fields: Any) -> LinkRecord:
    parsed = normalize_name(name)
    assert parsed is not None
    values = {
        "name": (parsed.key, parsed.pinyin),
        "name_key": parsed.key,
        "name_pinyin": parsed.pinyin,
        "account": f"campus:{key}",
        **fields,
    }
    return LinkRecord.of(rid, source, key, values)


def outcome(*records: LinkRecord) -> tuple[int, int]:
    """(number of people, number of review cases)."""
    result = link_in_memory(records, POLICY)
    return len(result.clusters), len(result.review)


def test_a_shared_phone_alone_never_merges_twins() -> None:
    born = date(2004, 9, 1)
    twins = (
        rec(
            1,
            "student",
            "1120220001",
            "刘子涵",
            birth_date=born,
            phone="+8613800000000",
            gender="M",
            national_id_hash="a",
        ),
        rec(
            2,
            "student",
            "1120220002",
            "刘子轩",
            birth_date=born,
            phone="+8613800000000",
            gender="M",
            national_id_hash="b",
        ),
        rec(3, "student", "1120220003", "刘梓萱", birth_date=born, phone="+8613800000000", gender="F"),
    )
    assert outcome(*twins) == (3, 0)


def test_name_and_birth_year_never_merge_and_name_and_birth_date_only_go_to_review() -> None:
    same_year = (
        rec(1, "student", "1", "张伟", birth_date=date(2000, 1, 5)),
        rec(2, "hr", "6", "张伟", birth_date=date(2000, 8, 9)),
    )
    assert outcome(*same_year) == (2, 0)
    same_day = (
        rec(1, "student", "1", "张伟", birth_date=date(2000, 1, 5)),
        rec(2, "hr", "6", "张伟", birth_date=date(2000, 1, 5)),
    )
    assert outcome(*same_day) == (2, 1)


def test_two_valid_national_ids_veto_whatever_else_agrees() -> None:
    everything = dict(birth_date=date(1990, 2, 3), phone="+8613900000000", email="a@example.edu.cn", gender="F")
    pair = (
        rec(1, "student", "1120080001", "王芳", national_id_hash="id-1", **everything),
        rec(2, "hr", "6120150001", "王芳", national_id_hash="id-2", **everything),
    )
    assert outcome(*pair) == (2, 0)


def test_a_record_that_bridges_two_people_who_disagree_does_not_join_them() -> None:
    # a CAS record with a reused role email reaches two different 李丽 born years apart
    people = (
        rec(1, "hr", "6120050060", "李丽", birth_date=date(1977, 12, 6), email="lili@example.edu.cn"),
        rec(2, "hr", "6120190060", "李丽", birth_date=date(1989, 1, 4), phone="+8615700000000"),
        rec(3, "cas", "6120190060", "李丽", email="lili@example.edu.cn", phone="+8615700000000"),
    )
    result = link_in_memory(people, POLICY)
    assert sorted(sorted(c) for c in result.clusters) == [[1], [2, 3]]


def test_pinyin_is_weak_and_a_homophone_with_a_number_in_common_still_links() -> None:
    homophones = (
        rec(1, "student", "1", "张伟", birth_date=date(2001, 1, 1)),
        rec(2, "hr", "6", "章伟", birth_date=date(2001, 1, 1)),
    )
    assert outcome(*homophones) == (2, 0)
    typo = (
        rec(1, "student", "1120050408", "孙博", birth_date=date(1988, 3, 19)),
        rec(2, "cas", "1120050408", "孙柏"),
    )  # 柏 also reads bó
    assert outcome(*typo) == (1, 0)


def test_the_same_valid_national_id_and_a_romanised_name_merge() -> None:
    pair = (
        rec(1, "student", "1120101234", "张帅", national_id_hash="x", birth_date=date(1992, 5, 17)),
        rec(2, "hr", "6120170032", "SHUAI ZHANG", national_id_hash="x", birth_date=date(1992, 5, 17)),
    )
    assert outcome(*pair) == (1, 0)


def test_an_invalid_policy_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "matching.yaml"
    bad.write_text(
        "thresholds:\n  auto_merge: 5\n  review: 9\nblocking: [[phone]]\ncomparisons:\n"
        "  - name: phone\n    kind: fuzzy\n    field: phone\n",
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as error:
        load_matching_policy(bad)
    assert "matching.yaml:" in str(error.value) and "review must not be above auto_merge" in str(error.value)
