"""Adapter discovery: entry points for student/hr, the file adapter for mapping-only sources."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from idbroker.config import Settings
from idbroker.sources.adapter import FileAdapter, SourceAdapter
from idbroker.sources.mapping import UnknownSourceError, load_mapping
from idbroker.sources.registry import AdapterError, adapter_for, available_sources, installed_sources
from idbroker.sources.tables import TableRow, UnreadableFile

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"


def test_student_and_hr_adapters_come_from_entry_points() -> None:
    import idbroker_adapters.hr
    import idbroker_adapters.student

    assert {"student", "hr"} <= set(installed_sources())
    assert adapter_for("student", POLICIES) is idbroker_adapters.student.adapter
    assert adapter_for("hr", POLICIES) is idbroker_adapters.hr.adapter
    for source in ("student", "hr"):
        adapter = adapter_for(source, POLICIES)
        assert isinstance(adapter, SourceAdapter)
        assert adapter.name == source


def test_billing_has_no_adapter_and_gets_the_file_adapter() -> None:
    assert "billing" not in installed_sources()
    assert adapter_for("billing", POLICIES) == FileAdapter(name="billing")


def test_an_operator_defined_source_is_read_through_its_mapping_alone(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES / "sources", policies / "sources")
    (policies / "sources" / "library.yaml").write_text(
        "source: library\nkey: 读者证号\nkey_space: campus\ncolumns: {name: 姓名, phone: 手机}\n",
        encoding="utf-8",
    )
    export = tmp_path / "读者.csv"
    export.write_bytes("读者证号,姓名,手机\r\n1120101234,张帅,13812345678\r\n".encode("gb18030"))

    adapter = adapter_for("library", policies)
    assert adapter == FileAdapter(name="library")
    mapping = load_mapping(policies, "library")
    table = adapter.read(str(export), mapping, Settings(max_import_bytes=1024))
    index = mapping.resolve_header(table.header)
    rows = list(table.rows)
    assert rows == [TableRow(2, ["1120101234", "张帅", "13812345678"])]
    assert index.key_of(rows[0].values) == "1120101234"
    assert index.fields_of(rows[0].values) == {"name": "张帅", "phone": "13812345678"}
    assert "library" in available_sources(policies)


def test_file_adapter_applies_the_size_limit_and_checks_the_mapping(tmp_path: Path) -> None:
    export = tmp_path / "students.csv"
    export.write_text("学号,姓名\n" + "1120101234,张帅\n" * 10, encoding="utf-8")
    adapter = adapter_for("student", POLICIES)
    with pytest.raises(UnreadableFile, match="more than the limit of 50"):
        adapter.read(str(export), load_mapping(POLICIES, "student"), Settings(max_import_bytes=50))
    with pytest.raises(ValueError, match="given the mapping of 'hr'"):
        adapter.read(str(export), load_mapping(POLICIES, "hr"), Settings())


def test_unknown_source_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownSourceError) as caught:
        adapter_for("library", POLICIES)
    assert {"billing", "cas", "hr", "student"} <= set(caught.value.known)
    assert "unknown source 'library'" in str(caught.value)
    assert "billing, cas, hr, student" in str(caught.value)
    with pytest.raises(UnknownSourceError):
        adapter_for("../../etc/passwd", POLICIES)


def install_entry_points(site: Path, lines: str) -> None:
    """A real installed distribution (dist-info on sys.path) registering adapters."""
    info = site / "campus_extra-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: campus-extra\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[idbroker.sources]\n{lines}\n", encoding="utf-8")


def test_a_broken_adapter_only_affects_its_own_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_entry_points(
        tmp_path,
        "broken = idbroker_no_such_module:adapter\n"
        "misnamed = idbroker_adapters.student:adapter\n"
        "notadapter = idbroker.sources.tables:read_table",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert {"broken", "misnamed", "notadapter", "student"} <= set(installed_sources())
    with pytest.raises(AdapterError, match="'broken' \\(idbroker_no_such_module:adapter\\) cannot be loaded"):
        adapter_for("broken", POLICIES)
    with pytest.raises(AdapterError, match="is named 'student' but registered for 'misnamed'"):
        adapter_for("misnamed", POLICIES)
    with pytest.raises(AdapterError, match="is not a source adapter"):
        adapter_for("notadapter", POLICIES)
    assert adapter_for("student", POLICIES).name == "student"
    assert adapter_for("billing", POLICIES) == FileAdapter(name="billing")


def test_the_core_never_imports_an_adapter() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(idbroker_)?adapters\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "idbroker").rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
