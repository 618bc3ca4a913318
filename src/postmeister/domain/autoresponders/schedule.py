"""When an autoresponder answers: the owner's switch and its two dates, as pure functions.

The stored row is the contract the data plane reads (`dataplane_v1_autoresponders`): `active`
is the owner's *switch*, `activates` the first local day it answers, `expires` the first local
day it no longer answers. The data plane applies the dates itself, so replies start and stop
at local midnight even while the controller is down. Everything here keeps that reading true:

    answering(today) = active and not (activates > today) and not (expires <= today)

A date is a *pending* switch. Once its day has come it has done its work, and `settled()`
writes the outcome into the row: a due activation is dropped (the switch is on already), a due
expiry turns the switch off and is dropped. Settling never changes whether the autoresponder
answers, today or on any later day; it only makes the row say what happens, so that a later
manual change (switching on again after an expiry) is not undone by an old date. The
scheduler settles every row shortly after local midnight, and once at start for the days it
missed; API reads settle on the fly, so what they show is right even before the job has run.

What a request means, applied in this order:
- `active: true|false` switches on or off now and cancels a pending activation;
- `activates: DAY` arms the switch for DAY (off until then; on at once for today or a past
  day); `activates: null` cancels a pending activation, which leaves the autoresponder off;
- `expires: DAY` switches off on DAY (at once for today or a past day); `null` cancels it.
`active: true` together with a future `activates` contradicts itself and is refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from postmeister.errors import FieldProblem


@dataclass(frozen=True)
class Schedule:
    """The stored state of one autoresponder: the switch and the pending dates."""

    active: bool
    activates: dt.date | None = None
    expires: dt.date | None = None

    def answering(self, today: dt.date) -> bool:
        """Whether replies go out on the local day `today`."""
        if self.activates is not None and self.activates > today:
            return False
        if self.expires is not None and self.expires <= today:
            return False
        return self.active

    def settled(self, today: dt.date) -> Schedule:
        """The same behaviour with the switches due by `today` applied (idempotent)."""
        settled = self
        if settled.expires is not None and settled.expires <= today:
            settled = replace(settled, active=False, expires=None)
        if settled.activates is not None and settled.activates <= today:
            settled = replace(settled, activates=None)
        return settled


@dataclass(frozen=True)
class DateEdit:
    """A requested date; `day=None` removes the date."""

    day: dt.date | None


@dataclass(frozen=True)
class ScheduleEdit:
    """What one request asks for; None means "leave as it is"."""

    active: bool | None = None
    activates: DateEdit | None = None
    expires: DateEdit | None = None


def edit_problems(
    current: Schedule, edit: ScheduleEdit, *, today: dt.date, field: str = "autoresponder"
) -> list[FieldProblem]:
    """Why `edit` cannot be applied to `current`; [] if it can."""
    problems: list[FieldProblem] = []
    activates_day = edit.activates.day if edit.activates is not None else None
    if edit.active is True and activates_day is not None and activates_day > today:
        problems.append(
            FieldProblem(
                f"{field}.active",
                "cannot switch on now and also wait for a future activation date; "
                "send either active or activates",
                "dates",
            )
        )
    result = _applied(current.settled(today), edit, today=today)
    if (
        result.activates is not None
        and result.expires is not None
        and result.expires < result.activates
    ):
        problems.append(
            FieldProblem(f"{field}.expires", "must not be before the activation date", "dates")
        )
    return problems


def apply_edit(current: Schedule, edit: ScheduleEdit, *, today: dt.date) -> Schedule:
    """The settled schedule after `edit`; check `edit_problems` first."""
    return _applied(current.settled(today), edit, today=today).settled(today)


def _applied(current: Schedule, edit: ScheduleEdit, *, today: dt.date) -> Schedule:
    result = current
    if edit.active is not None:
        result = replace(result, active=edit.active, activates=None)
    if edit.activates is not None:
        day = edit.activates.day
        if day is not None:
            result = replace(result, active=True, activates=day)
        elif result.activates is not None and result.activates > today:
            # Cancelling a pending activation: the autoresponder was waiting, so it stays off.
            result = replace(result, active=False, activates=None)
        else:
            result = replace(result, activates=None)
    if edit.expires is not None:
        result = replace(result, expires=edit.expires.day)
    return result
