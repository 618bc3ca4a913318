"""Mail domains: owned by a customer, grouped in a package, stored as A-labels."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postmeister.domain.access import Actor, visible_domains
from postmeister.domain.addresses.syntax import normalise_domain
from postmeister.domain.customers.service import default_package, get_customer, get_package
from postmeister.errors import AlreadyExists, NotFound
from postmeister.models import Domain


def add_domain(
    session: Session, *, customer_id: int, name: str, package_id: int | None = None
) -> Domain:
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
    return domain


def get_domain(session: Session, actor: Actor, name: str, *, field: str = "domain") -> Domain:
    """The visible domain called `name` (any spelling: U-label, A-label, any case)."""
    alabel = normalise_domain(name, field=field)
    domain = session.scalar(visible_domains(actor).where(Domain.name == alabel))
    if domain is None:
        raise NotFound("domain", name)
    return domain
