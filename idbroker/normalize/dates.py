"""Dates as Chinese spreadsheets and exports write them.

Understood: ``2001-02-03``, ``2001/2/3``, ``2001.2.3``, ``20010203``, ``2001年2月3日`` (or 号), any of those
followed by a time (``2001-02-03 00:00:00``, ``2001/02/03 0:00``, ``2001-02-03T08:30``) which is dropped,
full-width digits, `date` and `datetime` objects (a datetime gives its own calendar date), and Excel
serial numbers in the 1900 date system (1 = 1900-01-01; 60, Excel's phantom 1900-02-29, is refused), given
as int, float (the fraction is the time of day) or a digit string of at most 5 digits. An int of 8 digits
is read as YYYYMMDD. Day-first or month-first forms (``03/02/2001``) are ambiguous and refused.
"""

import math
import re
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from idbroker.normalize.errors import InvalidValue
from idbroker.normalize.text import nfkc

_TIME = r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?"
_SEPARATED = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})" + _TIME)
_CHINESE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?" + _TIME)
_EXCEL_EPOCH = date(1899, 12, 30)  # serial 61 = 1900-03-01; below 60 the epoch is one day later
_MAX_SERIAL = (date(9999, 12, 31) - _EXCEL_EPOCH).days


def _make(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidValue("date does not exist") from None


def _from_serial(serial: int) -> date:
    if serial < 1 or serial > _MAX_SERIAL:
        raise InvalidValue("Excel date serial number is out of range")
    if serial == 60:
        raise InvalidValue("Excel date serial 60 is 1900-02-29, which does not exist")
    return _EXCEL_EPOCH + timedelta(days=serial + 1 if serial < 60 else serial)


def _from_int(number: int) -> date:
    if 10_000_101 <= number <= 99_991_231:
        return _make(number // 10_000, number // 100 % 100, number % 100)
    return _from_serial(number)


def _check_time(groups: tuple[str | None, ...]) -> None:
    hour, minute, second = groups
    if hour is not None:
        try:
            time(int(hour), int(minute or 0), int(second or 0))
        except ValueError:
            raise InvalidValue("time of day after the date does not exist") from None


@lru_cache(maxsize=65_536)
def _parse_text(raw: str) -> date | str:
    """Parse a date string — returns the date, or the reason it is invalid (so refusals are cached too)."""
    text = nfkc(raw).strip()
    try:
        if text.isdigit():
            if len(text) == 8:
                return _make(int(text[:4]), int(text[4:6]), int(text[6:]))
            if len(text) <= 5:
                return _from_serial(int(text))
            return "date digits must be YYYYMMDD or an Excel serial number of at most 5 digits"
        match = _SEPARATED.fullmatch(text)
        if match is not None:
            _check_time(match.group(5, 6, 7))
            return _make(int(match[1]), int(match[3]), int(match[4]))
        match = _CHINESE.fullmatch(text)
        if match is not None:
            _check_time(match.group(4, 5, 6))
            return _make(int(match[1]), int(match[2]), int(match[3]))
    except InvalidValue as error:
        return error.reason
    return "date is not in a recognised format (expected year-month-day)"


def parse_date(raw: str | date | datetime | int | float | None) -> date | None:
    """Parse a date from an import; None for None or blank text, `InvalidValue` for impossible dates."""
    if raw is None:
        return None
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, bool):
        raise InvalidValue("a boolean is not a date")
    if isinstance(raw, int):
        return _from_int(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise InvalidValue("date number is not finite")
        return _from_int(math.floor(raw))
    if isinstance(raw, str):
        if not raw.strip():
            return None
        result = _parse_text(raw)
        if isinstance(result, str):
            raise InvalidValue(result)
        return result
    raise InvalidValue(f"a {type(raw).__name__} is not a date")
