"""Reading addresses: every query is scoped by `access.visible_domains`, so an address
outside the actor's scope is indistinguishable from a missing one (`NotFound`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import BigInteger, ColumnElement, Select, func, literal, select
from sqlalchemy.orm import Session

from postmeister.domain.access import Actor, visible_domains
from postmeister.domain.addresses.loading import Order, fetch
from postmeister.domain.addresses.schemas import AddressPage, Kind
from postmeister.domain.addresses.syntax import parse_address
from postmeister.domain.domains.service import get_domain
from postmeister.errors import InvalidInput, NotFound
from postmeister.models import Address, Domain


def visible_addresses(actor: Actor, *, by_key: bool = False) -> Select[Address]:
    """The addresses in the actor's visible domains (`access.visible_domains`). Read them
    with `loading.fetch` for their details, with `session.scalars` for the bare rows.

    `by_key`: the caller adds a condition on a unique key (id, address), so the domain of the
    one row found is checked (a correlated EXISTS, one primary key lookup). Otherwise the
    actor's domains are listed first (`IN`), which a page needs but which costs a customer
    with 10,000 domains 5 ms on SQLite before a single-row lookup can even start.
    """
    domains = visible_domains(actor).with_only_columns(Domain.id)
    if by_key:
        return select(Address).where(domains.where(Domain.id == Address.domain_id).exists())
    return select(Address).where(Address.domain_id.in_(domains.scalar_subquery()))


def get_address(
    session: Session, actor: Actor, key: str | int, *, kind: Kind | None = None
) -> Address:
    """One visible address by its full address (any case/IDNA form) or its numeric id.

    An address of another kind than `kind` is reported missing: for the controller API an
    alias is not an account.
    """
    statement = visible_addresses(actor, by_key=True)
    if isinstance(key, int):
        statement = statement.where(Address.id == key)
    else:
        try:
            canonical = parse_address(key).address
        except InvalidInput as exc:
            raise NotFound(kind or "address", key) from exc
        statement = statement.where(Address.address == canonical)
    loaded = fetch(session, statement)
    found = loaded[0] if loaded else None
    if found is None or (kind is not None and found.kind != kind):
        raise NotFound(kind or "address", str(key))
    return found


def _cursor(value: int) -> Any:
    """A page cursor as a BIGINT parameter: a neighbour of the largest id (id + 1) must
    not overflow PostgreSQL's INTEGER; comparing INTEGER with BIGINT still uses the index."""
    return literal(value, BigInteger)


def _of_kind_in_domain(
    session: Session,
    actor: Actor,
    *,
    kind: Kind | None,
    domain: str | None,
    by_key: bool = False,
) -> Select[Address]:
    """The visible addresses of one kind in one domain (either filter optional)."""
    statement = visible_addresses(actor, by_key=by_key)
    if kind is not None:
        statement = statement.where(Address.kind == kind)
    if domain is not None:
        statement = statement.where(Address.domain_id == get_domain(session, actor, domain).id)
    return statement


def count_addresses(
    session: Session, actor: Actor, *, kind: Kind | None = None, domain: str | None = None
) -> int:
    """How many visible addresses `list_addresses` would return with the same filters:
    one COUNT over the same visible statement."""
    statement = _of_kind_in_domain(session, actor, kind=kind, domain=domain)
    counted = select(func.count()).select_from(statement.subquery())
    return int(session.scalar(counted) or 0)


def list_address_slice(
    session: Session,
    actor: Actor,
    *,
    offset: int,
    limit: int,
    kind: Kind | None = None,
    domain: str | None = None,
) -> list[Address]:
    """`limit` visible addresses from position `offset` in id order (numbered pages)."""
    statement = _of_kind_in_domain(session, actor, kind=kind, domain=domain)
    return fetch(session, statement, order=Address.id, offset=offset, limit=limit)


