"""Finding the adapter of a source: an installed entry point, else the file adapter of a mapping file.

Adapters register in the entry-point group `idbroker.sources` (name = source, value = an object that
satisfies `SourceAdapter`). Entry points are loaded lazily and one at a time, so an adapter that is
broken or not yet written only affects its own source.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from idbroker.sources.adapter import FileAdapter, SourceAdapter
from idbroker.sources.mapping import SOURCE_NAME, UnknownSourceError, known_sources, mapping_path

ENTRY_POINT_GROUP = "idbroker.sources"


class AdapterError(RuntimeError):
    """An installed adapter that cannot be loaded or does not fit the interface."""


def _entry_points(source: str | None = None) -> list[EntryPoint]:
    found = entry_points(group=ENTRY_POINT_GROUP)
    return [point for point in found if source is None or point.name == source]


def installed_sources() -> list[str]:
    """The sources that have an adapter installed (whether or not it loads)."""
    return sorted({point.name for point in _entry_points()})


def available_sources(policies_dir: Path) -> list[str]:
    """Every source `adapter_for` may know: installed adapters and mapping files."""
    return sorted(set(installed_sources()) | set(known_sources(policies_dir)))


def adapter_for(source: str, policies_dir: Path) -> SourceAdapter:
    """The adapter that reads `source`. `UnknownSourceError` (listing the known sources) if there is none."""
    points = _entry_points(source) if SOURCE_NAME.fullmatch(source) else []
    if len({point.value for point in points}) > 1:
        listed = ", ".join(sorted(point.value for point in points))
        raise AdapterError(f"source {source!r} has more than one adapter installed: {listed}")
    if points:
        return _load(points[0])
    if SOURCE_NAME.fullmatch(source) and mapping_path(policies_dir, source).is_file():
        return FileAdapter(name=source)
    place = mapping_path(policies_dir, source) if SOURCE_NAME.fullmatch(source) else policies_dir / "sources"
    raise UnknownSourceError(source, place, available_sources(policies_dir))


def _load(point: EntryPoint) -> SourceAdapter:
    try:
        adapter = point.load()
    except Exception as exc:  # an import error, a missing attribute: report it, don't crash discovery
        raise AdapterError(f"the adapter of source {point.name!r} ({point.value}) cannot be loaded: {exc}") from exc
    if not isinstance(adapter, SourceAdapter):
        raise AdapterError(f"{point.value} is not a source adapter (it needs `name` and `read`)")
    if adapter.name != point.name:
        raise AdapterError(f"{point.value} is named {adapter.name!r} but registered for {point.name!r}")
    return adapter
