"""Userids derived from the opaque ID (never a number) and the policy file, checked with file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugins.wecom import Role, campus_person, member_of, sync
from sqlalchemy import Engine
from standins.wecom_api import WeComStandIn

from idbroker.config import get_settings
from idbroker.directory.ids import new_person_id
from idbroker.policy import PolicyError
from idbroker.wecom.policy import load_wecom_policy
from idbroker.wecom.userid import is_valid_userid, pseudonym, userid_for

KEY = b"k" * 32


def test_a_userid_is_a_short_stable_pseudonym_of_the_person_id() -> None:
    ids = [new_person_id() for _ in range(2000)]
    userids = [userid_for(KEY, pid) for pid in ids]
    assert len(set(userids)) == len(ids)
    assert all(u.startswith("wx-") and len(u) == 19 and is_valid_userid(u) and u == u.lower() for u in userids)
    assert userid_for(KEY, ids[0]) == userids[0]  # stable
    assert userid_for(b"x" * 32, ids[0]) != userids[0]  # keyed: not computable from the ID alone
    assert all(pseudonym(KEY, pid) not in pid for pid in ids[:50])
    longer = userid_for(KEY, ids[0], taken={userids[0]})
    assert longer != userids[0] and longer.startswith(userids[0]) and is_valid_userid(longer)


def test_the_member_never_carries_a_number_and_survives_a_new_number(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn
) -> None:
    person = campus_person(engine, "张帅", Role("student", "1120101234", phone="+8613812345678"))
    sync(engine)
    userid = member_of(engine, person).userid
    assert "1120101234" not in userid and userid == userid_for(get_settings().key("national_id_hash_key"), person)
    member = wecom_api.member(userid)
    assert member is not None and not any(ch in member["name"] for ch in "0123456789")


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    (folder / "wecom.yaml").write_text(text, encoding="utf-8")
    return folder


BASE = """display_name: {sources: [student]}
role_sources: [student]
leaver_grace_days: 30
departments:
  - {id: 2, name: 学生, parent: 1}
%s
placement:
  student: {"*": 2%s}
"""


@pytest.mark.parametrize(
    ("departments", "placement", "line", "message"),
    [
        ("  - {id: 4, name: 子, parent: 3}\n  - {id: 3, name: 父, parent: 1}", "", 4, "parent 3 must be listed before"),
        ("  - {id: 2, name: 又一个, parent: 1}", "", 4, "listed twice"),
        ("  - {id: 3, name: 'a|b', parent: 1}", "", 6, "cannot hold"),
        ("", ", 计算机学院: 9", 7, "department 9 is not listed"),
        ("  - {id: 1, name: 根, parent: 1}", "", 6, "greater than 1"),
    ],
)
def test_policy_mistakes_name_the_file_and_line(
    tmp_path: Path, departments: str, placement: str, line: int, message: str
) -> None:
    folder = write(tmp_path, BASE % (departments, placement))
    with pytest.raises(PolicyError) as error:
        load_wecom_policy(folder)
    assert f"wecom.yaml:{line}:" in str(error.value) and message in str(error.value)


def test_a_role_without_a_catch_all_is_refused(tmp_path: Path) -> None:
    folder = write(tmp_path, (BASE % ("", "")).replace('{"*": 2}', "{计算机学院: 2}"))
    with pytest.raises(PolicyError, match=r"needs a `'\*'` entry"):
        load_wecom_policy(folder)


def test_the_shipped_policy_loads() -> None:
    policy = load_wecom_policy(get_settings().policies_dir)
    assert policy.department_of("student", "计算机学院") == 101 and policy.department_of("student", "不存在学院") == 2
    assert policy.department_of("staff", "教务处") == 3 and policy.department_of("alumni", None) is None