def stream_addresses(
    session: Session,
    actor: Actor,
    *,
    kind: Kind | None = None,
    domain: str | None = None,
    chunk: int = 1000,
) -> Iterator[list[Address]]:
    """Every visible address in id order, `chunk` at a time: one keyset statement per chunk
    (`id > last id of the previous chunk`), so memory stays bounded by one chunk however
    many addresses there are.

    All chunks are read in the caller's transaction. The session's identity map is cleared
    after each chunk has been consumed, so the caller must not keep the addresses of a chunk
    (nor change anything in the session) once it asks for the next one. An unknown `domain`
    raises `NotFound` before the first chunk.
    """
    statement = _of_kind_in_domain(session, actor, kind=kind, domain=domain)
    after: int | None = None
    while True:
        page = statement if after is None else statement.where(Address.id > _cursor(after))
        found = fetch(session, page, order=Address.id, limit=chunk)
        if not found:
            return
        after = found[-1].id
        yield found
        del found
        session.expunge_all()


def list_addresses(
    session: Session,
    actor: Actor,
    *,
    kind: Kind | None = None,
    domain: str | None = None,
    package_id: int | None = None,
    address: str | None = None,
    after_id: int | None = None,
    before_id: int | None = None,
    limit: int | None = None,
    details: bool = True,
) -> list[Address]:
    """Visible addresses in id order; `after_id`/`before_id` + `limit` give keyset pages.

    With `before_id` the page is the `limit` addresses just before it (still in id order).
    `details=False` skips loading targets, permissions, autoresponder, domain and usage
    (three joins and two list columns): for callers that only ask whether there is any address.
    """
    canonical: str | None = None
    if address is not None:
        try:
            canonical = parse_address(address).address
        except InvalidInput:
            return []
    statement = _of_kind_in_domain(
        session, actor, kind=kind, domain=domain, by_key=canonical is not None
    )
    if package_id is not None:
        package_domains = select(Domain.id).where(Domain.package_id == package_id)
        statement = statement.where(Address.domain_id.in_(package_domains))
    if canonical is not None:
        statement = statement.where(Address.address == canonical)
    if after_id is not None:
        statement = statement.where(Address.id > _cursor(after_id))
    if before_id is not None:
        statement = statement.where(Address.id < _cursor(before_id))
        backwards = _read(session, statement, Address.id.desc(), limit, details=details)
        return list(reversed(backwards))
    return _read(session, statement, Address.id, limit, details=details)


def _read(
    session: Session,
    statement: Select[Address],
    order: Order,
    limit: int | None,
    *,
    details: bool,
) -> list[Address]:
    if details:
        return fetch(session, statement, order=order, limit=limit)
    return list(session.scalars(statement.order_by(order).limit(limit)).all())


def list_address_page(
    session: Session,
    actor: Actor,
    *,
    size: int,
    after_id: int | None = None,
    before_id: int | None = None,
    kind: Kind | None = None,
    domain: str | None = None,
    package_id: int | None = None,
    address: str | None = None,
) -> AddressPage:
    """A page of at most `size` visible addresses after `after_id` or before `before_id`.

    Each page costs two index range scans whatever the page number: one for the page and
    one row more (is there a next page?), one row on the other side (is there a previous
    one?). No count, no offset, so page 20,000 of a million addresses is as fast as page 1.
    """
    filters: dict[str, Any] = {
        "kind": kind,
        "domain": domain,
        "package_id": package_id,
        "address": address,
    }
    found = list_addresses(
        session, actor, after_id=after_id, before_id=before_id, limit=size + 1, **filters
    )
    overflow = len(found) > size
    if before_id is not None:
        # Paging backwards: the extra row is the oldest one, before the page.
        page = found[1:] if overflow else found
        more_before = overflow
        more_after = bool(
            list_addresses(
                session, actor, after_id=before_id - 1, limit=1, details=False, **filters
            )
        )
    else:
        page = found[:size]
        more_after = overflow
        more_before = after_id is not None and bool(
            list_addresses(
                session, actor, before_id=after_id + 1, limit=1, details=False, **filters
            )
        )
    return AddressPage(addresses=page, more_before=more_before, more_after=more_after)


# How many characters of a search the list takes; an address has at most 254 octets.
SEARCH_LENGTH = 320


