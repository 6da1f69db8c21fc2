"""Names: Han and Latin keys, pinyin keys, surname readings, similarity levels."""

import pytest
from pypinyin import lazy_pinyin

from idbroker.normalize import InvalidValue, NormalizedName, name_similarity, normalize_name


def norm(raw: str) -> NormalizedName:
    name = normalize_name(raw)
    assert name is not None
    return name


@pytest.mark.parametrize("raw", ["张帅", "張帥", "张 帅", "張　帥", " 张帅\t"])
def test_han_spellings_share_key(raw: str) -> None:
    name = norm(raw)
    assert name.key == "张帅"
    assert name.pinyin == "shuai zhang"
    assert name.is_han


def test_traditional_display_is_kept() -> None:
    assert norm("張　帥").display == "張帥"


@pytest.mark.parametrize("raw", ["张帅", "張帥", "Zhang Shuai", "SHUAI ZHANG", "Zhang, Shuai", "zhang  shuai"])
def test_scripts_share_pinyin(raw: str) -> None:
    assert norm(raw).pinyin == "shuai zhang"


def test_latin_name_key_and_flags() -> None:
    name = norm("Zhang, Shuai")
    assert name.display == "Zhang, Shuai"
    assert name.key == "shuai zhang"
    assert name.pinyin == name.key
    assert not name.is_han
    assert norm("ＺＨＡＮＧ　Ｓｈｕａｉ").key == "shuai zhang"
    assert norm("Shuai-Qi Zhang").key == "qi shuai zhang"


def test_romanisation_variants_fold_in_pinyin() -> None:
    assert norm("Shuai-Qi Zhang").pinyin == norm("张帅奇").pinyin == "shuaiqi zhang"
    assert norm("Zhāng Shuài").pinyin == "shuai zhang"
    assert norm("Lü Wei").pinyin == norm("吕伟").pinyin == "lv wei"


@pytest.mark.parametrize(
    ("raw", "pinyin"),
    [
        ("曾小明", "xiaoming zeng"),
        ("单田芳", "shan tianfang"),
        ("解放", "fang xie"),
        ("仇明", "ming qiu"),
        ("区志伟", "ou zhiwei"),
        ("朴明", "ming piao"),
        ("覃丽", "li qin"),
        ("翟亮", "liang zhai"),
        ("查明", "ming zha"),
        ("盖丽", "ge li"),
        ("乐平", "ping yue"),
        ("缪华", "hua miao"),
        ("冼星", "xian xing"),
    ],
)
def test_surname_readings_override_pypinyin(raw: str, pinyin: str) -> None:
    assert norm(raw).pinyin == pinyin


def test_pypinyin_really_misreads_these_surnames() -> None:
    # Guards the reason for the table: if pypinyin starts reading them right, the table is still correct.
    assert lazy_pinyin("曾")[0] == "ceng"
    assert lazy_pinyin("单")[0] == "dan"
    assert lazy_pinyin("解")[0] == "jie"


@pytest.mark.parametrize(
    ("raw", "pinyin"),
    [
        ("欧阳娜娜", "nana ouyang"),
        ("歐陽娜娜", "nana ouyang"),
        ("司马光", "guang sima"),
        ("诸葛亮", "liang zhuge"),
        ("尉迟恭", "gong yuchi"),
        ("长孙无忌", "wuji zhangsun"),
    ],
)
def test_compound_surnames(raw: str, pinyin: str) -> None:
    assert norm(raw).pinyin == pinyin


def test_minority_name_keeps_dot_in_display_only() -> None:
    for raw in ["买买提·艾力", "买买提・艾力", "买买提•艾力", "买买提 · 艾力"]:
        name = norm(raw)
        assert name.display == "买买提·艾力"
        assert name.key == "买买提艾力"
        assert name.pinyin == "aili maimaiti"
    assert norm("Maimaiti Aili").pinyin == "aili maimaiti"


def test_other_scripts_have_no_pinyin() -> None:
    name = norm("Иван  Петров")
    assert name.key == "иван петров"
    assert name.pinyin is None
    assert not name.is_han


@pytest.mark.parametrize("raw", [None, "", "   ", "\u3000"])
def test_empty_is_none(raw: str | None) -> None:
    assert normalize_name(raw) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("12345", "name contains digits"),
        ("张帅2", "name contains digits"),
        ("张 Shuai", "name mixes Han characters and Latin letters"),
        ("@#!", "name contains characters that are not letters"),
        ("·", "name has no letters"),
        ("- ,", "name has no letters"),
    ],
)
def test_garbage_raises(raw: str, reason: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        normalize_name(raw)
    assert caught.value.reason == reason


def test_similarity_exact() -> None:
    assert name_similarity(norm("张帅"), norm("張帥")) == "exact"
    assert name_similarity(norm("Zhang Shuai"), norm("SHUAI ZHANG")) == "exact"


def test_similarity_homophones_are_pinyin() -> None:
    assert name_similarity(norm("张伟"), norm("章伟")) == "pinyin"
    # 率 is read lv by pypinyin, so 张率 is not a homophone of 张帅; 蟀 is.
    assert lazy_pinyin("率") == ["lv"]
    assert lazy_pinyin("蟀") == lazy_pinyin("帅") == ["shuai"]
    assert name_similarity(norm("张帅"), norm("张蟀")) == "pinyin"
    assert name_similarity(norm("张帅"), norm("Zhang Shuai")) == "pinyin"


def test_similarity_fuzzy() -> None:
    assert name_similarity(norm("张帅奇"), norm("张帅明")) == "fuzzy"
    assert name_similarity(norm("Zhang Shuai"), norm("Zhang Shaui")) == "fuzzy"
    assert name_similarity(norm("张帅"), norm("Zhang Shaui")) == "fuzzy"


def test_similarity_different() -> None:
    assert name_similarity(norm("张伟"), norm("王伟")) == "different"
    assert name_similarity(norm("张伟"), norm("张军")) == "different"
    assert name_similarity(norm("张帅奇"), norm("李明华")) == "different"
    assert name_similarity(norm("Zhang Shuai"), norm("Wang Li")) == "different"


def test_similarity_is_symmetric() -> None:
    names = [norm(raw) for raw in ["张帅", "張帥", "张蟀", "Zhang Shuai", "张帅奇", "张帅明", "王伟", "Иван"]]
    for a in names:
        for b in names:
            assert name_similarity(a, b) == name_similarity(b, a)
