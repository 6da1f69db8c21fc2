"""Gender codes from imports, to "M" or "F".

Understood: 男/女, 男性/女性, M/F, male/female (any case, full-width too), and the GB/T 2261.1 codes 1 (male)
and 2 (female) as text, int or a whole float. The GB/T 2261.1 codes for "not known" (0, 未知的性别) and
"not stated" (9, 未说明的性别) give None, like an empty value. Anything else raises `InvalidValue`.
"""

from idbroker.normalize.errors import InvalidValue
from idbroker.normalize.text import nfkc

_CODES = {
    "男": "M",
    "男性": "M",
    "m": "M",
    "male": "M",
    "1": "M",
    "女": "F",
    "女性": "F",
    "f": "F",
    "female": "F",
    "2": "F",
}
_UNKNOWN = frozenset({"0", "9", "未知", "未知的性别", "未说明", "未说明的性别"})


def parse_gender(raw: str | int | float | None) -> str | None:
    """Return "M", "F", or None for empty / explicitly unknown values; `InvalidValue` for anything else."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise InvalidValue("a boolean is not a gender code")
    if isinstance(raw, float):
        if not raw.is_integer():
            raise InvalidValue("gender code is not a whole number")
        raw = int(raw)
    text = str(raw) if isinstance(raw, int) else nfkc(raw).strip().casefold()
    if not text or text in _UNKNOWN:
        return None
    gender = _CODES.get(text)
    if gender is None:
        raise InvalidValue("gender is not one of 男/女, M/F, male/female, 1/2")
    return gender
