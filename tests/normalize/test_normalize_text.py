"""clean_text: NFKC, whitespace collapsing, empty to None."""

import pytest

from idbroker.normalize import clean_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  张帅  ", "张帅"),
        ("张\u3000帅", "张 帅"),
        ("a\u00a0\u00a0b", "a b"),
        ("a\t\n b", "a b"),
        ("ＡＢＣ　１２３", "ABC 123"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("plain", "plain"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "   ", "\u3000\t\n", "\u200b"])
def test_clean_text_empty_is_none(raw: str | None) -> None:
    assert clean_text(raw) is None
