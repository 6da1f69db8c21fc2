"""The benchmark scorer on a hand-made truth and prediction whose figures are counted by hand."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load_score():  # bench/ is not a package: import its module by path
    spec = importlib.util.spec_from_file_location("bench_score", BENCH / "score.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_score"] = module
    spec.loader.exec_module(module)
    return module


score_module = _load_score()

# Real people: A has 4 records, B 2, C 1, D 2.
TRUTH = {
    ("student", "1"): "A",
    ("cas", "1"): "A",
    ("student", "2"): "A",
    ("hr", "6"): "A",
    ("student", "3"): "B",
    ("cas", "3"): "B",
    ("student", "4"): "C",
    ("student", "5"): "D",
    ("cas", "5"): "D",
}
# Predicted: A split into {s1, c1, s2} and {h6}; B and C merged wrongly; D's cas record not mentioned.
PREDICTED = {
    ("student", "1"): "x",
    ("cas", "1"): "x",
    ("student", "2"): "x",
    ("hr", "6"): "y",
    ("student", "3"): "z",
    ("cas", "3"): "z",
    ("student", "4"): "z",
    ("student", "5"): "w",
}


def test_pairwise_and_error_counts() -> None:
    result = score_module.score(
        TRUTH,
        PREDICTED,
        national_ids={("student", "3"): "110101199001011234", ("student", "4"): "110101199202021235"},
        review_queue=4,
    )
    # true pairs: A C(4,2)=6, B 1, D 1 → 8; predicted pairs: x 3, z 3 → 6; correct: x 3 + B's 1 → 4
    assert (result.true_pairs, result.predicted_pairs, result.correct_pairs) == (8, 6, 4)
    assert result.precision == pytest.approx(4 / 6)
    assert result.recall == pytest.approx(4 / 8)
    assert result.false_merges == 1 and result.mixed_records == 1
    assert result.id_conflicts == 1
    assert result.split_people == 2  # A over x and y; D over w and its unmentioned record
    assert result.unassigned == 1
    assert result.true_people == 4 and result.predicted_people == 5
    assert result.review_queue == 4
    assert any("false merges" in line and " 1" in line for line in result.lines())


def test_perfect_prediction() -> None:
    result = score_module.score(TRUTH, dict(TRUTH))
    assert result.precision == result.recall == 1.0
    assert result.false_merges == result.split_people == result.id_conflicts == result.unassigned == 0


def test_same_valid_id_twice_is_no_conflict() -> None:
    ids = {("student", "1"): "110101199001011234", ("hr", "6"): "110101199001011234"}
    assert score_module.score(TRUTH, {r: "one" for r in TRUTH}, ids).id_conflicts == 0


def test_files_round_trip(tmp_path: Path) -> None:
    campus = tmp_path / "campus"
    campus.mkdir()
    (campus / "truth.csv").write_text(
        "source,record,person,national_id_valid\n" + "".join(f"{s},{r},{p},\n" for (s, r), p in TRUTH.items()),
        encoding="utf-8",
    )
    (campus / "student.csv").write_text(
        "学号,姓名,身份证号\n3,甲,110101199001011237\n4,乙,440524188001010014\n5,丙,12345\n", encoding="utf-8"
    )
    identities = tmp_path / "identities.csv"
    identities.write_text(
        "person,source,record,status\n" + "".join(f"{p},{s},{r},active\n" for (s, r), p in PREDICTED.items()),
        encoding="utf-8",
    )
    candidates = tmp_path / "candidates.csv"
    candidates.write_text("id,state\n1,open\n2,merged\n3,open\n", encoding="utf-8")
    ids = score_module.load_national_ids(campus)
    assert ids == {("student", "3"): "110101199001011237", ("student", "4"): "440524188001010014"}
    result = score_module.score_files(campus, identities, candidates)
    assert result.review_queue == 2
    assert result.precision == pytest.approx(4 / 6)
    assert result.id_conflicts == 1
