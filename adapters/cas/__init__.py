"""The CAS source: its people from a CSV/XLSX export, or straight from its LDAP directory.

`idbroker import cas ldap://HOST:PORT/BASE-DN` reads the directory (see `ldap_reader`); any other location
is a file path, read like every other source's export (see `files`).
"""

from __future__ import annotations

from idbroker.config import Settings
from idbroker.sources.mapping import SourceMapping
from idbroker.sources.tables import Table

from .files import read_export
from .ldap_reader import is_ldap_location, mapping_attributes, read_ldap


class CasAdapter:
    """A `SourceAdapter` (idbroker.sources.adapter) for the CAS source."""

    name = "cas"

    def read(self, location: str, mapping: SourceMapping, settings: Settings) -> Table:
        if not is_ldap_location(location):
            return read_export(location, mapping, settings)
        password = settings.ldap_bind_password.get_secret_value() if settings.ldap_bind_password else None
        return read_ldap(
            location,
            mapping_attributes(mapping),
            bind_dn=settings.ldap_bind_dn,
            bind_password=password,
            timeout=settings.ldap_timeout_seconds,
        )


adapter = CasAdapter()

__all__ = ["CasAdapter", "adapter"]
