"""Release policies: the shipped ones load; a bad one fails at load naming the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugins.apps import REPO_POLICIES

from idbroker.policy import PolicyError
from idbroker.release.policies import load_app_policy, policy_for


def test_the_shipped_policies_load() -> None:
    demo = load_app_policy(REPO_POLICIES / "apps" / "demo-app.yaml")
    assert demo.claims == ("pseudonym", "nickname")
    assert not demo.separate_consent and not demo.lookup_by_number
    library = load_app_policy(REPO_POLICIES / "apps" / "library.example.yaml")
    assert library.separate_consent and library.recipient is not None and library.lookup_by_number


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "apps").mkdir(exist_ok=True)
    path = tmp_path / "apps" / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("client_id: bus\npurpose: 校车\nclaims:\n  - pseudonym\n  - shoe_size\n", 5, "claims.1"),
        ("client_id: bus\nclaims: [pseudonym]\n", 1, "purpose: required key is missing"),
        ("client_id: bus\npurpose: 校车时刻\nclaims: [nickname]\n", 3, "add `pseudonym` to claims"),
        ("client_id: bus\npurpose: 校车时刻\nclaims: [pseudonym, name, name]\n", 3, "claim listed twice: name"),
        ("client_id: taxi\npurpose: 校车时刻\nclaims: [pseudonym]\n", 1, "policy of 'bus', not 'taxi'"),
        ("client_id: bus\npurpose: 校车时刻\nclaims: [pseudonym]\nseparate_consent: true\n", 1, "recipient"),
        ("client_id: bus\npurpose: 校车时刻\nclaims: [pseudonym]\nlookup_by_numbr: true\n", 4, "unknown key"),
        ("client_id: bus\npurpose: 校车时刻\nclaims: [pseudonym, nickname]\nnickname_is_real_name: true\n", 1, "name"),
        ("client_id: bus\npurpose: 校车时刻\nclaims: [pseudonym\n", 4, "YAML syntax error"),
    ],
)
def test_a_bad_policy_names_file_and_line(tmp_path: Path, text: str, line: int, what: str) -> None:
    path = write(tmp_path, "bus", text)
    with pytest.raises(PolicyError) as caught:
        load_app_policy(path)
    assert caught.value.file == str(path)
    assert caught.value.line == line, str(caught.value)
    assert what in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_a_missing_policy_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"app 'ghost' has no release policy: write .*ghost\.yaml"):
        policy_for(tmp_path, "ghost")


def test_a_changed_policy_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("idbroker.release.policies.STAT_SECONDS", 0.0)
    path = write(tmp_path, "bus", "client_id: bus\npurpose: 校车时刻\nclaims: [pseudonym]\n")
    assert policy_for(tmp_path, "bus").claims == ("pseudonym",)
    path.write_text("client_id: bus\npurpose: 校车时刻查询\nclaims: [pseudonym, nickname]\n", encoding="utf-8")
    assert policy_for(tmp_path, "bus").claims == ("pseudonym", "nickname")
