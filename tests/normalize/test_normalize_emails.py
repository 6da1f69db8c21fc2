"""Emails: normalization and every rejection rule."""

import pytest

from idbroker.normalize import InvalidValue, normalize_email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("zhang.shuai@example.edu.cn", "zhang.shuai@example.edu.cn"),
        ("  Zhang.Shuai@Example.EDU.CN ", "zhang.shuai@example.edu.cn"),
        ("zhang＠example.edu.cn", "zhang@example.edu.cn"),
        ("ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｎ", "zhang@example.cn"),
        ("a+tag@example.cn", "a+tag@example.cn"),
        ("user@例子.中国", "user@xn--fsqu00a.xn--fiqs8s"),
        ("user@例子。中国", "user@xn--fsqu00a.xn--fiqs8s"),
    ],
)
def test_normalizes(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_empty_is_none(raw: str | None) -> None:
    assert normalize_email(raw) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("zhang.example.cn", "email must contain exactly one @"),
        ("a@b@example.cn", "email must contain exactly one @"),
        ("zh\u200bang@example.cn", "email contains a control or invisible character"),
        ("zhang@exa\u200fmple.cn", "email contains a control or invisible character"),
        ("zhang\x07@example.cn", "email contains a control or invisible character"),
        ("zhang shuai@example.cn", "email contains a space"),
        ("zhang\u3000shuai@example.cn", "email contains a space"),
        ("@example.cn", "email has nothing before the @"),
        ("a<b@example.cn", "email local part contains a character that needs quoting"),
        (".zhang@example.cn", "email local part has a misplaced dot"),
        ("zhang..shuai@example.cn", "email local part has a misplaced dot"),
        ("a" * 65 + "@example.cn", "email local part is longer than 64 bytes"),
        ("zhang@localhost", "email domain has no dot"),
        ("zhang@example..cn", "email domain has an empty or invalid label"),
        ("zhang@-example.cn", "email domain has an empty or invalid label"),
        ("zhang@ex_ample.cn", "email domain has an empty or invalid label"),
        ("zhang@10.0.0.1", "email domain's last label is numeric"),
        ("a@" + ".".join(["b" * 60] * 5) + ".cn", "email is longer than 254 bytes"),
    ],
)
def test_rejections(raw: str, reason: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        normalize_email(raw)
    assert caught.value.reason == reason
