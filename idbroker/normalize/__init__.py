"""Turning messy campus values (names, phones, national IDs, dates, emails, genders) into comparable ones.

Every function is pure and fast; each returns None for empty input and raises `InvalidValue` (a
`ValueError` with a `.reason` that never echoes the value) for input that cannot be right.
"""

from idbroker.normalize.dates import parse_date
from idbroker.normalize.emails import normalize_email
from idbroker.normalize.errors import InvalidValue
from idbroker.normalize.gender import parse_gender
from idbroker.normalize.names import NormalizedName, name_similarity, normalize_name
from idbroker.normalize.national_ids import NationalId, check_digit, make_national_id, parse_national_id
from idbroker.normalize.phones import Phone, normalize_phone
from idbroker.normalize.text import clean_text

__all__ = [
    "InvalidValue",
    "NationalId",
    "NormalizedName",
    "Phone",
    "check_digit",
    "clean_text",
    "make_national_id",
    "name_similarity",
    "normalize_email",
    "normalize_name",
    "normalize_phone",
    "parse_date",
    "parse_gender",
    "parse_national_id",
]
