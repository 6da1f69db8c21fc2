"""Pseudonyms: HMAC-SHA256(versioned key, sector ‖ 0x00 ‖ internal ID), stored, reversible by the broker
alone, one per sector, and stable through merges and un-merges."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from plugins.apps import Campus
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from idbroker.config import get_settings
from idbroker.linking.merge import merge_people, unmerge
from idbroker.release.models import Pseudonym
from idbroker.release.nicknames import nickname
from idbroker.release.pseudonyms import KEY_VERSION, Pseudonyms, UnknownPseudonym, reverse

BUS, LIBRARY = "bus.example.edu", "library.example.edu"


def test_the_value_is_the_documented_hmac_and_is_stored(engine: Engine, campus: Campus) -> None:
    settings = get_settings()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"idbroker pseudonym k1").derive(
        settings.key("encryption_key")
    )
    mac = hmac.new(key, BUS.encode() + b"\x00" + campus.li.encode(), hashlib.sha256).digest()
    expected = base64.b32encode(mac[:20]).decode().lower()
    with Session(engine) as session:
        assert Pseudonyms(settings).canonical(session, BUS, campus.li) == expected
        session.commit()
        row = session.scalars(select(Pseudonym)).one()
    assert (row.sector, row.value, row.person_id, row.key_version) == (BUS, expected, campus.li, KEY_VERSION)
    assert len(expected) == 32 and expected.isascii() and expected.isalnum()
    assert campus.li not in expected


def test_one_pseudonym_per_sector_reversible_by_the_broker(engine: Engine, campus: Campus) -> None:
    pseudonyms = Pseudonyms(get_settings())
    with Session(engine) as session:
        bus = pseudonyms.canonical(session, BUS, campus.li)
        library = pseudonyms.canonical(session, LIBRARY, campus.li)
        assert bus != library
        assert pseudonyms.canonical(session, BUS, campus.li) == bus  # stable, not re-made
        assert reverse(session, BUS, bus).id == campus.li
        with pytest.raises(UnknownPseudonym):
            reverse(session, LIBRARY, bus)  # another sector's pseudonym means nothing here
        assert session.scalar(select(func.count()).select_from(Pseudonym)) == 2
        assert nickname("bus", bus) != nickname("canteen", bus)  # a nickname per app
        assert nickname("bus", bus) == nickname("bus", bus)


def test_merge_keeps_both_pseudonyms_and_unmerge_gives_each_its_own(engine: Engine, campus: Campus) -> None:
    pseudonyms = Pseudonyms(get_settings())
    bachelor, master = campus.zhang_bachelor, campus.zhang_master
    with Session(engine) as session:
        p_bachelor = pseudonyms.canonical(session, BUS, bachelor)
        p_master = pseudonyms.canonical(session, BUS, master)
        only_master_known = pseudonyms.canonical(session, LIBRARY, master)  # the library knew the master only
        operation = merge_people(session, bachelor, master, actor="test", reason="same person")
        session.commit()

        # the survivor's pseudonym is canonical; the absorbed one resolves to the survivor
        assert pseudonyms.canonical(session, BUS, master) == p_bachelor
        assert pseudonyms.canonical(session, BUS, bachelor) == p_bachelor
        assert reverse(session, BUS, p_master).id == bachelor
        assert reverse(session, BUS, p_bachelor).id == bachelor
        # a sector that only knew the absorbed person keeps seeing the pseudonym it knows
        assert pseudonyms.canonical(session, LIBRARY, bachelor) == only_master_known
        assert reverse(session, LIBRARY, only_master_known).id == bachelor

        unmerge(session, operation.id, actor="test", reason="two people after all")
        session.commit()
        assert pseudonyms.canonical(session, BUS, master) == p_master
        assert pseudonyms.canonical(session, BUS, bachelor) == p_bachelor
        assert reverse(session, BUS, p_master).id == master
        assert pseudonyms.canonical(session, LIBRARY, master) == only_master_known
        assert pseudonyms.canonical(session, LIBRARY, bachelor) != only_master_known
