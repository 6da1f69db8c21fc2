"""Whitespace and Unicode clean-up shared by every normalizer."""

import unicodedata

# Invisible characters that Excel and web forms leave behind; they are never meaningful in a value.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def nfkc(raw: str) -> str:
    """NFKC-normalize `raw`, skipping the work for pure ASCII (which NFKC leaves unchanged)."""
    return raw if raw.isascii() else unicodedata.normalize("NFKC", raw)


def clean_text(raw: str | None) -> str | None:
    """NFKC, drop zero-width characters, strip, collapse every run of whitespace to one space.

    Full-width/ideographic spaces (U+3000), NBSP, tabs and newlines all count as whitespace.
    Returns None for None, empty or whitespace-only input.
    """
    if raw is None:
        return None
    text = nfkc(raw)
    if not text.isascii():
        text = text.translate(_INVISIBLE)
    text = " ".join(text.split())
    return text or None
