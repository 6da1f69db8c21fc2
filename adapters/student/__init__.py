"""The student registry (学籍系统) adapter.

Its exports are CSV/XLSX tables, mapped by policies/sources/student.yaml, so the file adapter reads them.
"""

from idbroker.sources.adapter import FileAdapter

adapter = FileAdapter(name="student")
