"""Dates: every export format, Excel serials, impossible dates."""

from datetime import date, datetime

import pytest

from idbroker.normalize import InvalidValue, parse_date


@pytest.mark.parametrize(
    "raw",
    [
        "2001-02-03",
        "2001/2/3",
        "2001.2.3",
        "2001/02/03",
        "20010203",
        "2001年2月3日",
        "2001 年 02 月 03 日",
        "2001年2月3号",
        "2001-02-03 00:00:00",
        "2001/02/03 0:00",
        "2001-02-03T08:30:15.123",
        "２００１－０２－０３",
        " 2001-2-3 ",
        "36925",
        36925,
        36925.75,
        20010203,
        date(2001, 2, 3),
        datetime(2001, 2, 3, 23, 59),
    ],
)
def test_formats(raw: object) -> None:
    assert parse_date(raw) == date(2001, 2, 3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("serial", "expected"),
    [(1, date(1900, 1, 1)), (59, date(1900, 2, 28)), (61, date(1900, 3, 1)), (45658, date(2025, 1, 1))],
)
def test_excel_serials(serial: int, expected: date) -> None:
    assert parse_date(serial) == expected
    assert parse_date(str(serial)) == expected


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_empty_is_none(raw: str | None) -> None:
    assert parse_date(raw) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("2001-02-30", "date does not exist"),
        ("2001年13月1日", "date does not exist"),
        ("20010230", "date does not exist"),
        ("2001-02-03 24:00", "time of day after the date does not exist"),
        ("60", "Excel date serial 60 is 1900-02-29, which does not exist"),
        (0, "Excel date serial number is out of range"),
        (-5, "Excel date serial number is out of range"),
        ("03/02/2001", "date is not in a recognised format (expected year-month-day)"),
        ("2001-2/3", "date is not in a recognised format (expected year-month-day)"),
        ("200102", "date digits must be YYYYMMDD or an Excel serial number of at most 5 digits"),
        ("yesterday", "date is not in a recognised format (expected year-month-day)"),
        (float("nan"), "date number is not finite"),
        (True, "a boolean is not a date"),
    ],
)
def test_impossible_dates_raise(raw: object, reason: str) -> None:
    for _ in range(2):  # the second call hits the cache and must raise as well
        with pytest.raises(InvalidValue) as caught:
            parse_date(raw)  # type: ignore[arg-type]
        assert caught.value.reason == reason
