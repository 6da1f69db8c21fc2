"""Gender codes."""

import pytest

from idbroker.normalize import InvalidValue, parse_gender


@pytest.mark.parametrize("raw", ["男", "男性", "M", "m", "Male", "MALE", "1", 1, 1.0, " 男 ", "Ｍ"])
def test_male(raw: object) -> None:
    assert parse_gender(raw) == "M"  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["女", "女性", "F", "f", "female", "2", 2, 2.0])
def test_female(raw: object) -> None:
    assert parse_gender(raw) == "F"  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [None, "", "  ", "0", 0, "9", 9, "未知的性别", "未说明的性别"])
def test_empty_or_declared_unknown_is_none(raw: object) -> None:
    assert parse_gender(raw) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["x", "3", 3, 1.5, True, "男女", "man"])
def test_other_values_raise(raw: object) -> None:
    with pytest.raises(InvalidValue):
        parse_gender(raw)  # type: ignore[arg-type]
