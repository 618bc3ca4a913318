"""Mail domains: owned by a customer, grouped in a package, stored as A-labels.

Admins add, move and delete domains and set alias relations; a customer reads its own
domains and may set the catch-all of its own domains (with a write token), which is judged
by the same target rule as a forward. Another customer's domain is `NotFound`, like a
missing one. Services flush; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from sqlalchemy import BigInteger, Select, delete, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from postmeister.config import DkimSettings
from postmeister.domain.access import Actor, visible_domains
from postmeister.domain.addresses import rules as address_rules
from postmeister.domain.addresses.limits import load_domain_usage, load_limits, load_usage
from postmeister.domain.addresses.rules import PackageLimits, PackageUsage
from postmeister.domain.addresses.schemas import UNSET, Maybe
from postmeister.domain.addresses.syntax import normalise_domain
from postmeister.domain.audit import service as audit
from postmeister.domain.audit import snapshots
from postmeister.domain.audit.rules import REDACTED
from postmeister.domain.customers.service import default_package, get_customer, get_package
from postmeister.domain.dkim import service as dkim_keys
from postmeister.domain.domains import rules
from postmeister.domain.domains.rules import (
    AliasDomainsStayWithTheirCustomer,
    DomainHasAddresses,
)
from postmeister.errors import (
    AlreadyExists,
    FieldProblem,
    InvalidInput,
    LimitReached,
    NotFound,
    PermissionDenied,
)
from postmeister.models import (
    Address,
    ApiTokenDomain,
    CatchallTarget,
    Domain,
    MailboxUsage,
    Package,
)

__all__ = [
    "AliasDomainsStayWithTheirCustomer",
    "DomainChanges",
    "DomainHasAddresses",
    "DomainPage",
    "add_domain",
    "create_domain",
    "delete_domain",
    "get_domain",
    "get_domain_by_id",
    "list_domain_page",
    "update_domain",
]


@dataclass(frozen=True, slots=True)
class DomainChanges:
    """What to change; UNSET leaves a field as it is. `alias_of` None ends the relation."""

    customer_id: Maybe[int] = UNSET
    package_id: Maybe[int] = UNSET
    catchall: Maybe[Sequence[str]] = UNSET
    alias_of: Maybe[str | None] = UNSET

    def admin_only(self) -> bool:
        return any(v is not UNSET for v in (self.customer_id, self.package_id, self.alias_of))


@dataclass(frozen=True, slots=True)
class DomainPage:
    """One keyset page of domains in id order, and whether more lie on either side."""

    domains: list[Domain]
    more_before: bool
    more_after: bool


def add_domain(
    session: Session,
    *,
    customer_id: int,
    name: str,
    package_id: int | None = None,
    dkim: DkimSettings | None = None,
) -> Domain:
    """Add a domain with its DKIM keys (`dkim`: the key settings; None: the defaults)."""
    alabel = normalise_domain(name)
    get_customer(session, customer_id)
    package = (
        get_package(session, customer_id=customer_id, package_id=package_id)
        if package_id is not None
        else default_package(session, customer_id)
    )
    if session.scalar(select(Domain.id).where(Domain.name == alabel)) is not None:
        raise AlreadyExists("domain", alabel)
    domain = Domain(
        customer_id=customer_id,
        package_id=package.id,
        name=alabel,
        display_name=name.strip().rstrip(".").lower(),
    )
    session.add(domain)
    try:
        session.flush()
    except IntegrityError as exc:
        raise AlreadyExists("domain", alabel) from exc
    audit.changed(session, snapshots.DOMAIN, domain, "created")
    dkim_keys.create_keys(session, domain, dkim or DkimSettings())
    return domain


def get_domain(session: Session, actor: Actor, name: str, *, field: str = "domain") -> Domain:
    """The visible domain called `name` (any spelling: U-label, A-label, any case)."""
    alabel = normalise_domain(name, field=field)
    domain = session.scalar(visible_domains(actor).where(Domain.name == alabel))
    if domain is None:
        raise NotFound("domain", name)
    return domain


def _loaded(statement: Select[Domain]) -> Select[Domain]:
    return statement.options(
        selectinload(Domain.catchall_targets),
        selectinload(Domain.alias_of),
        selectinload(Domain.aliases),
    )


def get_domain_by_id(session: Session, actor: Actor, domain_id: int) -> Domain:
    domain = session.scalar(_loaded(visible_domains(actor).where(Domain.id == domain_id)))
    if domain is None:
        raise NotFound("domain", str(domain_id))
    return domain


def _require_admin(actor: Actor, what: str) -> None:
    actor.require_write()
    if not actor.is_admin:
        raise PermissionDenied(f"only an administrator may {what}")


def create_domain(
    session: Session,
    actor: Actor,
    *,
    name: str,
    customer_id: int,
    package_id: int | None = None,
    catchall: Sequence[str] = (),
    alias_of: str | None = None,
    dkim: DkimSettings | None = None,
) -> Domain:
    """Add a domain (admins): to the customer's package (default: its default package),
    with its catch-all and alias relation judged as `update_domain` judges them."""
    _require_admin(actor, "add domains")
    domain = add_domain(
        session, customer_id=customer_id, name=name, package_id=package_id, dkim=dkim
    )
    if catchall or alias_of is not None:
        update_domain(
            session,
            actor,
            domain,
            DomainChanges(
                catchall=list(catchall) if catchall else UNSET,
                alias_of=alias_of if alias_of is not None else UNSET,
            ),
        )
    return get_domain_by_id(session, actor, domain.id)


def _cursor(value: int) -> object:
    return literal(value, BigInteger)


def _listed(
    actor: Actor, *, customer_id: int | None, package_id: int | None, name: str | None
) -> Select[Domain] | None:
    statement = visible_domains(actor)
    if customer_id is not None:
        statement = statement.where(Domain.customer_id == customer_id)
    if package_id is not None:
        statement = statement.where(Domain.package_id == package_id)
    if name is not None:
        try:
            alabel = normalise_domain(name)
        except InvalidInput:
            return None
        statement = statement.where(Domain.name == alabel)
    return statement


def list_domain_page(
    session: Session,
    actor: Actor,
    *,
    size: int,
    after_id: int | None = None,
    before_id: int | None = None,
    customer_id: int | None = None,
    package_id: int | None = None,
    name: str | None = None,
) -> DomainPage:
    """At most `size` visible domains after `after_id` or before `before_id`, in id order:
    one index range scan for the page (and one row more), one row on the other side."""
    statement = _listed(actor, customer_id=customer_id, package_id=package_id, name=name)
    if statement is None:
        return DomainPage(domains=[], more_before=False, more_after=False)
    ids = statement.with_only_columns(Domain.id)
    if before_id is not None:
        found = list(
            session.scalars(
                _loaded(statement.where(Domain.id < _cursor(before_id)))
                .order_by(Domain.id.desc())
                .limit(size + 1)
            )
        )
        found.reverse()
        overflow = len(found) > size
        page = found[1:] if overflow else found
        more_after = session.scalar(ids.where(Domain.id >= _cursor(before_id)).limit(1)) is not None
        return DomainPage(domains=page, more_before=overflow, more_after=more_after)
    lower = statement if after_id is None else statement.where(Domain.id > _cursor(after_id))
    found = list(session.scalars(_loaded(lower).order_by(Domain.id).limit(size + 1)))
    more_before = (
        after_id is not None
        and session.scalar(ids.where(Domain.id <= _cursor(after_id)).limit(1)) is not None
    )
    return DomainPage(domains=found[:size], more_before=more_before, more_after=len(found) > size)


def _resolve_package(
    session: Session,
    domain: Domain,
    changes: DomainChanges,
    customer_id: int,
    problems: list[FieldProblem],
) -> int | None:
    """The package the domain ends up in: the one asked for, which must be the target
    customer's; or, when only the customer changes, that customer's default package."""
    if changes.package_id is UNSET:
        if customer_id == domain.customer_id:
            return domain.package_id
        return default_package(session, customer_id).id
    package = session.get(Package, changes.package_id)
    if package is None or package.customer_id != customer_id:
        problems.append(
            FieldProblem(
                "package_id",
                f"package {changes.package_id} is no package of customer {customer_id}",
                rules.Rule.FOREIGN_PACKAGE,
            )
        )
        return None
    return package.id


def _resolve_alias(
    session: Session,
    actor: Actor,
    domain: Domain,
    changes: DomainChanges,
    customer_id: int,
    has_catchall: bool,
    problems: list[FieldProblem],
) -> Domain | None:
    """The main domain the domain ends up an alias of (None: no alias relation)."""
    if changes.alias_of is UNSET:
        return domain.alias_of
    if changes.alias_of is None:
        return None
    try:
        main = get_domain(session, actor, changes.alias_of, field=rules.ALIAS_FIELD)
    except NotFound:
        problems.append(
            FieldProblem(rules.ALIAS_FIELD, f"no domain {changes.alias_of!r} is hosted here")
        )
        return None
    problems.extend(
        rules.alias_problems(
            domain_id=domain.id,
            customer_id=customer_id,
            main_id=main.id,
            main_customer_id=main.customer_id,
            main_is_alias=main.alias_of_id is not None,
            has_aliases=bool(domain.aliases),
            has_catchall=has_catchall,
        )
    )
    return main


def _catchall(
    session: Session, domain: Domain, values: Sequence[str], problems: list[FieldProblem]
) -> list[str]:
    targets, found = rules.catchall_targets(values)
    problems.extend(found)
    own_domains = {domain.name, *(alias.name for alias in domain.aliases)}
    local_targets = [t for t in targets if t.rpartition("@")[2] in own_domains]
    existing = (
        set(session.scalars(select(Address.address).where(Address.address.in_(local_targets))))
        if local_targets
        else set()
    )
    problems.extend(rules.catchall_loop_problems(targets, own_domains, existing))
    return targets


def update_domain(session: Session, actor: Actor, domain: Domain, changes: DomainChanges) -> None:
    """Change any number of fields at once: all of them or, if one breaks a rule, none.

    Moving (customer, package, alias relation) is for admins; the catch-all also for the
    customer itself. A domain changing its customer takes its addresses along, is no longer
    managed by the old customer's sync source, and leaves the old customer's domain-limited
    tokens. A domain in an alias relation keeps its customer.
    """
    if changes.admin_only():
        _require_admin(actor, "move domains or change alias domains")
    else:
        actor.require_write()
    problems: list[FieldProblem] = []
    customer_id = domain.customer_id
    if changes.customer_id is not UNSET:
        customer_id = get_customer(session, changes.customer_id).id
    package_id = _resolve_package(session, domain, changes, customer_id, problems)
    targets: list[str] | None = None
    if changes.catchall is not UNSET:
        targets = _catchall(session, domain, changes.catchall, problems)
    has_catchall = bool(targets) if targets is not None else bool(domain.catchall_targets)
    main = _resolve_alias(session, actor, domain, changes, customer_id, has_catchall, problems)
    if main is not None and changes.alias_of is UNSET and targets:
        problems.append(rules.alias_catchall_problem())
    if problems:
        raise InvalidInput(problems)
    moving = customer_id != domain.customer_id
    if moving and (main is not None or domain.aliases):
        raise AliasDomainsStayWithTheirCustomer(domain.display_name)
    if package_id is not None and package_id != domain.package_id:
        _check_target_package(session, domain, package_id)

    before = snapshots.domain(domain)
    old_customer = domain.customer_id
    if moving:
        domain.customer_id = customer_id
        domain.sync_source_id = None
        session.execute(delete(ApiTokenDomain).where(ApiTokenDomain.domain_id == domain.id))
    if package_id is not None:
        domain.package_id = package_id
    domain.alias_of = main
    if targets is not None:
        domain.catchall_targets = [
            CatchallTarget(position=i, target=t) for i, t in enumerate(targets)
        ]
    session.flush()
    if not moving:
        audit.changed(session, snapshots.DOMAIN, domain, "updated", before=before)
        return
    # Each customer's trail shows its own side of a move: the new one not where the domain
    # came from, the old one not where it went (the other customer's business).
    came = {**before, **dict.fromkeys(MOVED_FIELDS, REDACTED)}
    moved = audit.changed(session, snapshots.DOMAIN, domain, "updated", before=came)
    assert moved is not None  # the customer changed
    went = {field: [before[field], REDACTED] for field in moved.changes}
    audit.record_many(
        session, [replace(moved, customer_id=old_customer, domain_id=None, changes=went)]
    )


# What a move changes that belongs to the other side of it.
MOVED_FIELDS: Final = ("customer_id", "package_id")


def _check_target_package(session: Session, domain: Domain, package_id: int) -> None:
    """Raise `LimitReached` when the package cannot take in the domain's addresses: a move
    grows a package exactly as writing each of them into it would."""
    limits = load_limits(session, [package_id]).get(package_id, PackageLimits())
    if limits == PackageLimits():
        return  # no limits: no need to count
    target = load_usage(session, [package_id]).get(package_id, PackageUsage())
    problems = address_rules.move_problems(limits, target, load_domain_usage(session, domain.id))
    if problems:
        raise LimitReached(problems)


def delete_domain(session: Session, actor: Actor, domain: Domain, *, cascade: bool) -> None:
    """Delete a domain (admins). Refused while it holds addresses or alias domains, unless
    `cascade`: then they go with it (the alias domains' addresses too)."""
    _require_admin(actor, "delete domains")
    doomed = [domain.id, *(alias.id for alias in domain.aliases)]
    addresses = int(
        session.scalar(
            select(func.count()).select_from(Address).where(Address.domain_id == domain.id)
        )
        or 0
    )
    if (addresses or domain.aliases) and not cascade:
        raise DomainHasAddresses(domain.display_name, addresses, len(domain.aliases))
    gone = {**snapshots.domain(domain), "addresses": addresses}
    names = select(Address.address).where(Address.domain_id.in_(doomed))
    session.execute(delete(MailboxUsage).where(MailboxUsage.username.in_(names)))
    session.execute(delete(Address).where(Address.domain_id.in_(doomed)))
    for alias in list(domain.aliases):
        alias_before = snapshots.domain(alias)
        session.delete(alias)
        audit.changed(session, snapshots.DOMAIN, alias, "deleted", before=alias_before, gone=True)
    session.delete(domain)
    session.flush()
    # One event for the domain and its addresses (the cascade writes none of its own).
    audit.changed(session, snapshots.DOMAIN, domain, "deleted", before=gone, gone=True)
