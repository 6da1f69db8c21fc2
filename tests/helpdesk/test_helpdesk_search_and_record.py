"""Finding a person at the helpdesk (fuzzy names, numbers, phones, emails; masked) and opening a record."""

from __future__ import annotations

import json

import pytest
from plugins.privacy import Campus
from sqlalchemy import Engine
from sqlmodel import Session, select

from idbroker.audit.models import AuditEvent
from idbroker.config import get_settings
from idbroker.db import session_scope
from idbroker.helpdesk.errors import HelpdeskRefused
from idbroker.helpdesk.record import open_record
from idbroker.helpdesk.search import find_people, mask_name

CLERK = "person:clerk"


def find(engine: Engine, query: str):  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return find_people(session, query, actor=CLERK, client_ip="10.0.0.8")


def last_event(engine: Engine) -> AuditEvent:
    with Session(engine) as session:
        event = session.exec(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()  # type: ignore[attr-defined]
    assert event is not None
    return event


@pytest.mark.parametrize("query", ["张帅", "張帥", "Zhang Shuai", "SHUAI ZHANG", "zhang, shuai"])
def test_every_spelling_of_zhang_shuai_finds_both_records(engine: Engine, privacy_campus: Campus, query: str) -> None:
    result = find(engine, query)
    assert result.kind == "name"
    assert {hit.person_id for hit in result.hits} == {privacy_campus.zhang, privacy_campus.zhang_master}


def test_a_homophone_is_found_after_exact_matches(engine: Engine, privacy_campus: Campus) -> None:
    result = find(engine, "章帅")  # another character, the same reading
    assert [hit.matched for hit in result.hits] == ["pinyin", "pinyin"]
    exact = find(engine, "张帅").hits
    assert exact[0].matched == "name"


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("2120143257", "number"),
        ("139-0000-2222", "phone"),
        ("+86 139 0000 2222", "phone"),
        ("8613900002222", "phone"),
    ],
)
def test_a_number_or_a_phone_written_any_way_finds_the_person(
    engine: Engine, privacy_campus: Campus, query: str, kind: str
) -> None:
    result = find(engine, query)
    assert result.kind == kind and [hit.person_id for hit in result.hits] == [privacy_campus.zhang_master]


def test_an_email_finds_the_person(engine: Engine, privacy_campus: Campus) -> None:
    result = find(engine, "ZS@Example.edu.cn")
    assert result.kind == "email" and [hit.person_id for hit in result.hits] == [privacy_campus.zhang]


def test_results_are_masked_and_the_search_is_recorded_without_the_query(
    engine: Engine, privacy_campus: Campus
) -> None:
    (hit,) = find(engine, "13800001111").hits
    shown = json.dumps(hit.__dict__, ensure_ascii=False)
    assert "13800001111" not in shown and "1120101234" not in shown and "zs@example" not in shown
    assert "张帅" not in shown and hit.names == ["张*"]
    assert (
        "138****1111" in hit.phones and ("student", "112****234") in hit.numbers and "z***@example.edu.cn" in hit.emails
    )
    event = last_event(engine)
    assert event.action == "helpdesk.search" and event.actor == CLERK
    details = json.loads(event.details)
    assert details == {"query_kind": "phone", "results": 1, "purpose": "helpdesk", "client_ip": "10.0.0.8"}


@pytest.mark.parametrize("query", ["", "   ", "张帅!!", "x" * 101, "not-an-email@"])
def test_a_query_that_is_nothing_is_refused(engine: Engine, query: str) -> None:
    with pytest.raises(HelpdeskRefused):
        find(engine, query)


def test_unknown_people_give_an_empty_list(engine: Engine, privacy_campus: Campus) -> None:
    assert find(engine, "9999999999").hits == []
    assert find(engine, "139 9999 9999").hits == []
    assert find(engine, "欧阳锋").hits == []


def test_names_are_masked_to_the_first_and_last_character() -> None:
    assert [mask_name(n) for n in ("张帅", "欧阳娜娜", "买买提·艾力", "Zhang Shuai", "李")] == [
        "张*",
        "欧**娜",
        "买****力",
        "Zhang S****",
        "李",
    ]


def test_opening_a_record_needs_a_reason_and_is_recorded(engine: Engine, privacy_campus: Campus) -> None:
    settings = get_settings()
    for reason in ("", "  ", "call from 138 0000 1111", "id 11010519920517123X"):
        with pytest.raises(HelpdeskRefused), session_scope(engine) as session:
            open_record(session, settings, privacy_campus.zhang, actor=CLERK, reason=reason)
    with session_scope(engine) as session:
        record = open_record(
            session, settings, privacy_campus.zhang, actor=CLERK, reason="ticket 2024-118", client_ip="10.0.0.8"
        )
    lines = {line.key: line for line in record.records}
    assert lines["1120101234"].phone == "+8613800001111" and lines["1120101234"].national_id_on_file
    assert lines["1120101234"].email == "zs@example.edu.cn"
    event = last_event(engine)
    assert (event.action, event.actor, event.subject) == ("helpdesk.record.open", CLERK, privacy_campus.zhang)
    details = json.loads(event.details)
    assert details["reason"] == "ticket 2024-118" and details["client_ip"] == "10.0.0.8"
    assert details["fields"] == ["records", "contacts", "history", "candidates", "consents"]
    assert event.purpose == "helpdesk"
    assert [c.id for c in record.candidates] == [privacy_campus.candidate]
