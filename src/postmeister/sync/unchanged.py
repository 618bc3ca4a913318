"""Which of a document's domains already hold exactly what it says, asked of the database.

Most syncs are polls of a document that has not changed. Reading every stored address into
Python to find that nothing differs cost more than parsing the document (150,000 addresses:
1.4 s against 0.9 s). Instead the database renders each domain's addresses as one canonical
text, which is compared with the same text rendered from the document: a domain whose texts
are equal is left out of the plan without a single row leaving the database.

The text is a shortcut, never a rule of its own: equal texts mean that `plan.make_plan`
would find no change in the domain (same addresses, each of the same kind with the same
hash or the same recipients in the same order, and where the document gives them the same
whitelist and subaddress switch); any other difference, also one that `make_plan` would
not count (recipients in another order), only sends the domain down the full path.

One line per address, sorted by address (`ORDER BY` in the database with byte order, which
is Python's order for the ASCII canonical forms): `address US m US hash` for a mailbox,
`address US f US recipients` for a forward; the document's optional account keys compare
as `address US 0|1 US whitelist`, for mailboxes only. US and RS are ASCII control
characters, which no valid stored value contains (hashes are printable, addresses and
whitelist entries canonical); the number of addresses is compared as well.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, String, and_, case, func, literal, null, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from postmeister.domain.access import Actor, visible_domains
from postmeister.models import Address, Domain, ForwardTarget, SenderPermission
from postmeister.sync.document import DomainEntry, SyncDocument

US: Final = "\x1f"  # between the fields of a line
RS: Final = "\x1e"  # between lines
LIST: Final = ","  # between recipients or whitelist entries (never in a canonical one)
CHUNK: Final = 200  # domains per statement, as `bulk.load_current` reads them


def unchanged_domains(
    session: Session, actor: Actor, document: SyncDocument, domain_ids: Mapping[str, int]
) -> dict[str, int]:
    """The document's domains (A-label -> number of stored addresses) whose stored addresses
    are exactly what the document says; `domain_ids` are the resolved, visible domains."""
    wanted = {name: text for name, e in document.domains.items() if (text := _text(e))}
    same: dict[str, int] = {}
    for chunk in _chunks(list(wanted)):
        ids = {domain_ids[name]: name for name in chunk}
        extras = any(wanted[name][1] is not None for name in chunk)
        stored = session.execute(_stored_texts(session, actor, ids, extras=extras))
        for domain_id, count, core, extra in stored:
            name = ids[domain_id]
            entry, (addresses, options) = document.domains[name], wanted[name]
            if (
                count == len(entry.accounts) + len(entry.aliases)
                and (core or "") == addresses
                and (options is None or (extra or "") == options)
            ):
                same[name] = count
    return same


def _text(entry: DomainEntry) -> tuple[str, str | None] | None:
    """The domain's canonical text as the document says it: the addresses, and the optional
    account keys when every account gives them (None: left out everywhere); None when only
    some accounts give them (such a domain takes the full path)."""
    suffix = "@" + entry.name
    gives = {
        (a.spoofing_whitelist is not None, a.subaddress_extension is not None)
        for a in entry.accounts
    }
    if len(gives) > 1 or gives == {(True, False)} or gives == {(False, True)}:
        return None
    lines = [f"{a.local_part}{suffix}{US}m{US}{a.password_hash}" for a in entry.accounts]
    lines += [f"{a.local_part}{suffix}{US}f{US}{LIST.join(a.targets)}" for a in entry.aliases]
    lines.sort()
    extra = None
    if gives == {(True, True)}:
        extras = [
            f"{a.local_part}{suffix}{US}{int(bool(a.subaddress_extension))}{US}"
            + LIST.join(a.spoofing_whitelist or ())
            for a in entry.accounts
        ]
        extras.sort()
        extra = RS.join(extras)
    return RS.join(lines), extra


def _stored_texts(
    session: Session, actor: Actor, ids: Collection[int], *, extras: bool
) -> Select[int, int, str | None, str | None]:
    """One row per visible domain among `ids`: id, number of addresses, the address text and
    (with `extras`, else NULL) the mailboxes' subaddress and whitelist text, as `_text`
    renders them. Correlated per domain, so each list is read in index order, unsorted."""
    postgres = session.get_bind().dialect.name == "postgresql"
    in_domain = Address.domain_id == Domain.id
    mailbox = Address.kind == "mailbox"
    sep = literal(US, String)
    targets = _joined(
        ForwardTarget.target,
        LIST,
        ForwardTarget.address_id == Address.id,
        ForwardTarget.position,
        Address,
        postgres,
    )
    core = (
        Address.address
        + sep
        + case(
            (mailbox, literal("m", String) + sep + func.coalesce(Address.password_hash, "")),
            else_=literal("f", String) + sep + func.coalesce(targets, ""),
        )
    )
    extra: Any = null()
    if extras:
        patterns = _joined(
            SenderPermission.pattern,
            LIST,
            SenderPermission.address_id == Address.id,
            SenderPermission.position,
            Address,
            postgres,
        )
        line = (
            Address.address
            + sep
            + case((Address.subaddress_extension, literal("1", String)), else_=literal("0", String))
            + sep
            + func.coalesce(patterns, "")
        )
        extra = _joined(line, RS, and_(in_domain, mailbox), _by_address(postgres), Domain, postgres)
    count = select(func.count()).where(in_domain).correlate(Domain).scalar_subquery()
    texts = _joined(core, RS, in_domain, _by_address(postgres), Domain, postgres)
    return (
        visible_domains(actor)
        .with_only_columns(Domain.id, count, texts, extra)
        .where(Domain.id.in_(list(ids)))
    )


def _by_address(postgres: bool) -> ColumnElement[str]:
    # Byte order, which is Python's for these ASCII texts ("C": PostgreSQL's database
    # collation may sort punctuation otherwise; SQLite compares bytes already).
    return Address.address.collate("C") if postgres else Address.address.expression


def _joined(
    value: ColumnElement[Any] | InstrumentedAttribute[Any],
    separator: str,
    where: ColumnElement[bool],
    order: ColumnElement[Any] | InstrumentedAttribute[Any],
    outer: Any,
    postgres: bool,
) -> Any:
    """The `value`s of the rows `where` selects (correlated to `outer`), in `order`, as one
    text joined by `separator` (NULL for none)."""
    if postgres:
        joined = func.aggregate_strings(value, separator).aggregate_order_by(order)
        return select(joined).where(where).correlate(outer).scalar_subquery()
    # SQLite before 3.44 has no ORDER BY inside group_concat; it aggregates an ordered
    # subquery in that order (were it ever not to, the texts would differ: the full path).
    rows = select(value.label("value")).where(where).order_by(order).correlate(outer).subquery()
    return select(func.aggregate_strings(rows.c.value, separator)).scalar_subquery()


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
