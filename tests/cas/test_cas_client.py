"""The CAS 3.0 client against the CAS stand-in over real HTTP: p3 first, 2.0 fallback, every refusal named."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from idbroker_adapters.cas.client import CasClient, parse_service_response
from services.availability import free_port
from standins.cas_server import CasStandIn

from idbroker.web.cas import CasRefused, CasUnavailable

SERVICE = "https://idbroker.example.edu/login/cas?next=%2Fme%3Ftab%3D1"


def client(cas: CasStandIn) -> CasClient:
    return CasClient(cas.url, timeout=5)


def test_login_url_carries_the_service_url_encoded(cas_server: CasStandIn) -> None:
    url = client(cas_server).login_url(SERVICE)
    parts = urlsplit(url)
    assert url.startswith(f"{cas_server.url}/login?service=https%3A%2F%2Fidbroker.example.edu%2Flogin%2Fcas%3Fnext")
    assert parse_qs(parts.query) == {"service": [SERVICE]}
    assert parse_qs(urlsplit(client(cas_server).login_url(SERVICE, renew=True)).query)["renew"] == ["true"]


def test_a_valid_ticket_gives_the_uid_and_attributes_through_p3(cas_server: CasStandIn) -> None:
    cas_server.add_user("1120101234", affiliation=["student", "member"])
    ticket = cas_server.issue_ticket("1120101234", SERVICE)
    principal = client(cas_server).validate(ticket, SERVICE)
    assert principal.uid == "1120101234"
    assert principal.attributes["affiliation"] == ["student", "member"]  # multi-valued: the element repeats
    assert principal.attributes["isFromNewLogin"] == ["true"]
    assert cas_server.validations == ["/p3/serviceValidate"]


def test_a_cas_2_server_is_asked_at_service_validate_when_p3_is_404(cas_server: CasStandIn) -> None:
    cas_server.p3_enabled = False
    ticket = cas_server.issue_ticket("6120170032", SERVICE)
    principal = client(cas_server).validate(ticket, SERVICE)
    assert principal.uid == "6120170032"
    assert principal.attributes == {}  # CAS 2.0 answers without attributes
    assert cas_server.validations == ["/serviceValidate"]  # the p3 404 did not use the ticket up


def test_a_ticket_is_good_once(cas_server: CasStandIn) -> None:
    ticket = cas_server.issue_ticket("1120101234", SERVICE)
    client(cas_server).validate(ticket, SERVICE)
    with pytest.raises(CasRefused) as refused:
        client(cas_server).validate(ticket, SERVICE)
    assert refused.value.code == "INVALID_TICKET"


def test_a_ticket_for_another_service_is_refused(cas_server: CasStandIn) -> None:
    ticket = cas_server.issue_ticket("1120101234", "https://evil.example.com/login/cas?next=%2F")
    with pytest.raises(CasRefused) as refused:
        client(cas_server).validate(ticket, SERVICE)
    assert refused.value.code == "INVALID_SERVICE"


def test_the_service_must_match_exactly(cas_server: CasStandIn) -> None:
    ticket = cas_server.issue_ticket("1120101234", SERVICE)
    with pytest.raises(CasRefused) as refused:
        client(cas_server).validate(ticket, SERVICE.replace("%2Fme", "/me"))
    assert refused.value.code == "INVALID_SERVICE"


def test_an_expired_ticket_is_refused(cas_server: CasStandIn) -> None:
    ticket = cas_server.issue_ticket("1120101234", SERVICE)
    cas_server.age_tickets(301)
    with pytest.raises(CasRefused) as refused:
        client(cas_server).validate(ticket, SERVICE)
    assert refused.value.code == "INVALID_TICKET"
    assert "expired" in refused.value.message


def test_a_forged_ticket_is_refused(cas_server: CasStandIn) -> None:
    with pytest.raises(CasRefused) as refused:
        client(cas_server).validate("ST-1-0123456789abcdef0123456789abcdef", SERVICE)
    assert refused.value.code == "INVALID_TICKET"


@pytest.mark.parametrize("ticket", ["", "PT-123-abc", "ST-", "ST-abc def", "ST-abc<x>", "ST-" + "a" * 254, "TGT-1-x"])
def test_a_malformed_ticket_never_leaves_the_broker(cas_server: CasStandIn, ticket: str) -> None:
    with pytest.raises(CasRefused) as refused:
        client(cas_server).validate(ticket, SERVICE)
    assert refused.value.code == "INVALID_TICKET_SPEC"
    assert cas_server.validations == []


def test_an_unreachable_server_is_unavailable_not_refused() -> None:
    with pytest.raises(CasUnavailable):
        CasClient(f"http://127.0.0.1:{free_port()}/cas", timeout=2).validate("ST-1-abc", SERVICE)


def test_xml_with_entities_is_not_expanded() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess>'
        b"<cas:user>&b;</cas:user></cas:authenticationSuccess></cas:serviceResponse>"
    )
    with pytest.raises(CasUnavailable, match="not well-formed"):
        parse_service_response(bomb)


def test_answers_that_are_not_cas_are_unavailable() -> None:
    for body in (b"<html>login</html>", b"not xml", b'<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"/>'):
        with pytest.raises(CasUnavailable):
            parse_service_response(body)
