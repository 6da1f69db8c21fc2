"""How bulk work treats Python's memory management."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collector_paused() -> Iterator[None]:
    """Bulk work (an import, a link) holds millions of small objects without reference cycles, freed by reference
    counting alone. Python's cycle collector would walk all of them again each time the heap grows by a quarter:
    seconds per million records, a third of a campus's first link. It is paused inside, and resumed after if it
    was running before."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