@dataclass(frozen=True)
class AddressSearch:
    """A page of the customer menu's address list and how it is ordered: by id (every
    address, one address, one domain) or by address (a prefix); its cursors are ids or
    addresses accordingly."""

    page: AddressPage
    order: Literal["id", "address"]

    def cursors(self) -> tuple[str, str] | None:
        """The values that page back and forth from this page (None: an empty page)."""
        if not self.page.addresses:
            return None
        first, last = self.page.addresses[0], self.page.addresses[-1]
        if self.order == "id":
            return str(first.id), str(last.id)
        return first.address, last.address


def search_address_page(
    session: Session,
    actor: Actor,
    text: str,
    *,
    size: int,
    after: str | None = None,
    before: str | None = None,
) -> AddressSearch:
    """What a person typed into the address search, as one keyset page.

    - nothing: every visible address;
    - a whole address (any case, U-label or A-label domain): that address;
    - a visible domain's name (with or without a leading @): its addresses;
    - anything else: the addresses that start with it (`ali` finds alice@ in every domain,
      `alice@exa` finds alice@example.org), in address order.

    A domain of another customer is not one of the actor's domains, so its name is searched
    as a prefix and matches none of the actor's addresses: the same answer as a domain that
    does not exist. Every case is an index range scan, however many addresses there are.
    """
    text = text.strip()[:SEARCH_LENGTH]

    def by_id(*, address: str | None = None, domain: str | None = None) -> AddressSearch:
        found = list_address_page(
            session, actor, size=size, after_id=_id(after), before_id=_id(before),
            address=address, domain=domain,
        )  # fmt: skip
        return AddressSearch(found, "id")

    if not text:
        return by_id()
    domain = text.removeprefix("@")  # "@example.org" is meant as the domain too
    if "@" in domain:
        try:
            return by_id(address=parse_address(text).address)
        except InvalidInput:
            pass  # not a whole address: a prefix
    else:
        try:
            return by_id(domain=domain)
        except (InvalidInput, NotFound):
            pass  # not one of the actor's domains: a prefix
    found = list_prefix_page(
        session, actor, prefix=text.lower(), size=size, after=after, before=before
    )
    return AddressSearch(found, "address")


def _id(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) <= 18 else None


def _byte_order(session: Session) -> ColumnElement[str]:
    """The address column compared by code point: a prefix is then exactly a range.
    SQLite compares text that way already (BINARY); PostgreSQL by the database's collation
    unless told `COLLATE "C"`, which the index `ix_addresses_address_bytes` is built with."""
    if session.get_bind().dialect.name == "postgresql":
        return Address.address.collate("C")
    return Address.address.expression


def _prefix_end(prefix: str) -> str | None:
    """The smallest text after every text that starts with `prefix` (None: no bound)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1)
        prefix = prefix[:-1]
    return None


def list_prefix_page(
    session: Session,
    actor: Actor,
    *,
    prefix: str,
    size: int,
    after: str | None = None,
    before: str | None = None,
) -> AddressPage:
    """A page of at most `size` visible addresses starting with `prefix`, in address order,
    after the address `after` or before `before`: a range of the address index, like
    `list_address_page`'s pages of the id order."""
    column = _byte_order(session)
    in_range = [column >= prefix]
    end = _prefix_end(prefix)
    if end is not None:
        in_range.append(column < end)

    def rows(*conditions: ColumnElement[bool], descending: bool = False) -> list[Address]:
        statement = visible_addresses(actor).where(*in_range, *conditions)
        order = column.desc() if descending else column
        return fetch(session, statement, order=order, limit=size + 1)

    def any_of(*conditions: ColumnElement[bool]) -> bool:
        probe = visible_addresses(actor).where(*in_range, *conditions)
        return session.scalar(probe.with_only_columns(Address.id).limit(1)) is not None

    if before is not None:
        found = list(reversed(rows(column < before, descending=True)))
        overflow = len(found) > size
        return AddressPage(
            addresses=found[1:] if overflow else found,
            more_before=overflow,
            more_after=any_of(column >= before),
        )
    found = rows() if after is None else rows(column > after)
    return AddressPage(
        addresses=found[:size],
        more_before=after is not None and any_of(column <= after),
        more_after=len(found) > size,
    )
