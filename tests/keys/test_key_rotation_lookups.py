"""Codes and links made before a hash key rotation keep working after it (checked under their own version),
and stop once that version is retired."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.config import get_settings
from idbroker.contacts.errors import ContactRefused
from idbroker.contacts.models import UpdateLink
from idbroker.contacts.update_link import check_update_link, update_session_person
from idbroker.contacts.verification import codes
from idbroker.directory.models import Person
from idbroker.directory.protect import Protector

K2 = base64.urlsafe_b64encode(bytes(range(1, 33))).decode()


def test_codes_and_links_survive_the_rotation(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    old = Protector.from_settings(get_settings())
    code_hash = codes.code_hash(old, "flow1", "424242")
    with Session(engine) as session:
        session.add(Person(id="p1"))
        session.flush()
        session.add(
            UpdateLink(
                token_hash=codes.token_hash(old, "link-token", "update_link"),
                session_hash=codes.token_hash(old, "session-value", "update_session"),
                session_expires_at=utcnow() + timedelta(minutes=10),
                person_id="p1",
                channel="sms",
                created_by="staff:test",
                expires_at=utcnow() + timedelta(days=1),
            )
        )
        session.commit()

    monkeypatch.setenv("IDBROKER_NATIONAL_ID_HASH_KEY_K2", K2)
    get_settings.cache_clear()
    new = Protector.from_settings(get_settings())
    assert codes.code_hash(new, "flow1", "424242").startswith("k2$")  # new codes use k2
    assert codes.code_matches(new, code_hash, "flow1", "424242")
    assert not codes.code_matches(new, code_hash, "flow1", "424243")
    with Session(engine) as session:
        assert check_update_link(session, "link-token").person_id == "p1"
        assert update_session_person(session, "session-value") == "p1"
        with pytest.raises(ContactRefused):
            check_update_link(session, "another-token")

    # With k1 gone (retired), what only k1 could check is refused, not misread.
    monkeypatch.delenv("IDBROKER_NATIONAL_ID_HASH_KEY")
    get_settings.cache_clear()
    gone = Protector.from_settings(get_settings())
    assert gone.hashing.versions == ["k2"]
    assert not codes.code_matches(gone, code_hash, "flow1", "424242")
    with Session(engine) as session, pytest.raises(ContactRefused):
        check_update_link(session, "link-token")
