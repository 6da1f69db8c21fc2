"""Phone numbers: any common Chinese spelling to E.164 plus a coarse kind.

``+86 138 1234 5678``, ``138-1234-5678``, ``8613812345678``, ``(+86)13812345678``, ``008613812345678``
and full-width ``０１０-６２７８ ２１１４`` are all understood. Numbers with a leading ``+`` keep their own
country; other numbers are read in `region` (default CN). Parsing uses `phonenumbers` and is cached on
the digits-only string, so the common case (the same value seen again) costs a dictionary lookup. Chinese
mobile numbers, nearly all distinct, take a fast path: a match against `phonenumbers`' own CN mobile
pattern, which gives the same answer as a full parse (tests compare the two) at a tenth of the cost.

Rejected with `InvalidValue`: letters or other symbols (including extensions such as ``转 8001``), and
numbers that `phonenumbers` does not consider valid for their country (wrong length, unallocated prefix).
"""

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from idbroker.normalize.errors import InvalidValue
from idbroker.normalize.text import nfkc

# Separators people put inside phone numbers; everything else except digits and one leading + is refused.
_SEPARATORS = str.maketrans(dict.fromkeys(" \t\u00a0-‐‑–—.()/[]", None))

_CN_MOBILE = re.compile(phonenumbers.PhoneMetadata.metadata_for_region("CN").mobile.national_number_pattern)

_KINDS = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
}


@dataclass(frozen=True, slots=True)
class Phone:
    e164: str
    kind: str  # "mobile" | "fixed_line" | "other"


def _cn_mobile(compact: str, region: str) -> str | None:
    """The 11-digit national number if `compact` is a Chinese mobile number in a common spelling."""
    if compact.startswith("+86"):
        national = compact[3:]
    elif region != "CN":
        return None
    elif len(compact) == 11:
        national = compact
    elif compact.startswith("0086"):
        national = compact[4:]
    elif compact.startswith("86"):
        national = compact[2:]
    else:
        return None
    return national if len(national) == 11 and _CN_MOBILE.fullmatch(national) else None


@lru_cache(maxsize=65_536)
def _parse(number: str, region: str) -> Phone | str:
    """Parse `number` ("+" and digits, or digits) — returns a Phone, or the reason it is invalid."""
    try:
        parsed = phonenumbers.parse(number, region)
    except NumberParseException:
        return "phone number cannot be parsed"
    if not phonenumbers.is_possible_number(parsed):
        return "phone number has an impossible length"
    if not phonenumbers.is_valid_number(parsed):
        return "phone number is not a valid number for its country"
    kind = _KINDS.get(phonenumbers.number_type(parsed), "other")
    return Phone(e164=phonenumbers.format_number(parsed, PhoneNumberFormat.E164), kind=kind)


@lru_cache(maxsize=65_536)
def _normalize(raw: str, region: str) -> Phone | str | None:
    """A Phone, None for blank input, or the reason the number is invalid (so refusals are cached too)."""
    compact = nfkc(raw).strip().translate(_SEPARATORS)
    if not compact:
        return None
    digits = compact[1:] if compact[0] == "+" else compact
    if not digits.isdigit() or not digits.isascii():
        return "phone number contains characters other than digits and separators"
    mobile = _cn_mobile(compact, region)
    if mobile is not None:
        return Phone(e164="+86" + mobile, kind="mobile")
    return _parse(compact, region)


def normalize_phone(raw: str | None, region: str = "CN") -> Phone | None:
    """Normalize a phone number to E.164; None for empty input, `InvalidValue` for impossible numbers."""
    if raw is None:
        return None
    result = _normalize(raw, region)
    if isinstance(result, str):
        raise InvalidValue(result)
    return result
