"""Keyset paging over any statement: the page, and whether there is more on either side.

Shared by every list of the hosting dialect's conventions (`page[size]`, `page[after]`,
`page[before]`). Each page costs one range scan of the key's index for the page (one row
more: is there a next page?) and one single-row probe on the other side; no count, no
offset, so a late page is as fast as the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    more_before: bool
    more_after: bool


def keyset_page(
    session: Session,
    statement: Select[T],
    key: InstrumentedAttribute[Any],
    *,
    size: int,
    after: int | None = None,
    before: int | None = None,
) -> Page[T]:
    """At most `size` rows of `statement` in `key` order, after `after` or before `before`."""

    def probe(condition: Any) -> bool:
        return session.scalars(statement.where(condition).limit(1)).first() is not None

    if before is not None:
        found = list(
            session.scalars(statement.where(key < before).order_by(key.desc()).limit(size + 1))
        )
        overflow = len(found) > size
        items = list(reversed(found[:size]))
        return Page(items=items, more_before=overflow, more_after=probe(key >= before))
    ordered = statement.order_by(key)
    if after is not None:
        ordered = ordered.where(key > after)
    found = list(session.scalars(ordered.limit(size + 1)))
    more_before = after is not None and probe(key <= after)
    return Page(items=found[:size], more_before=more_before, more_after=len(found) > size)
