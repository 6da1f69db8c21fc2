"""The pages' frame: both languages complete, the language switch remembered, numbers masked."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from idbroker.web.templates import LANGUAGE_COOKIE, TEMPLATES_DIR, catalog, mask_number

HTML = {"accept": "text/html"}


def test_chinese_and_english_have_the_same_keys() -> None:
    assert set(catalog("zh")) == set(catalog("en"))


def test_every_text_a_template_names_exists() -> None:
    named = {
        (path.name, key)
        for path in TEMPLATES_DIR.glob("*.html")
        for key in re.findall(r"""\bt\(['"]([a-z_.0-9]+)['"]\s*[,)]""", path.read_text(encoding="utf-8"))
    }
    assert ("base.html", "nav.logout") in named
    missing = sorted(f"{name}: {key}" for name, key in named if key not in catalog("zh") or key not in catalog("en"))
    assert missing == [], "texts named in templates but missing from i18n/zh|en"


def test_chinese_by_default_and_english_on_request_remembered(web_client: TestClient) -> None:
    assert '<html lang="zh-CN">' in web_client.get("/", headers=HTML).text
    english = web_client.get("/?lang=en", headers=HTML)
    assert '<html lang="en">' in english.text and "Sign in with campus CAS" in english.text
    assert english.cookies[LANGUAGE_COOKIE] == "en"
    assert "Sign in with campus CAS" in web_client.get("/", headers=HTML).text  # the cookie keeps it
    assert "通过统一身份认证登录" in web_client.get("/?lang=zh", headers=HTML).text
    assert '<html lang="zh-CN">' in web_client.get("/?lang=xx", headers=HTML).text


@pytest.mark.parametrize(
    ("number", "shown"),
    [("1120101234", "112****234"), ("6120170032", "612****032"), ("zs2019", "z****9"), ("ab", "**"), ("", "")],
)
def test_numbers_are_masked(number: str, shown: str) -> None:
    assert mask_number(number) == shown
