"""National IDs: check digit, birth dates, legacy 15-digit numbers, and every single error caught."""

import random
from datetime import date, timedelta

import pytest

from idbroker.normalize import InvalidValue, NationalId, check_digit, make_national_id, parse_national_id


def generated_ids(count: int, seed: int = 11643) -> list[str]:
    rng = random.Random(seed)
    numbers = []
    for _ in range(count):
        region = f"{rng.randrange(110000, 660000):06d}"
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 80))
        numbers.append(make_national_id(region, birth, rng.randrange(0, 1000)))
    return numbers


def test_standard_example_is_accepted() -> None:
    # GB 11643-1999's own example: born 1880, a region code that no longer exists.
    assert parse_national_id("440524188001010014") == NationalId(
        number="440524188001010014", birth_date=date(1880, 1, 1), gender="M", legacy=False
    )


def test_check_digit_values() -> None:
    assert check_digit("44052418800101001") == "4"
    assert check_digit("11010519491231002") == "X"
    with pytest.raises(InvalidValue):
        check_digit("1234")


def test_make_national_id_round_trips() -> None:
    number = make_national_id("110105", date(1985, 3, 7), 124)
    assert len(number) == 18
    parsed = parse_national_id(number)
    assert parsed == NationalId(number=number, birth_date=date(1985, 3, 7), gender="F", legacy=False)
    with pytest.raises(InvalidValue):
        make_national_id("11010", date(1985, 3, 7), 1)
    with pytest.raises(InvalidValue):
        make_national_id("110105", date(1985, 3, 7), 1000)


def test_lowercase_x_and_spaces() -> None:
    parsed = parse_national_id(" 110105 19491231 002x ")
    assert parsed is not None
    assert parsed.number == "11010519491231002X"
    assert parsed.gender == "F"
    full_width = parse_national_id("１１０１０５１９４９１２３１００２ｘ")
    assert full_width == parsed


def test_every_single_digit_change_is_rejected() -> None:
    for number in generated_ids(40):
        alphabet = "0123456789"
        for position in range(18):
            choices = alphabet + ("X" if position == 17 else "")
            for replacement in choices:
                if replacement == number[position]:
                    continue
                changed = number[:position] + replacement + number[position + 1 :]
                with pytest.raises(InvalidValue):
                    parse_national_id(changed)


def test_check_digit_arithmetic_catches_every_single_change() -> None:
    # Independent of birth-date validation: the check character alone tells every change apart.
    for number in generated_ids(40, seed=7):
        body, check = number[:17], number[17]
        for position in range(17):
            for replacement in "0123456789":
                if replacement != body[position]:
                    changed = body[:position] + replacement + body[position + 1 :]
                    assert check_digit(changed) != check


def test_every_adjacent_transposition_is_rejected() -> None:
    tested = 0
    for number in generated_ids(200, seed=3):
        for position in range(17):
            a, b = number[position], number[position + 1]
            if a == b:
                continue
            swapped = number[:position] + b + a + number[position + 2 :]
            with pytest.raises(InvalidValue):
                parse_national_id(swapped)
            if position < 16:
                body = swapped[:17]
                assert check_digit(body) != swapped[17]
            tested += 1
    assert tested > 2000


def test_legacy_fifteen_digit_ids_convert() -> None:
    legacy = parse_national_id("110105491231002")
    modern = parse_national_id("11010519491231002X")
    assert legacy is not None and modern is not None
    assert legacy.number == modern.number == "11010519491231002X"
    assert legacy.legacy and not modern.legacy
    assert legacy.birth_date == date(1949, 12, 31)
    assert legacy.gender == "F"
    assert parse_national_id("440524800101001") == NationalId(
        number="440524198001010013", birth_date=date(1980, 1, 1), gender="M", legacy=True
    )


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_empty_is_none(raw: str | None) -> None:
    assert parse_national_id(raw) is None


def test_rejections_and_reasons() -> None:
    cases = {
        "11010519491231002": "national ID must have 18 characters (or 15 digits), not 17",
        "11010519491231002Y": "national ID must be 17 digits followed by a digit or X",
        "1101051949123100X2": "national ID must be 17 digits followed by a digit or X",
        "11010549123100X": "legacy 15-digit national ID must contain only digits",
        "110105194902300021": "national ID birth date does not exist",
        "110105491330002": "national ID birth date does not exist",
        "110105179912310021": "national ID birth date is before 1800",
        "110105194912310021": "national ID check digit does not match",
        "11010519491231002٣": "national ID contains characters other than digits and X",
    }
    for raw, reason in cases.items():
        with pytest.raises(InvalidValue) as caught:
            parse_national_id(raw)
        assert caught.value.reason == reason, raw


def test_future_birth_date_is_rejected() -> None:
    future = date.today() + timedelta(days=400)
    number = make_national_id("110105", future, 1)
    with pytest.raises(InvalidValue) as caught:
        parse_national_id(number)
    assert caught.value.reason == "national ID birth date is in the future"
    today = make_national_id("110105", date.today(), 1)
    assert parse_national_id(today) is not None
