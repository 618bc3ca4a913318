"""The current instant and the local day, injectable so that tests control time.

Every "what day is it" question in Postmeister goes through a `Calendar`: the configured
time zone (`scheduler.timezone`, Europe/Berlin by default) decides the day, whatever the
host's own zone, and a test replaces `clock` to walk across midnight or a DST change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

Clock = Callable[[], dt.datetime]  # returns an aware instant


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Calendar:
    zone: ZoneInfo
    clock: Clock = system_clock

    @classmethod
    def named(cls, zone: str, clock: Clock = system_clock) -> Calendar:
        """Raises `zoneinfo.ZoneInfoNotFoundError` for an unknown zone: better at start
        than at the first midnight."""
        return cls(ZoneInfo(zone), clock)

    def now(self) -> dt.datetime:
        instant = self.clock()
        if instant.tzinfo is None:
            raise ValueError("the clock must return aware datetimes")
        return instant

    def local_day(self, instant: dt.datetime) -> dt.date:
        """The date on a wall calendar in the zone at `instant`, which must be aware (stored
        timestamps are read back aware, see `postmeister.db.UtcDateTime`)."""
        if instant.tzinfo is None:
            raise ValueError("local_day needs an aware datetime")
        return instant.astimezone(self.zone).date()

    def today(self) -> dt.date:
        return self.local_day(self.now())
