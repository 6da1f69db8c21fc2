"""Reading CAS people straight from its LDAP directory: `ldap://HOST:PORT/BASE-DN` → a `Table`.

The search is `(objectClass=inetOrgPerson)` under the base DN (whole subtree), with the simple paged results
control (RFC 2696), so a directory with a size limit (Active Directory: 1000; OpenLDAP: 500 by default)
still yields every entry — 100,000 people are read page by page, never held in memory at once. The bind
DN and password come from settings (`IDBROKER_LDAP_BIND_DN`, `IDBROKER_LDAP_BIND_PASSWORD`); anonymous
when unset. Credentials in the URL itself are refused: a URL ends up in logs, shell history and reports.

The table's header is the attribute names the mapping asks for (the key first); a multi-valued attribute
(eduPersonAffiliation: student, member) is joined with `;`. Row numbers continue the spreadsheet
convention of file imports: the header is row 1, the n-th entry is row n + 1. The table's name is the URL.

Connecting, binding and the first page all happen before `read_ldap` returns, so a wrong host, a wrong
password or a base DN that does not exist is an `UnreadableFile` before anything is imported. A failure
on a later page surfaces while iterating, as `UnreadableFile` too.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from idbroker.sources.mapping import SourceMapping
from idbroker.sources.tables import Table, TableRow, UnreadableFile

with warnings.catch_warnings():
    # ldap3 2.9 imports names that pyasn1 has deprecated (tagMap, typeMap): noise, not our code.
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3
    from ldap3.core.exceptions import LDAPException

LDAP_SCHEMES = {"ldap": 389, "ldaps": 636}
SEARCH_FILTER = "(objectClass=inetOrgPerson)"
PAGE_SIZE = 500
VALUE_SEPARATOR = ";"


def is_ldap_location(location: str) -> bool:
    return location.lower().startswith(("ldap://", "ldaps://"))


@dataclass(frozen=True)
class LdapLocation:
    """A parsed `ldap[s]://HOST[:PORT]/BASE-DN` (the base DN percent-decoded)."""

    scheme: str
    host: str
    port: int
    base_dn: str

    @property
    def name(self) -> str:
        """The location as reports show it: scheme, host, port and base DN; never a credential."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/{self.base_dn}"


def parse_location(location: str) -> LdapLocation:
    """Parse an LDAP URL; `UnreadableFile` naming what is wrong (never echoing a credential)."""
    try:
        parts = urlsplit(location.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError as exc:
        raise UnreadableFile(_without_credentials(location), f"not a valid LDAP URL ({exc})") from None
    name = _without_credentials(location)
    if scheme not in LDAP_SCHEMES:
        raise UnreadableFile(name, "an LDAP location starts with ldap:// or ldaps://")
    if parts.username is not None or parts.password is not None:
        raise UnreadableFile(
            name,
            "credentials in the URL are not accepted: set IDBROKER_LDAP_BIND_DN and "
            "IDBROKER_LDAP_BIND_PASSWORD instead",
        )
    if not host:
        raise UnreadableFile(name, "the URL has no host (expected ldap://HOST:PORT/BASE-DN)")
    if parts.query or parts.fragment:
        raise UnreadableFile(name, "attributes, scope and filter in the URL are not supported; give only the base DN")
    base_dn = unquote(parts.path.lstrip("/")).strip()
    if not base_dn:
        raise UnreadableFile(name, "the URL has no base DN (expected ldap://HOST:PORT/BASE-DN)")
    return LdapLocation(scheme, host, port or LDAP_SCHEMES[scheme], base_dn)


def _without_credentials(location: str) -> str:
    """`location` with any `user:password@` removed, for messages."""
    scheme, separator, rest = location.strip().partition("://")
    if not separator:
        return location.strip()
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"


def mapping_attributes(mapping: SourceMapping) -> list[str]:
    """The LDAP attributes a source mapping names: its key column, mapped columns and extra columns."""
    return list(dict.fromkeys([mapping.key, *mapping.mapped_columns().values(), *mapping.extra.values()]))


def read_ldap(
    location: str,
    attributes: Sequence[str],
    *,
    bind_dn: str | None = None,
    bind_password: str | None = None,
    timeout: float = 10.0,
    page_size: int = PAGE_SIZE,
) -> Table:
    """Bind, search the people under the base DN page by page, and return them as a table of `attributes`."""
    where = parse_location(location)
    header = list(dict.fromkeys(attributes))
    connection = _connect(where, bind_dn, bind_password, timeout)
    entries = _entries(connection, where, header, page_size, bind_password)
    first = next(entries, None)  # the first page: a missing base DN or a refused search shows here
    rows = _rows(itertools.chain([first] if first is not None else [], entries), header)
    return Table(where.name, header, rows, encoding="ldap")


def _connect(where: LdapLocation, bind_dn: str | None, password: str | None, timeout: float) -> ldap3.Connection:
    server = ldap3.Server(
        where.host,
        port=where.port,
        use_ssl=where.scheme == "ldaps",
        get_info=ldap3.NONE,
        connect_timeout=timeout,
    )
    who = f"as {bind_dn}" if bind_dn else "anonymously"
    connection = ldap3.Connection(
        server,
        user=bind_dn or None,
        password=password if bind_dn else None,
        read_only=True,
        raise_exceptions=True,
        receive_timeout=max(1, math.ceil(timeout)),  # ldap3 packs it into a socket option: whole seconds
        auto_referrals=False,
    )
    try:
        connection.open()
    except LDAPException as exc:
        raise UnreadableFile(where.name, f"cannot connect: {_describe(exc, password)}") from None
    try:
        connection.bind()
    except LDAPException as exc:
        connection.unbind()
        reason = _describe(exc, password)
        if "invalidCredentials" in reason:
            reason = "invalid credentials (check IDBROKER_LDAP_BIND_DN and IDBROKER_LDAP_BIND_PASSWORD)"
        raise UnreadableFile(where.name, f"cannot bind {who}: {reason}") from None
    return connection


def _entries(
    connection: ldap3.Connection, where: LdapLocation, header: list[str], page_size: int, password: str | None
) -> Iterator[dict[str, object]]:
    """The search's entries, page by page; `UnreadableFile` if any page fails. Unbinds at the end."""
    try:
        pages = connection.extend.standard.paged_search(
            where.base_dn,
            SEARCH_FILTER,
            search_scope=ldap3.SUBTREE,
            attributes=header,
            paged_size=page_size,
            generator=True,
        )
        for item in pages:
            if item.get("type") == "searchResEntry":
                yield item
    except LDAPException as exc:
        raise UnreadableFile(where.name, f"the search failed: {_describe(exc, password)}") from None
    except KeyError:  # ldap3 looks for the paging cookie in a response that has none
        raise UnreadableFile(where.name, "the server does not support paged results (RFC 2696)") from None
    finally:
        connection.unbind()


def _rows(entries: Iterator[dict[str, object]], header: list[str]) -> Iterator[TableRow]:
    for index, entry in enumerate(entries, 1):
        found = entry.get("attributes") or {}
        values = [_joined(found.get(name)) for name in header]  # type: ignore[attr-defined]
        if any(values):
            yield TableRow(index + 1, values)


def _joined(value: object) -> str:
    if value is None:
        return ""
    items = value if isinstance(value, list | tuple) else [value]
    texts = (item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item) for item in items)
    return VALUE_SEPARATOR.join(text.strip() for text in texts if text and text.strip())


def _describe(exc: LDAPException, password: str | None) -> str:
    text = str(exc) or type(exc).__name__
    if password:
        text = text.replace(password, "***")
    return text
