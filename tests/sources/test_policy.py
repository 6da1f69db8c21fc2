"""The generic policy loader: every problem names the file and the line of the key or item concerned."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from idbroker.policy import PolicyError, load_policy, yaml_line


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    weight: float


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    thresholds: list[Threshold] = []
    options: dict[str, int] = {}
    kind: str = "plain"

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str, info: ValidationInfo) -> str:
        expected = (info.context or {}).get("kind")
        if expected is not None and value != expected:
            raise ValueError(f"kind must be {expected!r}")
        return value


def policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path, **context: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        load_policy(path, Rules, context=context or None)
    return caught.value


VALID = """\
# rules
version: 2
thresholds:
  - name: 自动合并
    weight: 0.9
  - name: review
    weight: 0.5
options: {a: 1}
"""


def test_valid_policy_loads(tmp_path: Path) -> None:
    rules = load_policy(policy(tmp_path, VALID), Rules)
    assert rules.version == 2
    assert [t.name for t in rules.thresholds] == ["自动合并", "review"]
    assert rules.options == {"a": 1}


def test_error_in_a_list_item_names_its_line(tmp_path: Path) -> None:
    path = policy(tmp_path, VALID.replace("weight: 0.5", "weight: half"))
    error = error_of(path)
    assert (error.file, error.line) == (str(path), 7)
    assert str(error).startswith(f"{path}:7: thresholds.1.weight: ")


def test_unknown_key_names_its_line_and_the_allowed_keys(tmp_path: Path) -> None:
    path = policy(tmp_path, VALID.replace("    weight: 0.9", "    wieght: 0.9"))
    error = error_of(path)
    # the unknown key is on line 5; the missing `weight` of the same item is reported at the item (line 4)
    assert f"{path}:5: thresholds.0.wieght: unknown key (allowed here: name, weight)" in str(error).splitlines()
    assert f"{path}:4: thresholds.0.weight: required key is missing" in str(error).splitlines()
    assert error.line == 4  # problems are in line order


def test_unknown_top_level_key(tmp_path: Path) -> None:
    error = error_of(policy(tmp_path, VALID + "treshold: 3\n"))
    assert error.line == 9
    assert "treshold: unknown key (allowed here: version, thresholds, options, kind)" in str(error)


def test_wrong_type_in_a_mapping_value(tmp_path: Path) -> None:
    error = error_of(policy(tmp_path, VALID.replace("{a: 1}", "{a: 1,\n  b: many}")))
    assert error.line == 9
    assert "options.b:" in str(error)


def test_missing_top_level_key_points_at_the_document(tmp_path: Path) -> None:
    error = error_of(policy(tmp_path, "\n\nthresholds: []\n"))
    assert error.line == 3
    assert str(error) == f"{tmp_path / 'rules.yaml'}:3: version: required key is missing"


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    error = error_of(policy(tmp_path, "version: 2\nthresholds:\n  - name: x\n   weight: [1\n"))
    assert error.line is not None and error.line >= 4
    assert "YAML syntax error" in str(error)
    error = error_of(policy(tmp_path, "version: 2\noptions: {a: 1\n"))
    assert "YAML syntax error" in str(error) and error.line is not None


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    error = error_of(policy(tmp_path, "version: 2\noptions:\n  a: 1\n  a: 2\n"))
    assert error.line == 4
    assert "duplicate key 'a' (first given on line 3)" in str(error)


def test_missing_file_is_named(tmp_path: Path) -> None:
    error = error_of(tmp_path / "absent.yaml")
    assert str(error) == f"{tmp_path / 'absent.yaml'}: no such policy file"


def test_empty_file_and_wrong_document_type(tmp_path: Path) -> None:
    assert "version: required key is missing" in str(error_of(policy(tmp_path, "# nothing yet\n")))
    error = error_of(policy(tmp_path, "- version\n- 2\n"))
    assert error.line == 1 and "dictionary" in str(error)


def test_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes("version: 2\nkind: 中文\n".encode("gb18030"))
    error = error_of(path)
    assert (error.line, error.what) == (2, "not valid UTF-8 text")


def test_context_reaches_validators_and_their_message_is_clean(tmp_path: Path) -> None:
    path = policy(tmp_path, "version: 2\nkind: plain\n")
    error = error_of(path, kind="special")
    assert str(error) == f"{path}:2: kind: kind must be 'special'"
    assert load_policy(path, Rules, context={"kind": "plain"}).kind == "plain"


def test_yaml_line_finds_nested_items(tmp_path: Path) -> None:
    path = policy(tmp_path, VALID)
    assert yaml_line(path, ("thresholds", 1, "weight")) == 7
    assert yaml_line(path, ("options", "zzz")) == 8
    assert yaml_line(path, ()) == 2


def test_policy_error_can_be_raised_by_other_policy_checks() -> None:
    assert str(PolicyError("policies/x.yaml", 3, "weights must sum to 1")) == "policies/x.yaml:3: weights must sum to 1"
    assert str(PolicyError("policies/x.yaml", None, "no such policy file")) == "policies/x.yaml: no such policy file"
    assert str(PolicyError("a whole message")) == "a whole message"
    assert isinstance(PolicyError("x"), ValueError)
