"""Reading campus exports: encodings, CSV dialects, XLSX cells, row numbers, and unreadable files."""

from __future__ import annotations

import codecs
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from idbroker.sources.tables import MAX_FIELD_CHARS, Table, TableRow, UnreadableFile, read_table

LIMIT = 10 * 1024 * 1024
HEADER = "学号,姓名,学院,学籍状态"
ROWS = [
    "1120101234,张帅,计算机学院,在读",
    "2120143257,欧阳𠀀华,外国语学院,休学",
]  # 𠀀 exists only in GB18030, not GBK


def write(path: Path, text: str, encoding: str) -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def rows_of(table: Table) -> list[TableRow]:
    return list(table.rows)


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gb18030", "gb18030"), ("utf-16", "utf-16")],
)
def test_csv_encodings_decode_chinese_cells(tmp_path: Path, encoding: str, expected: str) -> None:
    path = write(tmp_path / "students.csv", "\r\n".join([HEADER, *ROWS]) + "\r\n", encoding)
    table = read_table(path, max_bytes=LIMIT)
    assert table.encoding == expected
    assert table.header == ["学号", "姓名", "学院", "学籍状态"]  # no BOM left on 学号
    assert rows_of(table) == [
        TableRow(2, ["1120101234", "张帅", "计算机学院", "在读"]),
        TableRow(3, ["2120143257", "欧阳𠀀华", "外国语学院", "休学"]),
    ]


def test_gbk_export_falls_back_to_gb18030(tmp_path: Path) -> None:
    path = write(tmp_path / "hr.csv", "工号,姓名,部门\n6120170032,张帅,数学系\n", "gbk")
    table = read_table(path, max_bytes=LIMIT)
    assert table.encoding == "gb18030"
    assert rows_of(table)[0].values == ["6120170032", "张帅", "数学系"]


def test_row_numbers_follow_the_spreadsheet_with_embedded_newlines_and_blank_lines(tmp_path: Path) -> None:
    text = '学号,姓名,备注\n1,甲,"第一行\n第二行"\n2,"乙, 丙",x\n\n3,丁,"多""引号"""\n'
    table = read_table(write(tmp_path / "t.csv", text, "utf-8"), max_bytes=LIMIT)
    assert rows_of(table) == [
        TableRow(2, ["1", "甲", "第一行\n第二行"]),
        TableRow(3, ["2", "乙, 丙", "x"]),
        TableRow(5, ["3", "丁", '多"引号"']),  # row 4 is the blank line, skipped but counted
    ]
    assert table.expected_rows == 4


def test_cells_are_stripped_and_header_is_normalised(tmp_path: Path) -> None:
    text = "学号,\u3000姓名 ,ＥＭＡＩＬ,\u200b学院\n 1120101234 ,\u3000张帅\u3000,a@example.edu.cn,\n"
    table = read_table(write(tmp_path / "t.csv", text, "utf-8"), max_bytes=LIMIT)
    assert table.header == ["学号", "姓名", "EMAIL", "学院"]
    assert rows_of(table)[0].values == ["1120101234", "张帅", "a@example.edu.cn", ""]


def test_leading_blank_lines_move_the_header_and_trailing_empty_columns_are_dropped(tmp_path: Path) -> None:
    text = "\n学号,姓名,,\n1,甲,,\n2,乙\n"
    table = read_table(write(tmp_path / "t.csv", text, "utf-8"), max_bytes=LIMIT)
    assert (table.header_row, table.header) == (2, ["学号", "姓名"])
    # an empty cell beyond the header is dropped; a short row stays short for the importer to report
    assert rows_of(table) == [TableRow(3, ["1", "甲"]), TableRow(4, ["2", "乙"])]
    text = "学号,姓名,学院\n1,甲\n"
    assert rows_of(read_table(write(tmp_path / "s.csv", text, "utf-8"), max_bytes=LIMIT))[0].values == [
        "1",
        "甲",
    ]


@pytest.mark.parametrize(("name", "text"), [("t.csv", "学号;姓名\n1;甲\n"), ("t.csv", "学号\t姓名\n1\t甲\n")])
def test_semicolon_and_tab_delimiters_are_sniffed(tmp_path: Path, name: str, text: str) -> None:
    table = read_table(write(tmp_path / name, text, "utf-8"), max_bytes=LIMIT)
    assert table.header == ["学号", "姓名"]
    assert rows_of(table)[0].values == ["1", "甲"]


def test_tsv_is_always_tab_separated(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "t.tsv", "学号\t备注\n1\ta,b;c\n", "utf-8"), max_bytes=LIMIT)
    assert rows_of(table)[0].values == ["1", "a,b;c"]


def test_a_comma_in_a_quoted_header_does_not_change_the_delimiter(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "t.csv", '学号,"姓名;别名"\n1,甲\n', "utf-8"), max_bytes=LIMIT)
    assert table.header == ["学号", "姓名;别名"]


def expect_unreadable(path: Path, reason: str, max_bytes: int = LIMIT) -> UnreadableFile:
    with pytest.raises(UnreadableFile) as caught:
        read_table(path, max_bytes=max_bytes)
    assert caught.value.name == str(path)
    assert str(path) in str(caught.value)
    assert reason in caught.value.reason
    return caught.value


def test_undecodable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes("学号,姓名\n".encode() + b"1,\xff\xff\xff\n")  # 0xFF starts nothing in UTF-8 or GB18030
    expect_unreadable(path, "not in a supported encoding")


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"\x00\x01\x02garbage\x00")
    expect_unreadable(path, "binary")


