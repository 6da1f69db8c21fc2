"""`idbroker.memory.cycle_collector_paused`: bulk work runs without Python's cycle collector, and leaves the collector
as it found it — also when the work fails. The CLI's bulk unit of work (import, link) runs inside it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from idbroker.cli.running import transaction
from idbroker.memory import cycle_collector_paused


@pytest.fixture
def collector_running() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_paused_inside_and_running_again_after(collector_running: None) -> None:
    with cycle_collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_running_again_after_a_failure(collector_running: None) -> None:
    with pytest.raises(RuntimeError), cycle_collector_paused():
        raise RuntimeError("the import failed")
    assert gc.isenabled()


def test_left_paused_when_it_was_paused_before(collector_running: None) -> None:
    gc.disable()
    with cycle_collector_paused(), cycle_collector_paused():
        pass
    assert not gc.isenabled()


def test_the_cli_bulk_unit_of_work_runs_paused_and_other_units_do_not(collector_running: None, engine: Engine) -> None:
    with transaction(bulk=True):
        assert not gc.isenabled()
    assert gc.isenabled()
    with transaction():
        assert gc.isenabled()
