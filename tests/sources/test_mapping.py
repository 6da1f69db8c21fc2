"""Source column mappings: the default files, header resolution, vocabularies, and errors with lines."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from idbroker.demo import campus
from idbroker.policy import PolicyError
from idbroker.sources.mapping import (
    MappingError,
    SourceMapping,
    UnknownSourceError,
    UnknownValue,
    known_sources,
    load_mapping,
)

POLICIES = Path(__file__).resolve().parents[2] / "policies"

STUDENT_HEADER, HR_HEADER, CAS_HEADER, BILLING_HEADER = (
    list(h) for h in (campus.STUDENT_HEADER, campus.HR_HEADER, campus.CAS_HEADER, campus.BILLING_HEADER)
)


def test_the_default_sources_are_known() -> None:
    assert known_sources(POLICIES) == ["billing", "cas", "hr", "student"]


@pytest.mark.parametrize(
    ("source", "header", "key"),
    [
        ("student", STUDENT_HEADER, "学号"),
        ("hr", HR_HEADER, "工号"),
        ("cas", CAS_HEADER, "uid"),
        ("billing", BILLING_HEADER, "account"),
    ],
)
def test_default_mappings_cover_the_default_layouts(source: str, header: list[str], key: str) -> None:
    mapping = load_mapping(POLICIES, source)
    assert (mapping.source, mapping.key, mapping.key_space) == (source, key, "campus")
    index = mapping.resolve_header(header)
    assert index.absent == ()  # every mapped column is in the default layout
    assert header[index.key] == key
    mapped = {header[at] for at in index.fields.values()} | {key}
    assert mapped == set(header)  # and every column of the layout is mapped


def test_student_row_resolves_to_canonical_fields() -> None:
    mapping = load_mapping(POLICIES, "student")
    index = mapping.resolve_header(STUDENT_HEADER)
    row = [
        "1120101234",
        "张帅",
        "男",
        "2002-03-04",
        "",
        "本科",
        "2020",
        "计算机学院",
        "13812345678",
        "",
        "在读",
    ]
    fields = index.fields_of(row)
    assert index.key_of(row) == "1120101234"
    assert "national_id" not in fields and "email" not in fields  # empty cells are absent, not ""
    assert fields["name"] == "张帅" and fields["org"] == "计算机学院"
    assert mapping.translate("level", fields["level"]) == "bachelor"
    assert mapping.translate("status", fields["status"]) == "active"
    assert mapping.affiliation_of(fields) == "student"
    assert mapping.is_active("suspended") and not mapping.is_active("graduated")


def test_closed_vocabularies_refuse_unknown_values() -> None:
    mapping = load_mapping(POLICIES, "student")
    with pytest.raises(UnknownValue, match="unknown level '专科' \\(expected one of: 本科, 硕士, 博士\\)"):
        mapping.translate("level", "专科")
    assert mapping.translate("level", " 博士\u3000") == "doctoral"  # stripped and NFKC-normalised
    assert mapping.translate("level", "master") == "master"  # a canonical value is accepted as is
    assert mapping.translate("org", "数学系") == "数学系"  # no vocabulary: kept


def test_hr_statuses_and_cas_affiliation_column() -> None:
    hr = load_mapping(POLICIES, "hr")
    assert [hr.translate("status", raw) for raw in ("在职", "离职", "退休", "调出")] == [
        "active",
        "left",
        "retired",
        "transferred",
    ]
    assert hr.is_active("active") and not hr.is_active("retired")
    assert hr.affiliation_of({}) == "staff"
    cas = load_mapping(POLICIES, "cas")
    index = cas.resolve_header(CAS_HEADER)
    fields = index.fields_of(["1120101234", "张帅", "", "", "student"])
    assert cas.affiliation_of(fields) == "student"
    assert cas.affiliation_of({}) is None


def test_header_is_matched_after_normalisation() -> None:
    mapping = load_mapping(POLICIES, "cas")
    index = mapping.resolve_header(["\ufeffｕｉｄ", "\u3000cn ", "备注"])
    assert (index.key, index.fields, index.width) == (0, {"name": 1}, 3)
    assert set(index.absent) == {"email", "phone", "affiliation"}


def test_missing_required_columns_are_named() -> None:
    mapping = load_mapping(POLICIES, "student")
    with pytest.raises(MappingError) as caught:
        mapping.resolve_header(["身份证号", "手机号"])
    assert caught.value.missing == ["学号", "姓名"]
    assert "missing required column(s) 学号 (key), 姓名 (name); the header has: 身份证号, 手机号" in str(caught.value)
    # CAS requires only its key: an export without cn is fine
    assert load_mapping(POLICIES, "cas").resolve_header(["uid"]).fields == {}


def test_a_mapped_column_twice_in_the_header_is_refused() -> None:
    mapping = load_mapping(POLICIES, "billing")
    with pytest.raises(MappingError, match="column 'mobile' is in the header twice \\(columns 2 and 4\\)"):
        mapping.resolve_header(["account", "mobile", "name", "mobile"])
    mapping.resolve_header(["account", "name", "备注", "备注"])  # an unmapped duplicate is harmless


def write_mapping(folder: Path, source: str, text: str) -> Path:
    (folder / "sources").mkdir(parents=True, exist_ok=True)
    path = folder / "sources" / f"{source}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


LIBRARY = """\
source: library
key: 读者证号
columns:
  name: 姓名
  phone: 手机
extra:
  card_type: 证件类型
