"""Parsing a large export on every core: rows are independent, so chunks go to worker processes and come
back in order while the importer writes what is already parsed. Small files are parsed in-process."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from itertools import islice

from idbroker.sources.rows import ParsedRow, RowParser

Item = tuple[str, dict[str, str], dict[str, str]]  # key, mapped cells, extra cells
PARALLEL_ABOVE = 20_000  # rows; below this, starting processes costs more than it saves
CHUNK = 2_000

_parser: RowParser | None = None


def _start(parser: RowParser) -> None:
    global _parser
    _parser = parser


def _parse_chunk(items: list[Item]) -> list[ParsedRow]:
    assert _parser is not None
    return [_parser.parse(key, raw, extra) for key, raw, extra in items]


def _chunks(items: list[Item]) -> Iterator[list[Item]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk


def parse_rows(parser: RowParser, items: list[Item]) -> Iterator[ParsedRow]:
    """Parse `items` in order; on more than one core and above `PARALLEL_ABOVE` rows, in worker processes."""
    workers = min(os.cpu_count() or 1, 4)
    if workers < 2 or len(items) <= PARALLEL_ABOVE:
        for key, raw, extra in items:
            yield parser.parse(key, raw, extra)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process holding database connections
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start, initargs=(parser,)) as pool:
        for chunk in pool.map(_parse_chunk, _chunks(items)):
            yield from chunk
