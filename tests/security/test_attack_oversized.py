"""Oversized bodies and import bombs.

Over HTTP: a body over `IDBROKER_MAX_REQUEST_BYTES` gets 413 on every route of the app (its router list),
declared (Content-Length) or chunked, before a handler sees it, with the security headers on the answer.
In imports (`idbroker import …`): a CSV whose quotes never balance or nest into a giant field, a workbook
that expands far beyond its size (honestly declared or lying in its zip headers), a sheet whose XML defines
entities (billion laughs) and a huge row count within the size limit are refused or imported row by row,
with a clear message naming the file, and nothing half-written.

Elsewhere (not repeated here): a file over `IDBROKER_MAX_IMPORT_BYTES` refused before reading, a field over
the field limit, an honest zip bomb and a corrupt member (`tests/sources/test_tables.py`).
"""

from __future__ import annotations

import socket
import struct
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from attack_support import app_routes, snapshot
from factories import STUDENT_HEADER, student, write_csv
from fastapi.testclient import TestClient
from plugins.wecom import CALLBACK_TOKEN, CORP_ID, ENCODING_AES_KEY
from sqlalchemy import Engine
from sqlmodel import Session

from idbroker.config import Settings, get_settings
from idbroker.sources.importer import run_import
from idbroker.sources.tables import MAX_FIELD_CHARS, UnreadableFile, read_table
from idbroker.web.app import create_app

LIMIT = 4096


@pytest.fixture
def live_server_overrides() -> dict[str, Any]:
    wecom = {
        "wecom_corp_id": CORP_ID,
        "wecom_callback_token": CALLBACK_TOKEN,
        "wecom_encoding_aes_key": ENCODING_AES_KEY,
    }
    return {"max_request_bytes": LIMIT, **wecom}


def fill(path: str) -> str:
    for name in ("flow_id", "contact_id", "token", "person_id", "operation_id", "candidate_id", "approval_id",
                 "client_id", "pseudonym", "number", "checkpoint_id", "delivery_id", "signature"):  # fmt: skip
        path = path.replace("{" + name + "}", "1")
    return path.replace("{verdict}", "approve")


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "application/json", "text/xml"])
def test_every_route_answers_413_to_a_declared_body_over_the_limit(sqlite_engine: Engine, content_type: str) -> None:
    settings = Settings(
        database_url=str(sqlite_engine.url), demo_mode=True, cas_server_url=None, max_request_bytes=LIMIT
    )
    app = create_app(settings)
    routes = app_routes(app)
    with TestClient(app, follow_redirects=False) as client:
        for route in routes:  # warm up: whatever a first request makes lazily (the demo app, a signing key)
            client.request(route.method, fill(route.path))
        before = snapshot(sqlite_engine)
        answers = {
            route.label: client.request(
                route.method, fill(route.path), content=b"a=" + b"x" * LIMIT, headers={"content-type": content_type}
            )
            for route in routes
        }
    assert {label: r.status_code for label, r in answers.items() if r.status_code != 413} == {}
    assert all(r.headers.get("x-content-type-options") == "nosniff" for r in answers.values())
    assert snapshot(sqlite_engine) == before


def chunked_post(url: str, path: str, content_type: str) -> bytes:
    port = int(url.rsplit(":", 1)[1])
    chunk = b"x" * 1024
    body = b"".join(b"400\r\n" + chunk + b"\r\n" for _ in range(8))  # 8 KiB and never a last chunk
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        head += f"Content-Type: {content_type}\r\n\r\n"
        sock.sendall(head.encode() + body)
        return sock.recv(4096)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/wecom/callback?msg_signature=x&timestamp=1&nonce=1", "text/xml"),
        ("/oidc/token", "application/x-www-form-urlencoded"),
        ("/oidc/introspect", "application/x-www-form-urlencoded"),
        ("/oidc/revoke", "application/x-www-form-urlencoded"),
        ("/oidc/userinfo", "application/x-www-form-urlencoded"),
        ("/oidc/authorize", "application/x-www-form-urlencoded"),
        ("/oidc/logout", "application/x-www-form-urlencoded"),
        ("/contacts/reports/cloud/x", "application/json"),
        ("/logout", "application/x-www-form-urlencoded"),
        ("/api/apps/v1/people/resolve", "application/json"),
    ],
)
def test_a_chunked_body_is_cut_off_at_the_limit_on_every_route_that_reads_one_unauthenticated(
    live_server: Any, path: str, content_type: str
) -> None:
    answer = chunked_post(live_server.url, path, content_type)
    assert answer.startswith((b"HTTP/1.1 413", b"HTTP/1.1 401")), answer[:200]  # 401: refused before reading it
    assert b"content-security-policy" in answer.lower()


# --- imports -----------------------------------------------------------------------------------------------


def import_refused(engine: Engine, path: Path, reason: str, **settings: Any) -> None:
    before = snapshot(engine)
    with Session(engine) as session, pytest.raises(UnreadableFile) as caught:
        run_import(session, source="student", location=str(path), settings=get_settings().model_copy(update=settings),
                   actor="test")  # fmt: skip
    assert reason in str(caught.value) and path.name in str(caught.value)
    assert snapshot(engine) == before