required: [key, name, card_type]
"""


def test_operator_defined_mapping_with_extra_fields_and_defaults(tmp_path: Path) -> None:
    write_mapping(tmp_path, "library", LIBRARY)
    mapping = load_mapping(tmp_path, "library")
    assert mapping.key_space == "library"  # default: its own numbers
    assert mapping.affiliation is None and mapping.active_statuses == ["active"]
    index = mapping.resolve_header(["证件类型", "读者证号", "姓名"])
    assert index.extra_of(["本科生证", "L001", "甲"]) == {"card_type": "本科生证"}
    with pytest.raises(MappingError, match="证件类型 \\(card_type\\)"):
        mapping.resolve_header(["读者证号", "姓名"])


def policy_error(tmp_path: Path, source: str, text: str) -> PolicyError:
    path = write_mapping(tmp_path, source, text)
    with pytest.raises(PolicyError) as caught:
        load_mapping(tmp_path, source)
    assert str(caught.value).startswith(f"{path}:")
    return caught.value


def default_text(source: str) -> str:
    return (POLICIES / "sources" / f"{source}.yaml").read_text(encoding="utf-8")


def line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_unknown_canonical_field_is_reported_at_its_line(tmp_path: Path) -> None:
    text = default_text("student").replace("  org: 学院", "  college: 学院")
    error = policy_error(tmp_path, "student", text)
    assert error.line == line_of(text, "college: 学院")
    assert "columns.college: Input should be 'name', 'gender'" in str(error)


def test_unknown_top_level_key_is_reported_at_its_line(tmp_path: Path) -> None:
    text = default_text("hr").replace("key_space: campus", "keyspace: campus")
    error = policy_error(tmp_path, "hr", text)
    assert error.line == line_of(text, "keyspace: campus")
    assert "keyspace: unknown key (allowed here: source, key, key_space, affiliation, columns," in str(error)


def test_wrong_type_is_reported_at_its_line(tmp_path: Path) -> None:
    text = default_text("student").replace("active_statuses: [active, suspended]", "active_statuses: {a: 1}")
    error = policy_error(tmp_path, "student", text)
    assert error.line == line_of(text, "active_statuses:")
    assert "active_statuses: Input should be a valid list" in str(error)


def test_yaml_syntax_error_is_reported_at_its_line(tmp_path: Path) -> None:
    text = default_text("billing").replace("  phone: mobile", "  phone: [mobile")
    error = policy_error(tmp_path, "billing", text)
    assert "YAML syntax error" in str(error)
    assert error.line is not None and error.line >= line_of(text, "phone: [mobile")


def test_source_must_match_the_file_name(tmp_path: Path) -> None:
    text = default_text("billing").replace("source: billing", "source: card")
    error = policy_error(tmp_path, "billing", text)
    assert error.line == line_of(text, "source: card")
    assert "source is 'card' but the file is billing.yaml" in str(error)


@pytest.mark.parametrize(
    ("replace", "by", "line_fragment", "message"),
    [
        ("  status: {在读", "  stage: {在读", "stage: {在读", "values.stage: Input should be"),
        (
            "active_statuses: [active, suspended]",
            "active_statuses: [active, studying]",
            "active_statuses:",
            "studying is not a status in values.status",
        ),
        (
            "required: [key, name]",
            "required: [key, name, dormitory]",
            "required:",
            "required dormitory is not mapped to a column",
        ),
        ("  email: 电子邮箱", "  email: ' '", "columns:", "a column name cannot be empty"),
        (
            "affiliation: student",
            "affiliation: {column: 身份}\nextra: {gender: 性别}",
            "extra:",
            "'gender' is a canonical field: map it under `columns:`",
        ),
        (
            "source: student",
            "source: student\nsource: student",
            "source: student\nsource",
            "duplicate key 'source'",
        ),
    ],
)
def test_inconsistent_mappings_are_refused(
    tmp_path: Path, replace: str, by: str, line_fragment: str, message: str
) -> None:
    text = default_text("student")
    assert replace in text
    text = text.replace(replace, by)
    error = policy_error(tmp_path, "student", text)
    fragment = line_fragment.split("\n")[-1]
    expected_line = line_of(text, fragment) + (1 if "\n" in line_fragment else 0)
    assert error.line == expected_line
    assert message in str(error)


def test_values_for_an_unmapped_field_are_refused(tmp_path: Path) -> None:
    text = default_text("student").replace("  level: 培养层次          # degree level\n", "")
    error = policy_error(tmp_path, "student", text)
    assert error.line == line_of(text, "values:")
    assert "values are given for 'level', which no column is mapped to" in str(error)


def test_affiliation_both_fixed_and_a_column_is_refused(tmp_path: Path) -> None:
    text = default_text("billing").replace("columns:", "affiliation: member\ncolumns:\n  affiliation: type")
    error = policy_error(tmp_path, "billing", text)
    assert "affiliation is given both" in str(error)


def test_unknown_and_invalid_sources_list_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownSourceError) as caught:
        load_mapping(POLICIES, "library")
    assert caught.value.known == ["billing", "cas", "hr", "student"]
    assert "unknown source 'library': no mapping file (known sources: billing, cas, hr, student)" in str(caught.value)
    with pytest.raises(UnknownSourceError, match=re.escape("unknown source '../student'")):
        load_mapping(POLICIES, "../student")
    shutil.copytree(POLICIES / "sources", tmp_path / "sources")
    (tmp_path / "sources" / "Bad Name.yaml").write_text("source: x\n", encoding="utf-8")
    assert known_sources(tmp_path) == ["billing", "cas", "hr", "student"]
    assert known_sources(tmp_path / "nowhere") == []


def test_mapping_is_immutable() -> None:
    mapping = load_mapping(POLICIES, "student")
    with pytest.raises(ValueError, match="frozen"):
        mapping.key = "工号"  # type: ignore[misc]
    assert isinstance(mapping, SourceMapping)
