"""`idbroker keys rotate KIND` for each kind, on both databases: old data readable, new data on the new
version, the pass moving every stored value, matching across versions meanwhile, retirement, the audit."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import HR_HEADER, STUDENT_HEADER, national_id, staff, student, write_csv
from sqlalchemy import Engine, select
from sqlmodel import Session
from typer.testing import CliRunner, Result

from idbroker.audit.models import AuditEvent
from idbroker.audit.verify import verify_chain
from idbroker.cli.main import app
from idbroker.clock import utcnow
from idbroker.config import get_settings
from idbroker.contacts.models import MessageDelivery, VerificationFlow
from idbroker.directory.models import SourceRecord
from idbroker.directory.protect import Protector
from idbroker.jobs.worker import run_once
from idbroker.keys.models import KeyRotation
from idbroker.keys.reencrypt import QUEUE
from idbroker.oidc.keys import KeyStore, create_key
from idbroker.oidc.models import SigningKey
from idbroker.release.models import Pseudonym
from idbroker.release.pseudonyms import Pseudonyms, compute, pseudonym_key, reverse
from idbroker.sources.importer import run_import
from idbroker.wecom.token_cache import WeComToken

ID_A = national_id(date(2001, 3, 4), 12)
ID_B = national_id(date(2001, 3, 4), 34)  # the same birth date, another person
ID_C = national_id(date(1980, 1, 2), 22)
_VALID = national_id(date(2002, 7, 8), 23)
BAD_ID = _VALID[:-1] + ("1" if _VALID[-1] == "0" else "0")  # a wrong check digit: set aside, kept encrypted
ENV_FILE = Path("var/idbroker.env")  # relative to the test's cwd (tmp_path): what the CLI writes by default


def run(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def do_import(engine: Engine, path: Path, source: str) -> None:
    with Session(engine) as session:
        run_import(session, source=source, location=str(path), settings=get_settings(), actor="test", full=False)
        session.commit()


def seed_every_cipher(engine: Engine, tmp_path: Path) -> dict[str, Any]:
    """One value in each ciphertext column (and a set-aside value), all under the current version."""
    rows = [
        student("1120210001", "李娜", "女", "2001-03-04", ID_A, "本科", "2021", "13800138000"),
        student("1120210002", "王刚", "男", "2002-07-08", BAD_ID, "本科", "2021", "13900139000"),
    ]
    do_import(engine, write_csv(tmp_path / "students.csv", STUDENT_HEADER, rows), "student")
    protector = Protector.from_settings(get_settings())
    with Session(engine, expire_on_commit=False) as session:
        person = session.scalars(select(SourceRecord.person_id).where(SourceRecord.key == "1120210001")).one()
        delivery = MessageDelivery(
            person_id=person,
            channel="sms",
            template="verify",
            recipient_cipher=protector.encrypt("+8613800138000", "message_recipient"),
            recipient_hint="138****8000",
            params_cipher=protector.encrypt(json.dumps({"code": "424242"}), "message_params"),
        )
        session.add(delivery)
        session.flush()
        session.add(
            VerificationFlow(
                id="flow1",
                person_id=person,
                purpose="phone",
                channel="sms",
                method="code",
                target_cipher=protector.encrypt("+8613800138000", "verification_target"),
                target_hash=protector.keyed_hash("phone\x00+8613800138000", "contact_target"),
                expires_at=utcnow() + timedelta(minutes=10),
                delivery_id=delivery.id,
            )
        )
        session.add(WeComToken(cache_key="corp", token_cipher=protector.encrypt("access-token", "wecom_token")))
        signing = create_key(session, get_settings())
        session.commit()
    return {"person": person, "delivery": delivery.id, "kid": signing.kid}


def plain_values(engine: Engine) -> dict[str, Any]:
    """Every stored ciphertext opened with the current settings (fails if any is unreadable)."""
    protector = Protector.from_settings(get_settings())
    with Session(engine) as session:
        records = session.scalars(select(SourceRecord).order_by(SourceRecord.key)).all()  # type: ignore[arg-type]
        delivery = session.scalars(select(MessageDelivery)).one()
        flow = session.get(VerificationFlow, "flow1")
        token = session.get(WeComToken, "corp")
        key = session.scalars(select(SigningKey)).one()
        assert flow is not None and token is not None and token.token_cipher and delivery.params_cipher
        return {
            "national_ids": [protector.decrypt(r.national_id_cipher) for r in records if r.national_id_cipher],
            "set_aside": [protector.decrypt(i["value"], "set_aside") for r in records for i in r.set_aside],
            "recipient": protector.decrypt(delivery.recipient_cipher, "message_recipient"),
            "params": protector.decrypt(delivery.params_cipher, "message_params"),
            "target": protector.decrypt(flow.target_cipher, "verification_target"),
            "token": protector.decrypt(token.token_cipher, "wecom_token"),
            "signing_key": json.loads(protector.decrypt(key.private_key_cipher, "oidc-signing-key"))["kty"],
        }


def stored_ciphers(engine: Engine) -> list[str]:
    with Session(engine) as session:
        values: list[str] = []
        for record in session.scalars(select(SourceRecord)):
            values += [record.national_id_cipher or ""] + [item["value"] for item in record.set_aside]
        for delivery in session.scalars(select(MessageDelivery)):
            values += [delivery.recipient_cipher, delivery.params_cipher or ""]
        values += [f.target_cipher for f in session.scalars(select(VerificationFlow))]
        values += [t.token_cipher or "" for t in session.scalars(select(WeComToken))]
        values += [k.private_key_cipher for k in session.scalars(select(SigningKey))]
        return [value for value in values if value]


def actions(engine: Engine) -> list[tuple[str, dict[str, Any]]]:
    with Session(engine) as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("keys.%")).order_by(AuditEvent.seq)  # type: ignore[attr-defined]
        )
        return [(e.action, json.loads(e.details)) for e in events]


def drain(engine: Engine) -> int:
    ran = 0
    while run_once(engine, [QUEUE]):
        ran += 1
    return ran


def test_rotating_the_encryption_key(engine: Engine, tmp_path: Path) -> None:
    seeded = seed_every_cipher(engine, tmp_path)
    before = plain_values(engine)
    assert before["set_aside"] == [BAD_ID] and before["national_ids"] == [ID_A]

    result = run("keys", "rotate", "encryption")
    assert result.exit_code == 0, result.output
    assert "created IDBROKER_ENCRYPTION_KEY_K2 in var/idbroker.env" in result.output
    assert ENV_FILE.stat().st_mode & 0o777 == 0o600
    assert ENV_FILE.read_text().count("IDBROKER_ENCRYPTION_KEY_K2=") == 1
    settings = get_settings()
    assert Protector.from_settings(settings).encryption.current == "k2"

    # Old values stay readable under the new settings; new values use k2.
    assert plain_values(engine) == before
    assert {value[:3] for value in stored_ciphers(engine)} == {"k1:"}
    status = run("keys", "status")
    assert "encryption: current k2; configured k2, k1" in status.output
    assert "source_record.set_aside: k1 1" in status.output and "on an old version: 7" in status.output
    with Session(engine) as session:  # the OIDC signing key sealed under k1 still signs
        assert KeyStore(engine, settings).keys(session).kid == seeded["kid"]
    rows = [staff("6120170001", "赵敏", "女", "1980-01-02", ID_C, "13700137000")]
    do_import(engine, write_csv(tmp_path / "hr.csv", HR_HEADER, rows), "hr")
    with Session(engine) as session:
        record = session.scalars(select(SourceRecord).where(SourceRecord.key == "6120170001")).one()
        assert record.national_id_cipher is not None and record.national_id_cipher.startswith("k2:")

    # The worker moves everything, batch after batch; nothing is lost.
    assert drain(engine) >= 1
    assert {value[:3] for value in stored_ciphers(engine)} == {"k2:"}
    after = plain_values(engine)
    assert sorted(after["national_ids"]) == sorted([ID_A, ID_C])
    assert {k: v for k, v in after.items() if k != "national_ids"} == {
        k: v for k, v in before.items() if k != "national_ids"
    }
    assert "on an old version: 0" in run("keys", "status").output
    with Session(engine) as session:
        cursor = session.get(KeyRotation, "encryption")
        assert cursor is not None and cursor.finished_at is not None and cursor.values_moved == 7
    assert run("keys", "reencrypt", "encryption").output.strip() == "encryption: every stored value already uses k2"

    # k1 of the encryption key derives pseudonym k1 and the checkpoint key: never retired; k2 is current.
    refused = run("keys", "retire", "encryption", "k1")
    assert refused.exit_code == 1 and "derives pseudonym k1" in refused.output
    refused = run("keys", "retire", "encryption", "k2")
    assert refused.exit_code == 1 and "k2 is the current encryption key" in refused.output

    # A third version; k2 may go once nothing uses it, not before.
    assert run("keys", "rotate", "encryption").exit_code == 0
    refused = run("keys", "retire", "encryption", "k2")
    assert refused.exit_code == 1 and "stored values still use encryption k2" in refused.output
    assert "IDBROKER_ENCRYPTION_KEY_K2=" in ENV_FILE.read_text()
    done = run("keys", "reencrypt", "encryption", "--batch", "2")
    assert done.exit_code == 0 and "encryption: 8 values moved to k3" in done.output
    retired = run("keys", "retire", "encryption", "k2")
    assert retired.exit_code == 0, retired.output
    text = ENV_FILE.read_text()
    assert "IDBROKER_ENCRYPTION_KEY_K2" not in text and "IDBROKER_ENCRYPTION_KEY_K3=" in text
    get_settings.cache_clear()
    assert plain_values(engine)["recipient"] == "+8613800138000"

    logged = actions(engine)
    assert [a for a, _ in logged] == [
        "keys.rotate",
        "keys.reencrypted",
        "keys.rotate",
        "keys.reencrypted",
        "keys.retire",
    ]
    assert logged[0][1] == logged[4][1] == {"kind": "encryption", "version": "k2"}
    assert logged[1][1] == {"kind": "encryption", "version": "k2", "values": 7}
    with Session(engine) as session:
        assert verify_chain(session).ok


def test_rotating_the_national_id_hash_key_keeps_matching(engine: Engine, tmp_path: Path) -> None:
    rows = [
        student("1120210001", "李娜", "女", "2001-03-04", ID_A, "本科", "2021", "13800138000"),
        student("1120210003", "李娜", "女", "2001-03-04", ID_B, "本科", "2021", "13600136000"),
    ]
    do_import(engine, write_csv(tmp_path / "students.csv", STUDENT_HEADER, rows), "student")
    assert run("keys", "rotate", "national-id-hash").exit_code == 0

    # During the rotation: the same person arrives from HR, hashed under k2; the student record is still k1.
    rows = [staff("6120250001", "李娜", "女", "2001-03-04", ID_A, "13500135000")]
    do_import(engine, write_csv(tmp_path / "hr.csv", HR_HEADER, rows), "hr")
    with Session(engine) as session:
        found = {r.key: r for r in session.scalars(select(SourceRecord))}
    assert found["1120210001"].national_id_hash.startswith("k1$")  # type: ignore[union-attr]
    assert found["6120250001"].national_id_hash.startswith("k2$")  # type: ignore[union-attr]
    assert found["6120250001"].person_id == found["1120210001"].person_id  # matched across versions
    assert found["1120210003"].person_id != found["1120210001"].person_id  # a different ID still vetoes

    # The re-hash pass moves every hash to k2; the people stay as they are.
    assert "on an old version: 2" in run("keys", "status").output
    moved = run("keys", "reencrypt", "national-id-hash")
    assert moved.exit_code == 0 and "national-id-hash: 2 values moved to k2" in moved.output
    protector = Protector.from_settings(get_settings())
    with Session(engine) as session:
        after = {r.key: r for r in session.scalars(select(SourceRecord))}
    for key, record in after.items():
        assert record.national_id_hash == protector.keyed_hash(protector.decrypt(record.national_id_cipher or ""))
        assert record.national_id_hash.startswith("k2$") and record.person_id == found[key].person_id  # type: ignore[union-attr]
    assert run("link", "--full").exit_code == 0
    with Session(engine) as session:
        relinked = {r.key: r.person_id for r in session.scalars(select(SourceRecord))}
    assert relinked["6120250001"] == relinked["1120210001"] != relinked["1120210003"]


def test_retiring_hash_k1_once_nothing_uses_it(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ENV_FILE.parent.mkdir(parents=True, exist_ok=True)  # the key in the env file, as `keys init` leaves it
    ENV_FILE.write_text(f"IDBROKER_NATIONAL_ID_HASH_KEY={os.environ['IDBROKER_NATIONAL_ID_HASH_KEY']}\n")
    ENV_FILE.chmod(0o600)
    monkeypatch.delenv("IDBROKER_NATIONAL_ID_HASH_KEY")
    get_settings.cache_clear()
    rows = [student("1120210001", "李娜", "女", "2001-03-04", ID_A, "本科", "2021", "13800138000")]
    do_import(engine, write_csv(tmp_path / "students.csv", STUDENT_HEADER, rows), "student")

    assert run("keys", "rotate", "national-id-hash").exit_code == 0
    refused = run("keys", "retire", "national-id-hash", "k1")
    assert refused.exit_code == 1 and "1 stored values still use national-id-hash k1" in refused.output
    assert drain(engine) >= 1  # the worker's pass
    retired = run("keys", "retire", "national-id-hash", "k1")
    assert retired.exit_code == 0, retired.output
    assert "IDBROKER_NATIONAL_ID_HASH_KEY=" not in ENV_FILE.read_text()
    assert "IDBROKER_NATIONAL_ID_HASH_KEY_K2=" in ENV_FILE.read_text()
    status = run("keys", "status")
    assert status.exit_code == 0 and "national-id-hash: current k2; configured k2\n" in status.output
    rows.append(student("1120210009", "李娜", "女", "2001-03-04", ID_A, "硕士", "2024", "13800138000"))
    do_import(engine, write_csv(tmp_path / "students2.csv", STUDENT_HEADER, rows), "student")
    with Session(engine) as session:
        people = set(session.scalars(select(SourceRecord.person_id)))
    assert len(people) == 1  # k2 alone still matches


def test_rotating_the_pseudonym_key(engine: Engine, tmp_path: Path) -> None:
    do_import(
        engine,
        write_csv(
            tmp_path / "s.csv",
            STUDENT_HEADER,
            [student("1120210001", "李娜", "女", "2001-03-04", ID_A, "本科", "2021", "13800138000")],
        ),
        "student",
    )
    with Session(engine) as session:
        person = session.scalars(select(SourceRecord.person_id)).one()
        assert person is not None
        bus = Pseudonyms(get_settings()).own(session, "bus.example", person)
        session.commit()
    k1 = pseudonym_key(get_settings())

    result = run("keys", "rotate", "pseudonym")
    assert result.exit_code == 0 and "IDBROKER_PSEUDONYM_KEY_K2" in result.output
    settings = get_settings()
    with Session(engine) as session:
        pseudonyms = Pseudonyms(settings)
        library = pseudonyms.own(session, "library.example", person)
        assert library == compute(pseudonym_key(settings, "k2"), "library.example", person)
        assert library != compute(k1, "library.example", person)
        assert pseudonyms.canonical(session, "bus.example", person) == bus  # a stored pseudonym never changes
        assert reverse(session, "bus.example", bus).id == person
        session.commit()
        versions = {p.sector: p.key_version for p in session.scalars(select(Pseudonym))}
    assert versions == {"bus.example": "k1", "library.example": "k2"}
    assert "pseudonym.key_version: k1 1, k2 1" in run("keys", "status").output
    refused = run("keys", "retire", "pseudonym", "k1")
    assert refused.exit_code == 1 and "derived from the encryption key" in refused.output
    nothing = run("keys", "reencrypt", "pseudonym")
    assert nothing.exit_code == 1 and "stored pseudonyms never change" in nothing.output


def test_rotating_the_signing_keys(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        first = create_key(session, get_settings())
        session.commit()
    result = run("keys", "rotate", "signing")
    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        keys = {k.kid: k for k in session.scalars(select(SigningKey))}
        current = KeyStore(engine, get_settings()).keys(session)
    assert len(keys) == 2 and current.kid != first.kid and keys[first.kid].retired_at is not None
    assert f"signing key {current.kid} is now in use" in result.output and first.kid in result.output
    assert actions(engine) == [("keys.rotate", {"kind": "signing", "kid": current.kid})]
    assert "signing: 2 published" in run("keys", "status").output


def test_unknown_kinds_and_versions_are_clear_errors(engine: Engine) -> None:
    result = run("keys", "rotate", "everything")
    assert result.exit_code == 1 and "unknown key kind 'everything'" in result.output
    result = run("keys", "retire", "encryption", "k7")
    assert result.exit_code == 1 and "has no version k7" in result.output
    assert not ENV_FILE.exists() and actions(engine) == []
