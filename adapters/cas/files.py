"""The CAS export as a file (CSV or XLSX, columns uid,cn,mail,mobile,eduPersonAffiliation by default).

A CAS export is an ordinary table, so it is read exactly like every other source's file: by the core's
`FileAdapter`.
"""

from __future__ import annotations

from idbroker.config import Settings
from idbroker.sources.mapping import SourceMapping
from idbroker.sources.tables import Table


def read_export(location: str, mapping: SourceMapping, settings: Settings) -> Table:
    # Imported here: the core's adapter module discovers this package, so a top-level import could cycle.
    from idbroker.sources.adapter import FileAdapter

    return FileAdapter(mapping.source).read(location, mapping, settings)
