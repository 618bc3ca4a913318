"""Two moves of one mailbox never run at once: on PostgreSQL the second fails at once,
before any step, while a move of another mailbox goes ahead; the exclusion is given back
when a move ends, also when it fails."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from postmeister.domain.placement.move import (
    MoveAlreadyRunning,
    MovePlan,
    MoveSteps,
    move_exclusion,
    run_move,
)

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _plan(address_id: int, address: str) -> MovePlan:
    return MovePlan(address_id, address, "mx1", "10.0.0.1", "mx2")


def _recording(calls: list[str]) -> MoveSteps:
    return MoveSteps(
        sync=lambda last: calls.append(f"sync {last}"),
        switch=lambda: calls.append("switch"),
        wait=lambda seconds: calls.append("wait"),
        progress=lambda message: None,
    )


def _move(engine: Engine, plan: MovePlan, calls: list[str]) -> None:
    with move_exclusion(engine, plan):
        run_move(plan, _recording(calls), window=0)


def test_a_second_move_of_one_mailbox_fails_before_any_step(engine: Engine) -> None:
    first = _plan(1, "ann@example.org")
    with move_exclusion(engine, first):
        calls: list[str] = []
        with pytest.raises(MoveAlreadyRunning, match=r"a move of ann@example\.org is already"):
            _move(engine, first, calls)
        assert calls == []
        other: list[str] = []
        _move(engine, _plan(2, "bob@example.org"), other)
        assert other == ["sync False", "switch", "wait", "sync True"]
    again: list[str] = []
    _move(engine, first, again)
    assert again == ["sync False", "switch", "wait", "sync True"]


def test_a_failed_move_gives_the_exclusion_back(engine: Engine) -> None:
    plan = _plan(1, "ann@example.org")
    with pytest.raises(RuntimeError), move_exclusion(engine, plan):
        raise RuntimeError("dsync failed")
    calls: list[str] = []
    _move(engine, plan, calls)
    assert calls[0] == "sync False"
