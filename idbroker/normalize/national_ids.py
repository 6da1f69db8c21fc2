"""Resident identity card numbers (GB 11643-1999, and the 15-digit GB 11643-1989 legacy form).

An 18-character number is 6 region digits, an 8-digit birth date YYYYMMDD, a 3-digit sequence (odd for
men, even for women) and a check digit: S = Σ aᵢ·wᵢ with w = 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, and
S mod 11 = 0..10 → 1 0 X 9 8 7 6 5 4 3 2. It catches every single-digit error and every adjacent
transposition that changes the number.

A 15-digit legacy number has a YYMMDD birth date (19YY) and no check digit; it is converted to its
18-digit form (insert "19", append the check digit), so both forms of one person's number compare equal.

Accepted: surrounding and inner whitespace, full-width digits, lowercase x. Region codes are NOT checked
(historic and unknown codes are real). Rejected: wrong length or characters, a check digit that does not
match, an impossible birth date, a birth date before 1800-01-01 (the standard's own example
440524188001010014 is born in 1880 and is accepted) or after tomorrow (UTC, so that a child born today in
China, ahead of UTC, is not refused). Error reasons never contain the number.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from idbroker.clock import utcnow
from idbroker.normalize.errors import InvalidValue
from idbroker.normalize.text import nfkc

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
EARLIEST_BIRTH = date(1800, 1, 1)


@dataclass(frozen=True, slots=True)
class NationalId:
    number: str  # always the 18-character form, check character uppercase
    birth_date: date
    gender: str  # "M" or "F", from the parity of the sequence number
    legacy: bool  # True when the input was a 15-digit GB 11643-1989 number


def check_digit(first17: str) -> str:
    """The GB 11643-1999 check character ("0"-"9" or "X") for the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit() or not first17.isascii():
        raise InvalidValue("national ID body must be 17 digits")
    total = sum((ord(char) - 48) * weight for char, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def _birth_date(year: int, month: int, day: int) -> date:
    try:
        birth = date(year, month, day)
    except ValueError:
        raise InvalidValue("national ID birth date does not exist") from None
    if birth < EARLIEST_BIRTH:
        raise InvalidValue("national ID birth date is before 1800")
    if birth > utcnow().date() + timedelta(days=1):
        raise InvalidValue("national ID birth date is in the future")
    return birth


def parse_national_id(raw: str | None) -> NationalId | None:
    """Validate and normalize a resident ID number; None for empty input, `InvalidValue` if invalid."""
    if raw is None:
        return None
    text = "".join(nfkc(raw).split()).upper()
    if not text:
        return None
    if not text.isascii():
        raise InvalidValue("national ID contains characters other than digits and X")
    if len(text) == 18:
        body = text[:17]
        if not body.isdigit() or not (text[17].isdigit() or text[17] == "X"):
            raise InvalidValue("national ID must be 17 digits followed by a digit or X")
        birth = _birth_date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
        if check_digit(body) != text[17]:
            raise InvalidValue("national ID check digit does not match")
        gender = "M" if int(text[16]) % 2 else "F"
        return NationalId(number=text, birth_date=birth, gender=gender, legacy=False)
    if len(text) == 15:
        if not text.isdigit():
            raise InvalidValue("legacy 15-digit national ID must contain only digits")
        birth = _birth_date(1900 + int(text[6:8]), int(text[8:10]), int(text[10:12]))
        body = text[:6] + "19" + text[6:]
        return NationalId(
            number=body + check_digit(body),
            birth_date=birth,
            gender="M" if int(text[14]) % 2 else "F",
            legacy=True,
        )
    raise InvalidValue(f"national ID must have 18 characters (or 15 digits), not {len(text)}")


def make_national_id(region: str, birth: date, sequence: int) -> str:
    """A valid 18-character number for generated test data (odd `sequence` → male, even → female)."""
    if len(region) != 6 or not region.isdigit() or not region.isascii():
        raise InvalidValue("region code must be 6 digits")
    if not 0 <= sequence <= 999:
        raise InvalidValue("sequence must be between 0 and 999")
    if not 1000 <= birth.year <= 9999:
        raise InvalidValue("birth year must have four digits")
    body = f"{region}{birth.year:04d}{birth.month:02d}{birth.day:02d}{sequence:03d}"
    return body + check_digit(body)
