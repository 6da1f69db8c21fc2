"""Callbacks over HTTP: verified, decrypted, stored durably, acknowledged empty; then applied once by the worker."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from plugins.wecom import (
    CALLBACK_TOKEN,
    CORP_ID,
    ENCODING_AES_KEY,
    Role,
    campus_person,
    change_contact_xml,
    deliver,
    member_of,
    run_worker,
    signed_post,
    subscribe_xml,
    sync,
    wechatpy_encrypt,
)
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session
from standins.wecom_api import WeComStandIn

from idbroker.config import get_settings
from idbroker.jobs.models import Job
from idbroker.web.app import create_app
from idbroker.wecom.callbacks.crypto import signature
from idbroker.wecom.callbacks.intake import WeComCallback
from idbroker.wecom.follow import WeComMemberEvent
from idbroker.wecom.state import WeComBatch


@pytest.fixture
def client(engine: Engine, wecom_settings: object) -> Iterator[TestClient]:
    with TestClient(create_app(get_settings())) as test_client:
        yield test_client


def stored(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(WeComCallback)) or 0)


def test_url_verification_answers_the_plain_echostr(client: TestClient) -> None:
    from wechatpy.enterprise.crypto import PrpCrypto

    echostr = PrpCrypto(base64.b64decode(ENCODING_AES_KEY + "=")).encrypt("1616140317555161061", CORP_ID).decode()
    query = {"timestamp": "1409659589", "nonce": "263014780", "echostr": echostr}
    query["msg_signature"] = signature(CALLBACK_TOKEN, query["timestamp"], query["nonce"], echostr)
    response = client.get("/wecom/callback", params=query)
    assert response.status_code == 200 and response.content == b"1616140317555161061"  # alone: no quotes, no newline
    forged = client.get("/wecom/callback", params={**query, "msg_signature": "0" * 40})
    assert forged.status_code == 403


def test_an_event_is_stored_acknowledged_empty_and_applied_by_the_worker(
    engine: Engine, client: TestClient, wecom_api: WeComStandIn
) -> None:
    person = campus_person(engine, "学生", Role("student", "1120210001", phone="+8613800000001"))
    sync(engine)
    userid = member_of(engine, person).userid
    response = deliver(client, subscribe_xml(userid))
    assert response.status_code == 200 and response.content == b""
    assert stored(engine) == 1 and not member_of(engine, person).followed  # stored, not yet applied
    assert run_worker(engine) >= 1
    assert member_of(engine, person).followed
    with Session(engine) as session:
        callback = session.scalars(select(WeComCallback)).one()
        assert (callback.kind, callback.outcome) == ("subscribe", "applied") and callback.processed_at
        assert userid not in callback.encrypt  # the raw event is kept as it came: encrypted


def test_replays_and_retries_are_applied_once(engine: Engine, client: TestClient, wecom_api: WeComStandIn) -> None:
    person = campus_person(engine, "学生", Role("student", "1120210002", phone="+8613800000002"))
    sync(engine)
    userid = member_of(engine, person).userid
    xml = subscribe_xml(userid, at=1_700_000_100)
    query, body = signed_post(xml)
    for _ in range(3):  # WeChat Work retries the very same request …
        assert client.post("/wecom/callback", params=query, content=body).status_code == 200
    for nonce in ("1", "2"):  # … and a replay re-encrypts the same XML (other random bytes, other signature)
        assert deliver(client, xml, nonce=nonce).status_code == 200
    assert stored(engine) == 1
    run_worker(engine)
    deliver(client, xml, nonce="3")
    run_worker(engine)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(WeComMemberEvent)) == 1


def test_distinct_change_contact_events_of_one_second_are_all_kept(
    engine: Engine, client: TestClient, wecom_api: WeComStandIn
) -> None:
    people = [
        campus_person(engine, f"学生{n}", Role("student", f"11202100{n}9", phone=f"+861380000010{n}")) for n in range(3)
    ]
    sync(engine)
    for person in people:  # same FromUserName (sys), same CreateTime: the documented dedupe key would keep one
        userid = member_of(engine, person).userid
        assert deliver(client, change_contact_xml("update_user", UserID=userid, Department="101")).status_code == 200
    assert stored(engine) == 3
    run_worker(engine)
    with Session(engine) as session:
        kinds = session.scalars(select(WeComMemberEvent.kind)).all()  # type: ignore[call-overload]
        assert sorted(kinds) == ["update_user"] * 3


@pytest.mark.parametrize(
    "case",
    [
        "forged signature",
        "wrong corp in the envelope",
        "encrypted for another corp",
        "truncated",
        "garbage",
        "no Encrypt",
        "not xml inside",
        "entity bomb",
        "too large",
    ],
)
def test_bad_callbacks_get_4xx_and_nothing_is_stored(engine: Engine, client: TestClient, case: str) -> None:
    query, body = signed_post(subscribe_xml("wx-someone"))
    if case == "forged signature":
        query["msg_signature"] = signature("not-the-token", query["timestamp"], query["nonce"], "x")
    elif case == "wrong corp in the envelope":
        body = body.replace(CORP_ID.encode(), b"wwanothercorp0001")
    elif case == "encrypted for another corp":
        encrypt, query["msg_signature"] = wechatpy_encrypt(
            subscribe_xml("wx-someone"), query["nonce"], query["timestamp"], corp_id="wwanothercorp0001"
        )
        body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    elif case == "truncated":
        body = body[: len(body) // 2]
    elif case == "garbage":
        body = bytes(range(256)) * 4
    elif case == "no Encrypt":
        body = b"<xml><ToUserName>x</ToUserName></xml>"
    elif case == "not xml inside":
        from idbroker.wecom.callbacks.crypto import CallbackCrypto

        encrypt = CallbackCrypto(CALLBACK_TOKEN, ENCODING_AES_KEY, CORP_ID).encrypt(b"{not: xml}")
        query["msg_signature"] = signature(CALLBACK_TOKEN, query["timestamp"], query["nonce"], encrypt)
        body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    elif case == "entity bomb":
        body = (
            b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
            b"<xml><Encrypt>&b;</Encrypt></xml>"
        )
    elif case == "too large":
        body = b"<xml><Encrypt>" + b"A" * 70_000 + b"</Encrypt></xml>"
    response = client.post("/wecom/callback", params=query, content=body)
    assert 400 <= response.status_code < 500, response.text
    assert stored(engine) == 0
    with Session(engine) as session:
        assert session.scalars(select(Job)).all() == []


def test_a_callback_that_cannot_be_committed_is_not_acknowledged(engine: Engine, client: TestClient) -> None:
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE wecom_member_event"))
        connection.execute(text("DROP TABLE wecom_callback"))  # the database refuses the write
    response = deliver(client, subscribe_xml("wx-someone"))
    assert response.status_code == 503  # WeChat Work will retry; a 200 here would lose the event


def test_follow_status_follows_the_newest_event_and_delete_user_is_recreated_by_the_next_sync(
    engine: Engine, client: TestClient, wecom_api: WeComStandIn
) -> None:
    person = campus_person(engine, "学生", Role("student", "1120210005", phone="+8613800000005"))
    sync(engine)
    userid = member_of(engine, person).userid
    deliver(client, subscribe_xml(userid, "unsubscribe", at=1_700_000_200))
    deliver(client, subscribe_xml(userid, "subscribe", at=1_700_000_100))  # older, arriving late (a retry)
    run_worker(engine)
    assert not member_of(engine, person).followed
    deliver(client, subscribe_xml(userid, "subscribe", at=1_700_000_300))
    run_worker(engine)
    assert member_of(engine, person).followed

    with wecom_api.lock:
        wecom_api.api_user_delete({"userid": userid}, None, None, 0)
    deliver(client, change_contact_xml("delete_user", at=1_700_000_400, UserID=userid))
    run_worker(engine)
    assert not member_of(engine, person).in_corp
    sync(engine)
    assert wecom_api.member(userid) is not None


def test_batch_job_result_marks_the_job(engine: Engine, client: TestClient) -> None:
    with Session(engine) as session:
        session.add(WeComBatch(jobid="job-1", members=3))
        session.commit()
    xml = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[batch_job_result]]></Event><BatchJob><JobId><![CDATA[job-1]]></JobId>"
        "<JobType><![CDATA[sync_user]]></JobType><ErrCode>0</ErrCode><ErrMsg><![CDATA[ok]]></ErrMsg></BatchJob></xml>"
    )
    assert deliver(client, xml).status_code == 200
    run_worker(engine)
    with Session(engine) as session:
        assert session.get(WeComBatch, "job-1").callback_at is not None  # type: ignore[union-attr]
