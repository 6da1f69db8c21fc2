"""Email addresses, normalized for comparison.

NFKC (so a full-width ``＠`` is ``@``), strip, then lowercase the whole address: the domain is
case-insensitive by standard and the campus mail system treats the local part case-insensitively too, so
``Zhang.Shuai@Example.EDU.CN`` and ``zhang.shuai@example.edu.cn`` are one address. Non-ASCII domains are
IDNA-encoded (UTS #46, via the `idna` package): ``a@例子.中国`` → ``a@xn--fsqu00a.xn--fiqs8s``.

Rejected with `InvalidValue`: no ``@`` or more than one, control or invisible characters (zero-width
spaces, direction marks, BOM), any space, characters that would need quoting (``"(),:;<>[]\\``), an empty
local part, a local part starting or ending with a dot or holding two dots in a row, a local part over 64
bytes, a domain without a dot or with an invalid label, a numeric top-level label, and an address over 254
bytes. Reasons never repeat the address.
"""

import re
import unicodedata
from functools import lru_cache

import idna

from idbroker.normalize.errors import InvalidValue
from idbroker.normalize.text import nfkc

_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
_NEEDS_QUOTING = frozenset('"(),:;<>[]\\')
_ASCII_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_ASCII_PRINTABLE = re.compile(r"[!-~]+")


@lru_cache(maxsize=16_384)
def _domain(domain: str) -> str | InvalidValue:
    """The ASCII form of a lowercased domain, or the error (cached: domains repeat a lot)."""
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError:
            return InvalidValue("email domain is not a valid internationalized domain name")
    labels = domain.split(".")
    if len(labels) < 2:
        return InvalidValue("email domain has no dot")
    if not all(_ASCII_LABEL.fullmatch(label) for label in labels):
        return InvalidValue("email domain has an empty or invalid label")
    if labels[-1].isdigit():
        return InvalidValue("email domain's last label is numeric")
    return domain


def _check_characters(text: str) -> None:
    if text.isascii() and _ASCII_PRINTABLE.fullmatch(text):
        return
    for char in text:
        category = unicodedata.category(char)
        if category in ("Zs", "Zl", "Zp"):
            raise InvalidValue("email contains a space")
        if category in _FORBIDDEN_CATEGORIES:
            raise InvalidValue("email contains a control or invisible character")


def normalize_email(raw: str | None) -> str | None:
    """Normalize an email address for comparison; None for empty input, `InvalidValue` if malformed."""
    if raw is None:
        return None
    text = nfkc(raw).strip()
    if not text:
        return None
    _check_characters(text)
    if text.count("@") != 1:
        raise InvalidValue("email must contain exactly one @")
    local, domain_text = text.lower().split("@")
    if not local:
        raise InvalidValue("email has nothing before the @")
    if any(char in _NEEDS_QUOTING for char in local):
        raise InvalidValue("email local part contains a character that needs quoting")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidValue("email local part has a misplaced dot")
    if len(local.encode("utf-8")) > 64:
        raise InvalidValue("email local part is longer than 64 bytes")
    domain = _domain(domain_text)
    if isinstance(domain, InvalidValue):
        raise InvalidValue(domain.reason)
    address = f"{local}@{domain}"
    if len(address.encode("utf-8")) > 254:
        raise InvalidValue("email is longer than 254 bytes")
    return address