def test_empty_and_headerless_files_are_refused(tmp_path: Path) -> None:
    expect_unreadable(write(tmp_path / "empty.csv", "", "utf-8"), "empty")
    expect_unreadable(write(tmp_path / "blank.csv", "\n\n , \n", "utf-8"), "no header")
    expect_unreadable(write(tmp_path / "bom.csv", "", "utf-8-sig"), "no header")


def test_header_only_file_is_a_table_without_rows(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "t.csv", HEADER + "\n", "utf-8"), max_bytes=LIMIT)
    assert table.header[0] == "学号"
    assert rows_of(table) == []


def test_too_big_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = write(tmp_path / "big.csv", "\n".join([HEADER, *ROWS]), "utf-8")
    error = expect_unreadable(path, "more than the limit of 64", max_bytes=64)
    assert "IDBROKER_MAX_IMPORT_BYTES" in str(error)


def test_missing_directory_and_unknown_kinds_are_refused(tmp_path: Path) -> None:
    expect_unreadable(tmp_path / "nowhere.csv", "no such file")
    expect_unreadable(tmp_path, "directory")
    expect_unreadable(write(tmp_path / "t.json", '{"学号": 1}', "utf-8"), "not a CSV or XLSX")
    legacy = tmp_path / "old.xls"
    legacy.write_bytes(codecs.decode("d0cf11e0a1b11ae1", "hex") + b"\x00" * 100)
    expect_unreadable(legacy, "legacy .xls")
    expect_unreadable(write(tmp_path / "fake.xlsx", "学号,姓名\n", "utf-8"), "not a valid XLSX")


def test_malformed_quoting_refuses_the_file_naming_the_row(tmp_path: Path) -> None:
    text = '学号,姓名\n1,甲\n2,"乙"x\n3,丙\n'
    expect_unreadable(write(tmp_path / "t.csv", text, "utf-8"), "row 3: malformed CSV")
    unterminated = '学号,姓名\n1,甲\n2,"乙\n3,丙\n'
    expect_unreadable(write(tmp_path / "u.csv", unterminated, "utf-8"), "malformed CSV")


def test_absurdly_long_field_refuses_the_file(tmp_path: Path) -> None:
    text = "学号,姓名\n1," + "甲" * (MAX_FIELD_CHARS + 1) + "\n"
    expect_unreadable(write(tmp_path / "t.csv", text, "utf-8"), "row 2: malformed CSV (field larger than")


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def test_xlsx_numbers_dates_and_row_numbers(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "students.xlsx",
        [
            ["学号", "姓名", "出生日期", "入学年份", "学分", "登记时间"],
            [1120101234, "张帅", date(2002, 3, 4), 2020, 3.5, datetime(2020, 9, 1, 8, 30)],
            [2120143257.0, " 李\u3000四 ", "2001/12/31", 2021.0, None, None],
            [],
            ["3120190289", "王五"],
            [],
            [],
        ],
    )
    table = read_table(path, max_bytes=LIMIT)
    assert table.encoding == "xlsx"
    assert table.header == ["学号", "姓名", "出生日期", "入学年份", "学分", "登记时间"]
    assert rows_of(table) == [
        TableRow(2, ["1120101234", "张帅", "2002-03-04", "2020", "3.5", "2020-09-01"]),
        TableRow(3, ["2120143257", "李\u3000四", "2001/12/31", "2021", "", ""]),
        TableRow(5, ["3120190289", "王五", "", "", "", ""]),  # short rows are padded to the header
    ]


def test_xlsx_header_is_normalised_and_may_follow_empty_rows(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet["A3"], sheet["B3"], sheet["C3"] = "\ufeffｕｉｄ", "\u3000cn", None
    sheet["A4"], sheet["B4"], sheet["E4"] = "u001", "甲", None
    workbook.save(tmp_path / "cas.xlsx")
    table = read_table(tmp_path / "cas.xlsx", max_bytes=LIMIT)
    assert (table.header_row, table.header) == (3, ["uid", "cn"])
    assert rows_of(table) == [TableRow(4, ["u001", "甲"])]


def test_xlsx_uses_the_first_sheet(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(["学号"])
    workbook.active.append(["1"])
    other = workbook.create_sheet("其他")
    other.append(["工号"])
    workbook.save(tmp_path / "two.xlsx")
    table = read_table(tmp_path / "two.xlsx", max_bytes=LIMIT)
    assert table.header == ["学号"]
    assert [row.values for row in table.rows] == [["1"]]


def test_empty_workbook_and_non_workbook_zip_are_refused(tmp_path: Path) -> None:
    openpyxl.Workbook().save(tmp_path / "empty.xlsx")
    expect_unreadable(tmp_path / "empty.xlsx", "no header")
    with zipfile.ZipFile(tmp_path / "notes.xlsx", "w") as archive:
        archive.writestr("notes.txt", "hello")
    expect_unreadable(tmp_path / "notes.xlsx", "not a valid XLSX")


def test_xlsx_zip_bomb_is_refused(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "bomb.xlsx", [["学号"], ["1"]])
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/padding.bin", b"\x00" * (5 * 1024 * 1024))
    expect_unreadable(path, "zip bomb", max_bytes=LIMIT)


def test_xlsx_with_a_corrupt_member_is_refused_before_any_row(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "broken.xlsx", [["学号", "姓名"], *[[str(n), "甲"] for n in range(200)]])
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("xl/worksheets/sheet1.xml")
    start = member.header_offset + 30 + len(member.filename) + len(member.extra)
    data[start + member.compress_size // 2] ^= 0xFF  # flip bits in the middle of the sheet's data
    path.write_bytes(bytes(data))
    expect_unreadable(path, "workbook")
