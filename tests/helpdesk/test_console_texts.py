"""Every text the consoles and the privacy page use exists in Chinese and in English."""

from __future__ import annotations

import re

import pytest

from idbroker.web.templates import TEMPLATES_DIR, catalog

PREFIXES = ("helpdesk.", "privacy.", "me_privacy.")
TEMPLATES = sorted(
    path
    for pattern in ("helpdesk_*.html", "privacy_*.html", "me_privacy_*.html")
    for path in TEMPLATES_DIR.glob(pattern)
)
LITERAL_KEY = re.compile(r"""t\(\s*['"]([a-z_.]+)['"]""")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_key_a_console_template_names_is_translated(lang: str) -> None:
    texts = catalog(lang)
    used = {key for path in TEMPLATES for key in LITERAL_KEY.findall(path.read_text(encoding="utf-8"))}
    assert len(TEMPLATES) >= 10 and used
    missing = sorted(key for key in used if key.endswith(".") is False and key not in texts)
    assert missing == []


def test_both_languages_have_the_same_console_keys() -> None:
    zh = {key for key in catalog("zh") if key.startswith(PREFIXES)}
    en = {key for key in catalog("en") if key.startswith(PREFIXES)}
    assert zh == en and len(zh) > 200
