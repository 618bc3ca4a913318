"""The autoresponder's date logic, as pure functions, checked exhaustively on a small range."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from postmeister.domain.autoresponders.schedule import (
    DateEdit,
    Schedule,
    ScheduleEdit,
    apply_edit,
    edit_problems,
)

DAYS = [dt.date(2026, 3, 27) + dt.timedelta(days=n) for n in range(5)]
ALL_SCHEDULES = [
    Schedule(active, activates, expires)
    for active, activates, expires in itertools.product((True, False), (None, *DAYS), (None, *DAYS))
]


def test_answering_follows_the_data_plane_reading() -> None:
    s = Schedule(active=True, activates=DAYS[1], expires=DAYS[3])
    assert [s.answering(day) for day in DAYS] == [False, True, True, False, False]
    assert not Schedule(active=False, activates=DAYS[0]).answering(DAYS[2])


@pytest.mark.parametrize("schedule", ALL_SCHEDULES)
def test_settling_never_changes_behaviour_and_is_idempotent(schedule: Schedule) -> None:
    for today in DAYS:
        settled = schedule.settled(today)
        assert settled.settled(today) == settled
        # Nothing due is left: pending dates lie in the future.
        assert settled.activates is None or settled.activates > today
        assert settled.expires is None or settled.expires > today
        for later in DAYS[DAYS.index(today) :]:
            assert settled.answering(later) == schedule.answering(later)


def test_settling_late_gives_the_same_row_as_settling_daily() -> None:
    for schedule in ALL_SCHEDULES:
        daily = schedule
        for day in DAYS:
            daily = daily.settled(day)
        assert daily == schedule.settled(DAYS[-1])


TODAY = DAYS[1]


@pytest.mark.parametrize(
    ("current", "edit", "expected"),
    [
        # active switches now and cancels a pending activation
        (Schedule(False), ScheduleEdit(active=True), Schedule(True)),
        (Schedule(True, DAYS[3]), ScheduleEdit(active=True), Schedule(True)),
        (Schedule(True, DAYS[3]), ScheduleEdit(active=False), Schedule(False)),
        (Schedule(True, None, DAYS[3]), ScheduleEdit(active=False), Schedule(False, None, DAYS[3])),
        # activates arms the switch; today or earlier means now
        (Schedule(False), ScheduleEdit(activates=DateEdit(DAYS[3])), Schedule(True, DAYS[3])),
        (Schedule(False), ScheduleEdit(activates=DateEdit(TODAY)), Schedule(True)),
        (Schedule(False), ScheduleEdit(activates=DateEdit(DAYS[0])), Schedule(True)),
        # cancelling a pending activation leaves it off; cancelling none changes nothing
        (Schedule(True, DAYS[3]), ScheduleEdit(activates=DateEdit(None)), Schedule(False)),
        (Schedule(True), ScheduleEdit(activates=DateEdit(None)), Schedule(True)),
        # an activation that came due before the job ran is settled, not cancelled
        (Schedule(True, TODAY), ScheduleEdit(activates=DateEdit(None)), Schedule(True)),
        # expiry
        (Schedule(True), ScheduleEdit(expires=DateEdit(DAYS[3])), Schedule(True, None, DAYS[3])),
        (Schedule(True), ScheduleEdit(expires=DateEdit(TODAY)), Schedule(False)),
        (Schedule(True, None, DAYS[3]), ScheduleEdit(expires=DateEdit(None)), Schedule(True)),
        # off now, on later
        (
            Schedule(True),
            ScheduleEdit(active=False, activates=DateEdit(DAYS[3])),
            Schedule(True, DAYS[3]),
        ),
        # an expired row switched on again stays on
        (Schedule(True, None, DAYS[0]), ScheduleEdit(active=True), Schedule(True)),
    ],
)
def test_edits(current: Schedule, edit: ScheduleEdit, expected: Schedule) -> None:
    assert edit_problems(current, edit, today=TODAY) == []
    assert apply_edit(current, edit, today=TODAY) == expected


def test_contradictions_are_refused() -> None:
    on_and_later = ScheduleEdit(active=True, activates=DateEdit(DAYS[3]))
    [problem] = edit_problems(Schedule(False), on_and_later, today=TODAY)
    assert problem.field == "autoresponder.active"
    backwards = ScheduleEdit(activates=DateEdit(DAYS[4]), expires=DateEdit(DAYS[3]))
    [problem] = edit_problems(Schedule(False), backwards, today=TODAY)
    assert problem.field == "autoresponder.expires"
    # The order is checked against what is stored, too.
    [problem] = edit_problems(
        Schedule(True, DAYS[4]), ScheduleEdit(expires=DateEdit(DAYS[3])), today=TODAY
    )
    assert problem.rule == "dates"
