"""A clock that tests move by hand: what "now" is for the app, the calendar and the jobs."""

from __future__ import annotations

import datetime as dt


class ControlledClock:
    def __init__(self, start: dt.datetime) -> None:
        assert start.tzinfo is not None, "use aware datetimes"
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, instant: dt.datetime) -> None:
        assert instant.tzinfo is not None, "use aware datetimes"
        self.now = instant

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta
