"""Phones: Chinese spellings to one E.164, kinds, rejections."""

import random

import phonenumbers
import pytest

from idbroker.normalize import InvalidValue, Phone, normalize_phone


@pytest.mark.parametrize(
    "raw",
    [
        "+86 138 1234 5678",
        "138-1234-5678",
        "13812345678",
        "8613812345678",
        "(+86)13812345678",
        "008613812345678",
        "１３８ １２３４ ５６７８",
        " 138.1234.5678 ",
    ],
)
def test_mobile_spellings_are_one_number(raw: str) -> None:
    assert normalize_phone(raw) == Phone(e164="+8613812345678", kind="mobile")


@pytest.mark.parametrize("raw", ["０１０-６２７８ ２１１４", "010-62782114", "(010)62782114", "+86 10 6278 2114"])
def test_fixed_line(raw: str) -> None:
    assert normalize_phone(raw) == Phone(e164="+861062782114", kind="fixed_line")


def test_foreign_numbers_keep_their_country() -> None:
    uk = normalize_phone("+44 20 7946 0958")
    assert uk == Phone(e164="+442079460958", kind="fixed_line")
    us = normalize_phone("+1 650-253-0000")
    assert us is not None
    assert us.e164 == "+16502530000"
    assert us.kind == "other"  # US numbers cannot be told apart: fixed line or mobile


def test_region_reads_national_numbers() -> None:
    phone = normalize_phone("020 7946 0958", region="GB")
    assert phone is not None
    assert phone.e164 == "+442079460958"


@pytest.mark.parametrize("raw", [None, "", "   ", "\u3000"])
def test_empty_is_none(raw: str | None) -> None:
    assert normalize_phone(raw) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("123", "phone number has an impossible length"),
        ("12345678901", "phone number is not a valid number for its country"),
        ("010-62782114转8001", "phone number contains characters other than digits and separators"),
        ("138abcd5678", "phone number contains characters other than digits and separators"),
        ("86+13812345678", "phone number contains characters other than digits and separators"),
    ],
)
def test_impossible_numbers_raise(raw: str, reason: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        normalize_phone(raw)
    assert caught.value.reason == reason


def test_invalid_numbers_raise_again_when_cached() -> None:
    for _ in range(2):
        with pytest.raises(InvalidValue):
            normalize_phone("12345678901")


def expected_by_phonenumbers(spelling: str) -> Phone | None:
    """What a full phonenumbers parse says, or None when it rejects the number."""
    try:
        parsed = phonenumbers.parse(spelling, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    kind = {
        phonenumbers.PhoneNumberType.MOBILE: "mobile",
        phonenumbers.PhoneNumberType.FIXED_LINE: "fixed_line",
    }.get(phonenumbers.number_type(parsed), "other")
    return Phone(e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), kind=kind)


def test_fast_path_agrees_with_phonenumbers() -> None:
    # Chinese mobiles skip the full parse; the answer must be what phonenumbers itself says.
    rng = random.Random(86)
    valid = 0
    for _ in range(3000):
        digits = "1" + "".join(rng.choice("0123456789") for _ in range(10))
        for spelling in (digits, "+86" + digits, "86" + digits, "0086" + digits):
            expected = expected_by_phonenumbers(spelling)
            if expected is None:
                with pytest.raises(InvalidValue):
                    normalize_phone(spelling)
            else:
                assert normalize_phone(spelling) == expected, spelling
                valid += 1
    assert valid > 3000
