"""Preparing a large export on every core: rows are independent, so chunks go to worker processes as the file is
read and come back in order while the importer writes what is already prepared. Small files stay in-process."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import chain, islice
from typing import TypeVar

from idbroker.sources.prepare import Prepared, RowPreparer

Item = tuple[str, list[str], str | None]  # key, the row's cells, the stored record's row hash
Tag = TypeVar("Tag")  # what the caller carries along with each row (its row number, its stored record…)
PARALLEL_ABOVE = 20_000  # rows; below this, starting processes costs more than it saves
CHUNK = 2_000
IN_FLIGHT = 3  # chunks sent ahead per worker: enough to keep them busy, little held in memory

_preparer: RowPreparer | None = None


def _start(preparer: RowPreparer) -> None:
    global _preparer
    _preparer = preparer


def _prepare_chunk(items: list[Item]) -> list[Prepared | None]:
    assert _preparer is not None
    return [_preparer.prepare(key, cells, stored_hash) for key, cells, stored_hash in items]


def prepare_rows(preparer: RowPreparer, tagged: Iterable[tuple[Item, Tag]]) -> Iterator[tuple[Prepared | None, Tag]]:
    """Prepare rows in order, each with its tag. Above `PARALLEL_ABOVE` rows, on more than one core, chunks go
    to worker processes while `tagged` is still being produced (the file read, stored records looked up), at
    most `IN_FLIGHT` per worker ahead, and prepared rows come back as soon as the oldest chunk is done."""
    rows = iter(tagged)
    head = list(islice(rows, PARALLEL_ABOVE + 1))
    workers = min(os.cpu_count() or 1, 4)
    if workers < 2 or len(head) <= PARALLEL_ABOVE:
        for (key, cells, stored_hash), tag in chain(head, rows):
            yield preparer.prepare(key, cells, stored_hash), tag
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process holding database connections
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start, initargs=(preparer,)) as pool:
        sent: deque[tuple[Future[list[Prepared | None]], list[Tag]]] = deque()
        all_rows = chain(head, rows)
        while chunk := list(islice(all_rows, CHUNK)):
            sent.append((pool.submit(_prepare_chunk, [item for item, _ in chunk]), [tag for _, tag in chunk]))
            while sent and (len(sent) >= workers * IN_FLIGHT or sent[0][0].done()):
                done, tags = sent.popleft()
                yield from zip(done.result(), tags, strict=True)
        while sent:
            done, tags = sent.popleft()
            yield from zip(done.result(), tags, strict=True)