def test_quotes_that_never_balance_or_nest_into_a_giant_field_are_refused(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    engine = sqlite_engine
    header = ",".join(STUDENT_HEADER)
    nested = tmp_path / "nested.csv"
    nested.write_text(f'{header}\n1120101234,"' + '""' * (MAX_FIELD_CHARS + 1) + '"\n', encoding="utf-8")
    import_refused(engine, nested, "row 2: malformed CSV (field larger than")
    unbalanced = tmp_path / "unbalanced.csv"
    unbalanced.write_text(f'{header}\n1120101234,"张帅\n' + "1120101235,李娜\n" * 50_000, encoding="utf-8")
    import_refused(engine, unbalanced, "malformed CSV")


def test_many_rows_within_the_size_limit_are_imported_row_by_row(sqlite_engine: Engine, tmp_path: Path) -> None:
    rows = [student(f"11201{n:05d}", "张帅", "男", "1992-05-17", "", "本科", "2010", "") for n in range(1_000)]
    keyless = [student("", "张帅", "男", "1992-05-17", "", "本科", "2010", "")] * 1_000
    path = write_csv(
        tmp_path / "many.csv", STUDENT_HEADER, [row for pair in zip(rows, keyless, strict=True) for row in pair]
    )
    with Session(sqlite_engine) as session:
        report = run_import(session, source="student", location=str(path), settings=get_settings(), actor="test")
        session.commit()
    assert report.counts["new"] == 1_000 and report.counts["skipped"] == 1_000
    assert [problem.row for problem in report.problems] == list(range(3, 2_002, 2))  # each keyless row, named


def lie_about_sizes(path: Path, member: str, declared: int) -> None:
    """Rewrite `member`'s uncompressed size in its local header and central directory entry."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    struct.pack_into("<I", data, info.header_offset + 22, declared)
    position = 0
    while True:
        position = data.find(b"PK\x01\x02", position)
        assert position >= 0, "central directory entry not found"
        name_length = struct.unpack_from("<H", data, position + 28)[0]
        if data[position + 46 : position + 46 + name_length] == member.encode():
            struct.pack_into("<I", data, position + 24, declared)
            break
        position += 4
    path.write_bytes(bytes(data))


def workbook(path: Path) -> Path:
    book = openpyxl.Workbook()
    book.active.append(STUDENT_HEADER)
    book.active.append(student("1120101234", "张帅", "男", "1992-05-17", "", "本科", "2010", "13812345678"))
    book.save(path)
    return path


def test_a_workbook_lying_about_its_expanded_size_is_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    engine = sqlite_engine
    path = workbook(tmp_path / "liar.xlsx")
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/padding.bin", b"\x00" * (64 * 1024 * 1024))  # 64 MiB of zeros, ~64 KiB packed
    lie_about_sizes(path, "xl/media/padding.bin", 1024)
    import_refused(engine, path, "corrupt")


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>',
        '<!DOCTYPE worksheet [<!ENTITY d SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE worksheet [<!ENTITY d SYSTEM "http://127.0.0.1:{port}/x">]>',
        '<!DOCTYPE worksheet [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p.dtd"> %p;]>',
    ],
    ids=["billion laughs", "external entity (file)", "external entity (http)", "parameter entity"],
)
def test_a_sheet_with_entities_is_refused(sqlite_engine: Engine, tmp_path: Path, doctype: str) -> None:
    engine = sqlite_engine
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.settimeout(0.3)
        path = sheet_with(tmp_path / "entities.xlsx", doctype.replace("{port}", str(listener.getsockname()[1])))
        with pytest.raises(UnreadableFile):
            list(read_table(path, max_bytes=10 * 1024 * 1024).rows)
        import_refused(engine, path, "entities.xlsx")
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing was fetched


def test_a_sheet_naming_an_external_dtd_fetches_nothing(tmp_path: Path) -> None:
    """A DTD reference alone is harmless to the parser (never loaded, nothing declared): no connection."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.settimeout(0.3)
        port = listener.getsockname()[1]
        path = sheet_with(tmp_path / "dtd.xlsx", f'<!DOCTYPE worksheet SYSTEM "http://127.0.0.1:{port}/evil.dtd">')
        try:
            rows = [row.values for row in read_table(path, max_bytes=10 * 1024 * 1024).rows]
        except UnreadableFile:
            rows = []
        assert all("&" not in value for row in rows for value in row)
        with pytest.raises(TimeoutError):
            listener.accept()


def sheet_with(path: Path, doctype: str) -> Path:
    """A one-row workbook whose first sheet declares `doctype` and uses `&d;` (if declared) in a name."""
    workbook(path)
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    sheet = members["xl/worksheets/sheet1.xml"].decode()
    head, rest = sheet.split("?>", 1) if sheet.startswith("<?xml") else ("", sheet)
    if "ENTITY d" in doctype or "ENTITY a" in doctype:
        rest = rest.replace("张帅", "张帅&d;")
    members["xl/worksheets/sheet1.xml"] = ((head + "?>" if head else "") + doctype + rest).encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path
