"""Personal names: a display form, an exact comparison key and a pinyin key for romanised names.

Three kinds of input are recognised:

* Han names (张帅, 張帥, 张 帅, 欧阳娜娜, 买买提·艾力): spaces removed, every middle-dot look-alike written as
  ``·`` in `display`; `key` is the simplified form (OpenCC t2s) without dots; `pinyin` is
  ``sorted([surname, given])`` joined by one space, e.g. 张帅 → ``"shuai zhang"``. Surnames are read from
  `surnames.py` (曾 → zeng, 欧阳 → ouyang), given names with `pypinyin.lazy_pinyin`, syllables joined.
  Names with a middle dot (minority names) give one token per dot-separated part. ü is written v.
* Latin names (``Zhang Shuai``, ``SHUAI ZHANG``, ``Zhang, Shuai``): `display` is the cleaned text; `key`
  is the lowercase tokens (split on spaces, commas and hyphens) sorted and joined by one space. `pinyin`
  equals `key` for plain names; it differs only where romanisation variants need folding: tone marks are
  dropped, ü/u: become v, apostrophes and periods are removed and hyphenated parts are joined
  (``Shuai-Qi`` → ``shuaiqi``, matching 帅奇).
* Other scripts (Cyrillic, kana, Hangul…): `key` as for Latin names, `pinyin` is None.

Errors: None, empty or whitespace-only input gives None. Input with digits, with symbols, without any
letter, or mixing Han characters with Latin letters raises `InvalidValue`.
"""

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import opencc
from pypinyin import Style, lazy_pinyin, pinyin
from rapidfuzz import fuzz
from rapidfuzz.distance import Hamming

from idbroker.normalize.errors import InvalidValue
from idbroker.normalize.surnames import COMPOUND_SURNAMES, SINGLE_SURNAME_READINGS
from idbroker.normalize.text import clean_text

_T2S = opencc.OpenCC("t2s")

# Characters written between the parts of a transliterated minority name, all shown as "·".
_NAME_DOTS = "·・•‧∙⋅.﹒ㆍ･-‐‑–—"
_DOT_TO_MIDDLE = str.maketrans(dict.fromkeys(_NAME_DOTS, "·"))
_LATIN_SEPARATORS = " ,.'’-‐‑"
_SPLIT_KEY = re.compile(r"[\s,\-‐‑·・•‧∙⋅]+")
_SPLIT_PINYIN = re.compile(r"[\s,·・•‧∙⋅]+")
_DROP_IN_PINYIN = str.maketrans({"'": None, "’": None, ".": None, "-": None, "‐": None, "‑": None})
_U_UMLAUT = str.maketrans(dict.fromkeys("üǖǘǚǜ", "v"))

FUZZY_THRESHOLD = 85.0  # rapidfuzz.fuzz.ratio score (0-100) at which two keys count as a likely typo


@dataclass(frozen=True, slots=True)
class NormalizedName:
    display: str
    key: str
    pinyin: str | None
    is_han: bool


def _is_han(char: str) -> bool:
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x3134F
        or 0xF900 <= code <= 0xFAFF
        or code == 0x3007  # 〇
    )


def _is_latin_letter(char: str) -> bool:
    code = ord(char)
    return char.isalpha() and (code < 0x250 or 0x1E00 <= code <= 0x1EFF)


@lru_cache(maxsize=65_536)
def _simplified(text: str) -> str:
    return _T2S.convert(text)


@lru_cache(maxsize=65_536)
def _syllables(chars: str) -> str:
    """Toneless pinyin of `chars` with the syllables joined: 帅奇 → shuaiqi."""
    return "".join(lazy_pinyin(chars))


def _surname_reading(simplified_surname: str, original: str) -> str:
    reading = COMPOUND_SURNAMES.get(simplified_surname) or SINGLE_SURNAME_READINGS.get(simplified_surname)
    return reading if reading is not None else _syllables(original)


def _han_name(text: str) -> NormalizedName:
    compact = text.replace(" ", "").translate(_DOT_TO_MIDDLE)
    parts = [part for part in compact.split("·") if part]
    if not parts:
        raise InvalidValue("name has no letters")
    display = "·".join(parts)
    key = _simplified("".join(parts))
    if len(parts) > 1:
        tokens = [_syllables(part) for part in parts]
    else:
        surname_len = 2 if len(key) >= 3 and key[:2] in COMPOUND_SURNAMES else 1
        tokens = [_surname_reading(key[:surname_len], display[:surname_len])]
        if len(display) > surname_len:
            tokens.append(_syllables(display[surname_len:]))
    return NormalizedName(display=display, key=key, pinyin=" ".join(sorted(tokens)), is_han=True)


