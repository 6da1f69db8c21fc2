"""OTP brute force and enumeration over HTTP (`/api/me/…`): five wrong codes burn a code whatever comes
after, guesses sent all at once are counted one by one (the flow row is locked), and asking for a code
answers the same — same status, same fields, the same database work — whether somebody else holds the
number or address or nobody does; a foreign flow and a flow that does not exist get the same answer.

Elsewhere (not repeated here): the domain rules — burn after 5, the daily lock after 20 wrong codes, expired,
replayed and superseded codes (`tests/contacts/test_contacts_codes.py`), the sending limits per number,
person, address and number block (`tests/contacts/test_contacts_limits.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from factories import student
from fastapi.testclient import TestClient
from plugins.contacts import import_rows, message_params
from plugins.web import sign_in
from sqlalchemy import Engine, event
from sqlmodel import Session

from idbroker.config import get_settings
from idbroker.contacts.models import VerificationFlow
from idbroker.contacts.policy import contacts_policy
from idbroker.contacts.provenance import contacts_of
from idbroker.contacts.targets import parse_phone
from idbroker.contacts.verification.state import Outcome
from idbroker.contacts.verification.strategy_code import send_code, submit_code
from idbroker.directory.queries import people_by_number

ZHANG, LI, WANG = "1120101234", "1120101235", "1120101236"
HELD_PHONE, FREE_PHONE = "13712345678", "13612345678"  # 李娜's number (from the export); nobody's
HELD_EMAIL, FREE_EMAIL = "lina@example.edu.cn", "nobody@example.edu.cn"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def live_server_overrides() -> dict[str, Any]:
    return {"contacts_inline_delivery": False}  # the messages wait in the queue: no gateway in this module


@pytest.fixture
def people(engine: Engine) -> dict[str, str]:
    rows = [
        student(ZHANG, "张帅", "男", "1992-05-17", "", "本科", "2010", "13812345678"),
        student(LI, "李娜", "女", "1993-02-03", "", "本科", "2010", HELD_PHONE, HELD_EMAIL),
        student(WANG, "王强", "男", "1994-03-04", "", "本科", "2011", "13512345678"),
    ]
    import_rows(engine, "student", rows)
    with Session(engine) as session:
        return {number: people_by_number(session, number)[0].id for number in (ZHANG, LI, WANG)}


def signed_in(client: TestClient, cas: Any, uid: str) -> TestClient:
    cas.add_user(uid)
    sign_in(client, cas, uid)
    client.headers["X-CSRF-Token"] = CSRF.search(client.get("/", headers={"accept": "text/html"}).text).group(1)  # type: ignore[union-attr]
    return client


def code_of(engine: Engine, flow_id: str) -> str:
    with Session(engine) as session:
        flow = session.get(VerificationFlow, flow_id)
        assert flow is not None and flow.delivery_id is not None
    return message_params(engine, flow.delivery_id)["code"]


def wrong(code: str, n: int = 1) -> str:
    return f"{(int(code) + n) % 1_000_000:06d}"


def test_five_wrong_codes_over_http_burn_the_code(
    engine: Engine, people: dict[str, str], web_client: TestClient, cas_server: Any
) -> None:
    client = signed_in(web_client, cas_server, ZHANG)
    flow_id = client.post("/api/me/phones", json={"phone": "13912345678"}).json()["flow"]
    code = code_of(engine, flow_id)
    answers = [client.post(f"/api/me/verifications/{flow_id}", json={"code": wrong(code, n)}) for n in range(1, 31)]
    assert [a.status_code for a in answers[:4]] == [400] * 4
    assert [a.json()["tries_left"] for a in answers[:4]] == [4, 3, 2, 1]
    assert {a.status_code for a in answers[4:]} == {410} and {a.json()["outcome"] for a in answers[4:]} == {"burned"}
    right = client.post(f"/api/me/verifications/{flow_id}", json={"code": code})
    assert right.status_code == 410 and right.json()["outcome"] == "burned"
    with Session(engine) as session:
        assert all(v.verified_at is None for v in contacts_of(session, people[ZHANG]) if v.value == "+8613912345678")


def test_guesses_sent_all_at_once_are_counted_one_by_one(engine: Engine, people: dict[str, str]) -> None:
    settings = get_settings()
    person = people[ZHANG]
    with Session(engine) as session:
        started = send_code(
            session, settings, person_id=person, target=parse_phone("13912345678", contacts_policy(settings)), ip=None
        )
        session.commit()
    code = code_of(engine, started.flow_id)

    def guess(n: int) -> Outcome:
        with Session(engine) as session:
            result = submit_code(session, settings, person_id=person, flow_id=started.flow_id, code=wrong(code, n))
            session.commit()
        return result.outcome

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(guess, range(1, 41)))
    assert outcomes.count(Outcome.WRONG) == 4 and outcomes.count(Outcome.BURNED) == 36
    with Session(engine) as session:
        assert session.get(VerificationFlow, started.flow_id).wrong_tries == 5  # type: ignore[union-attr]


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on `engine` meanwhile (their text, without parameters)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize(
    ("path", "held", "free"),
    [("/api/me/phones", {"phone": HELD_PHONE}, {"phone": FREE_PHONE}),
     ("/api/me/emails", {"email": HELD_EMAIL}, {"email": FREE_EMAIL})],
)  # fmt: skip
def test_asking_for_a_code_answers_the_same_whoever_holds_the_target(
    engine: Engine,
    people: dict[str, str],
    web_client: TestClient,
    cas_server: Any,
    path: str,
    held: dict[str, str],
    free: dict[str, str],
) -> None:
    first = signed_in(web_client, cas_server, ZHANG)
    second = signed_in(TestClient(web_client.app, follow_redirects=False), cas_server, WANG)
    app_engine = web_client.app.state.engine
    warm = signed_in(TestClient(web_client.app, follow_redirects=False), cas_server, LI)  # caches filled first
    assert warm.post(
        path, json={"phone": "13512340000"} if "phone" in held else {"email": "w@example.edu.cn"}
    ).is_success
    with statements(app_engine) as for_held:
        held_answer = first.post(path, json=held)
    with statements(app_engine) as for_free:
        free_answer = second.post(path, json=free)
    assert held_answer.status_code == free_answer.status_code == 202
    shape = {key: value for key, value in held_answer.json().items() if key not in ("flow", "expires_at")}
    assert shape == {key: value for key, value in free_answer.json().items() if key not in ("flow", "expires_at")}
    assert set(held_answer.headers) == set(free_answer.headers)
    assert for_held == for_free  # the same queries in the same order: no branch on who holds it


def test_a_foreign_flow_and_a_missing_flow_get_the_same_answer(
    engine: Engine, people: dict[str, str], web_client: TestClient, cas_server: Any
) -> None:
    owner = signed_in(TestClient(web_client.app, follow_redirects=False), cas_server, LI)
    flow_id = owner.post("/api/me/phones", json={"phone": "13912345678"}).json()["flow"]
    code = code_of(engine, flow_id)
    intruder = signed_in(web_client, cas_server, ZHANG)
    answers = [
        intruder.post(f"/api/me/verifications/{target}", json={"code": guess})
        for target, guess in ((flow_id, code), (flow_id, wrong(code)), ("A" * 22, code), ("nothing", wrong(code)))
    ]
    assert {a.status_code for a in answers} == {404}
    assert len({a.text for a in answers}) == 1
    assert owner.post(f"/api/me/verifications/{flow_id}", json={"code": code}).json()["outcome"] == "verified"
