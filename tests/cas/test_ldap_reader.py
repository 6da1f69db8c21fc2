"""The CAS adapter reads people from a real OpenLDAP slapd: rows, errors, and paging past a size limit."""

from __future__ import annotations

import random
from pathlib import Path

import ldap3
import pytest
from idbroker_adapters.cas import adapter
from idbroker_adapters.cas.ldap_reader import read_ldap
from services.availability import free_port
from services.slapd import LdapServer

from idbroker.config import Settings, get_settings
from idbroker.sources.mapping import SourceMapping
from idbroker.sources.tables import UnreadableFile

pytestmark = pytest.mark.ldap

CAS_MAPPING = SourceMapping(
    source="cas",
    key="uid",
    columns={"name": "cn", "email": "mail", "phone": "mobile"},
    affiliation={"column": "eduPersonAffiliation"},
)
HEADER = ["uid", "cn", "mail", "mobile", "eduPersonAffiliation"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华"


def generated_people(count: int, seed: int = 7) -> list[dict[str, str | list[str]]]:
    """Made-up people: Chinese names, mobiles in 138 0000 xxxx, student or faculty (some also staff)."""
    rng = random.Random(seed)
    people: list[dict[str, str | list[str]]] = []
    for number in range(1, count + 1):
        uid = f"t{number:06d}"
        affiliation = ["student", "member"] if number % 2 else ["faculty", "member"]
        if number % 5 == 0:
            affiliation.append("staff")
        people.append(
            {
                "uid": uid,
                "cn": rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2))),
                "mail": f"{uid}@example.edu",
                "mobile": f"+86138{number:08d}",
                "eduPersonAffiliation": affiliation,
            }
        )
    return people


def as_row(person: dict[str, str | list[str]]) -> list[str]:
    return [";".join(value) if isinstance(value, list) else value for value in (person[n] for n in HEADER)]


@pytest.fixture
def directory(ldap_directory: LdapServer) -> LdapServer:
    return ldap_directory


@pytest.fixture
def bound_settings(directory: LdapServer, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with the directory's read-only account, as an operator would configure them."""
    monkeypatch.setenv("IDBROKER_LDAP_BIND_DN", directory.bind_dn)
    monkeypatch.setenv("IDBROKER_LDAP_BIND_PASSWORD", directory.bind_password)
    get_settings.cache_clear()
    return get_settings()


def test_reads_people_through_the_adapter(directory: LdapServer, bound_settings: Settings) -> None:
    people = generated_people(5)
    directory.add_people(people)

    table = adapter.read(directory.location(), CAS_MAPPING, bound_settings)

    assert table.name == directory.location()
    assert table.header == HEADER
    rows = list(table.rows)
    assert sorted(row.number for row in rows) == [2, 3, 4, 5, 6]
    assert sorted(row.values for row in rows) == sorted(as_row(person) for person in people)
    by_uid = {row.values[0]: row.values for row in rows}
    assert by_uid["t000005"][4] == "student;member;staff"
    assert by_uid["t000002"][3] == "+8613800000002"


def test_an_attribute_missing_from_an_entry_is_an_empty_cell(directory: LdapServer, bound_settings: Settings) -> None:
    person = generated_people(1)[0]
    del person["mobile"]
    directory.add_people([person])

    (row,) = adapter.read(directory.location(), CAS_MAPPING, bound_settings).rows

    assert row.number == 2
    assert row.values[HEADER.index("mobile")] == ""
    assert row.values[HEADER.index("cn")] == person["cn"]


def test_only_people_under_the_base_dn_are_read(directory: LdapServer, bound_settings: Settings) -> None:
    directory.add_people(generated_people(3))

    table = adapter.read(directory.location(directory.people_dn), CAS_MAPPING, bound_settings)
    assert len(list(table.rows)) == 3
    with pytest.raises(UnreadableFile, match="the search failed"):
        adapter.read(directory.location(f"ou=alumni,{directory.base_dn}"), CAS_MAPPING, bound_settings)


def test_paging_reads_past_the_servers_size_limit(directory: LdapServer) -> None:
    count = directory.reader_size_limit + 7
    directory.add_people(generated_people(count))

    # The read-only account's plain search is cut off at the server's size limit ...
    plain = ldap3.Connection(
        ldap3.Server(directory.host, port=directory.port),
        user=directory.bind_dn,
        password=directory.bind_password,
        auto_bind=True,
    )
    plain.search(directory.base_dn, "(objectClass=inetOrgPerson)", attributes=["uid"])
    assert plain.result["description"] == "sizeLimitExceeded"
    assert len(plain.entries) == directory.reader_size_limit
    plain.unbind()

    # ... while the reader, with pages smaller than both, gets every entry once.
    table = read_ldap(
        directory.location(),
        HEADER,
        bind_dn=directory.bind_dn,
        bind_password=directory.bind_password,
        page_size=6,
    )
    rows = list(table.rows)
    assert len(rows) == count
    assert len({row.values[0] for row in rows}) == count
    assert [row.number for row in rows] == list(range(2, count + 2))


def test_a_wrong_bind_password_is_a_clear_error(directory: LdapServer, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "not-the-password-9f3b"
    monkeypatch.setenv("IDBROKER_LDAP_BIND_DN", directory.bind_dn)
    monkeypatch.setenv("IDBROKER_LDAP_BIND_PASSWORD", wrong)
    get_settings.cache_clear()

    with pytest.raises(UnreadableFile) as raised:
        adapter.read(directory.location(), CAS_MAPPING, get_settings())

    message = str(raised.value)
    assert directory.location() in message
    assert "cannot bind as cn=idbroker-reader" in message
    assert "invalid credentials" in message
    assert wrong not in message


def test_anonymous_when_no_bind_dn_is_set(directory: LdapServer, test_settings: Settings) -> None:
    directory.add_people(generated_people(2))
    assert test_settings.ldap_bind_dn is None

    rows = list(adapter.read(directory.location(), CAS_MAPPING, test_settings).rows)

    assert sorted(row.values[0] for row in rows) == ["t000001", "t000002"]


def test_an_unreachable_server_is_a_clear_error(test_settings: Settings) -> None:
    location = f"ldap://127.0.0.1:{free_port()}/dc=example,dc=edu"

    with pytest.raises(UnreadableFile, match="cannot connect"):
        adapter.read(location, CAS_MAPPING, test_settings)


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("ldap://reader:s3cret@127.0.0.1:389/dc=example,dc=edu", "credentials in the URL are not accepted"),
        ("ldap://127.0.0.1:389/", "no base DN"),
        ("ldap://127.0.0.1:389/dc=example,dc=edu?uid?sub", "give only the base DN"),
        ("ldap:///dc=example,dc=edu", "no host"),
    ],
)
def test_a_bad_url_is_refused_without_echoing_a_password(location: str, reason: str, test_settings: Settings) -> None:
    with pytest.raises(UnreadableFile, match=reason) as raised:
        adapter.read(location, CAS_MAPPING, test_settings)
    assert "s3cret" not in str(raised.value)


def test_a_file_location_is_read_as_an_export(tmp_path: Path, test_settings: Settings) -> None:
    export = tmp_path / "cas.csv"
    people = generated_people(2)
    lines = [",".join(HEADER), *(",".join(as_row(person)) for person in people)]
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")

    table = adapter.read(str(export), CAS_MAPPING, test_settings)

    assert table.header == HEADER
    assert [(row.number, row.values) for row in table.rows] == [
        (2, as_row(people[0])),
        (3, as_row(people[1])),
    ]