def _sorted_tokens(text: str, splitter: re.Pattern[str]) -> str:
    return " ".join(sorted(token for token in splitter.split(text) if token))


def _latin_pinyin(text: str) -> str:
    folded = text.casefold().replace("u:", "v").translate(_U_UMLAUT)
    decomposed = unicodedata.normalize("NFD", folded)
    toneless = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _sorted_tokens(toneless.translate(_DROP_IN_PINYIN), _SPLIT_PINYIN)


@lru_cache(maxsize=131_072)
def _normalize(raw: str) -> NormalizedName | None:
    text = clean_text(raw)
    if text is None:
        return None
    has_han = has_latin = has_other = False
    for char in text:
        if _is_han(char):
            has_han = True
        elif _is_latin_letter(char):
            has_latin = True
        elif char.isalpha():
            has_other = True
        elif char.isdigit():
            raise InvalidValue("name contains digits")
        elif char not in _LATIN_SEPARATORS and char not in _NAME_DOTS:
            raise InvalidValue("name contains characters that are not letters")
    if has_han and has_latin:
        raise InvalidValue("name mixes Han characters and Latin letters")
    if not (has_han or has_latin or has_other):
        raise InvalidValue("name has no letters")
    if has_han and not has_other:
        return _han_name(text)
    key = _sorted_tokens(text.casefold(), _SPLIT_KEY)
    if not key.replace(".", "").replace("'", "").replace("’", "").strip():
        raise InvalidValue("name has no letters")
    pinyin = _latin_pinyin(text) if has_latin and not has_other else None
    return NormalizedName(display=text, key=key, pinyin=pinyin or None, is_han=False)


def normalize_name(raw: str | None) -> NormalizedName | None:
    """Normalize a personal name; None for empty input, `InvalidValue` for input that is not a name."""
    if raw is None:
        return None
    return _normalize(raw)


def name_similarity(a: NormalizedName, b: NormalizedName) -> str:
    """The best agreement level between two names: "exact", "pinyin", "fuzzy" or "different".

    * "exact": same `key` (张帅 / 張帥 / 张 帅; Zhang Shuai / SHUAI ZHANG).
    * "pinyin": same pinyin key but different characters — homophones (张伟 / 章伟), characters that share
      any reading (孙博 / 孙柏: 柏 also reads bó), or a Han name and its romanisation (张帅 / Zhang Shuai). Weak.
    * "fuzzy": `rapidfuzz.fuzz.ratio` of the keys or of the pinyin keys ≥ 85 (a typo in a romanisation),
      or two Han keys of the same length ≥ 3 that differ in exactly one character (张帅奇 / 张帅琪).
    * "different": anything else.
    """
    return key_similarity(a.key, a.pinyin, b.key, b.pinyin)


@lru_cache(maxsize=65_536)
def _readings(char: str) -> frozenset[str]:
    return frozenset(pinyin(char, style=Style.NORMAL, heteronym=True)[0])


def homophones(key_a: str, key_b: str) -> bool:
    """Two Han keys of one length whose differing characters each share a reading (any heteronym)."""
    if len(key_a) != len(key_b) or key_a == key_b:
        return False
    return all(
        x == y or (_is_han(x) and _is_han(y) and _readings(x) & _readings(y)) for x, y in zip(key_a, key_b, strict=True)
    )


def key_similarity(key_a: str, pinyin_a: str | None, key_b: str, pinyin_b: str | None) -> str:
    """`name_similarity` on the stored keys of two names (what the linker compares)."""
    if key_a == key_b:
        return "exact"
    if pinyin_a is not None and pinyin_a == pinyin_b:
        return "pinyin"
    han = _is_han(key_a[:1]) and _is_han(key_b[:1])
    if han and homophones(key_a, key_b):
        return "pinyin"
    if han and len(key_a) == len(key_b) >= 3 and Hamming.distance(key_a, key_b) <= 1:
        return "fuzzy"
    if fuzz.ratio(key_a, key_b, score_cutoff=FUZZY_THRESHOLD):
        return "fuzzy"
    if pinyin_a is not None and pinyin_b is not None and fuzz.ratio(pinyin_a, pinyin_b, score_cutoff=FUZZY_THRESHOLD):
        return "fuzzy"
    return "different"
