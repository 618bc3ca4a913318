"""Customers (tenants) and their packages."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from postmeister.errors import AlreadyExists, InvalidInput, NotFound
from postmeister.models import Customer, Package

DEFAULT_PACKAGE = "default"


def create_customer(session: Session, *, name: str) -> Customer:
    clean = name.strip()
    if not clean or len(clean) > 200:
        raise InvalidInput.single("name", "a customer name of 1 to 200 characters is required")
    if session.scalar(select(Customer.id).where(Customer.name == clean)) is not None:
        raise AlreadyExists("customer", clean)
    customer = Customer(name=clean)
    session.add(customer)
    session.flush()
    session.add(Package(customer_id=customer.id, name=DEFAULT_PACKAGE))
    session.flush()
    return customer


def get_customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer", str(customer_id))
    return customer


def default_package(session: Session, customer_id: int) -> Package:
    package = session.scalar(
        select(Package).where(Package.customer_id == customer_id, Package.name == DEFAULT_PACKAGE)
    )
    if package is None:
        package = Package(customer_id=customer_id, name=DEFAULT_PACKAGE)
        session.add(package)
        session.flush()
    return package


def get_package(session: Session, *, customer_id: int, package_id: int) -> Package:
    package = session.get(Package, package_id)
    if package is None or package.customer_id != customer_id:
        raise NotFound("package", str(package_id))
    return package
