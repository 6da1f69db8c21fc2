"""The human-resources (人事系统) adapter.

Its exports are CSV/XLSX tables, mapped by policies/sources/hr.yaml, so the file adapter reads them.
"""

from idbroker.sources.adapter import FileAdapter

adapter = FileAdapter(name="hr")
