"""Spoofing whitelists never cross tenants at lookup time (issue 10, finding 3), on both
databases, asked exactly as Postfix asks (smtpd_sender_login_maps) and as the sender milter
asks; and the lookup stays on indexes.

The whitelist rows are written straight into the table, as an attacker's rows that predate
the write-time check would be: the data plane must refuse them on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from postmeister import models as m
from postmeister.dataplane.milter.lookups import (
    MAY_SEND_AS,
    ContractLookups,
    Database,
    PostgresDatabase,
    SqliteDatabase,
)
from postmeister.dataplane.render.postfix import MAPS
from postmeister.db import unit_of_work

SENDER_MAP = next(mp for mp in MAPS if mp.parameter == "smtpd_sender_login_maps")

A_LOGIN = "ceo@strasse.example"
B_LOGIN = "ceo@xn--strae-oqa.example"  # ceo@straße.example
B_OTHER = "boss@b.example"
A_WHITELIST = (
    B_OTHER,  # B's mailbox
    "b.example",  # B's domain
    "xn--strae-oqa.example",  # B's IDN domain
    "*",
    "x@partner.example",  # not hosted here
    "later.example",  # not hosted yet
)


@dataclass(frozen=True)
class Customers:
    a: int
    b: int


def _domain(session: Session, customer_id: int, name: str) -> m.Domain:
    package = session.query(m.Package).filter_by(customer_id=customer_id).one()
    domain = m.Domain(customer_id=customer_id, package_id=package.id, name=name, display_name=name)
    session.add(domain)
    session.flush()
    return domain


def _mailbox(session: Session, domain: m.Domain, local: str) -> m.Address:
    row = m.Address(
        domain_id=domain.id,
        address=f"{local}@{domain.name}",
        local_part=local,
        kind="mailbox",
        password_hash="$6$salt$hash",
    )
    session.add(row)
    session.flush()
    return row


def seed(sessions: sessionmaker[Session]) -> Customers:
    with unit_of_work(sessions) as session:
        ids = []
        for name in ("Customer A", "Customer B"):
            customer = m.Customer(name=name)
            session.add(customer)
            session.flush()
            session.add(m.Package(customer_id=customer.id, name="default"))
            session.flush()
            ids.append(customer.id)
        a, b = ids
        a_mailbox = _mailbox(session, _domain(session, a, "strasse.example"), "ceo")
        _domain(session, a, "a-other.example")
        _mailbox(session, _domain(session, b, "xn--strae-oqa.example"), "ceo")
        _mailbox(session, _domain(session, b, "b.example"), "boss")
        session.add_all(
            m.SenderPermission(address_id=a_mailbox.id, position=index, pattern=pattern)
            for index, pattern in enumerate(A_WHITELIST)
        )
        return Customers(a, b)


def postfix_logins(engine: Engine, sender: str) -> set[str]:
    """What Postfix's smtpd_sender_login_maps answers for `sender` (its %u/%d expansion,
    SQL-quoted as Postfix quotes them)."""
    local, _, domain = sender.rpartition("@")
    query = SENDER_MAP.query.replace("%u", local.replace("'", "''")).replace(
        "%d", domain.replace("'", "''")
    )
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(query).fetchall()
    return {row[0] for row in rows}


def milter_database(url: str) -> Database:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        return SqliteDatabase(parsed.database)
    return PostgresDatabase(
        {
            "host": parsed.host,
            "port": parsed.port,
            "dbname": parsed.database,
            "user": parsed.username,
            "password": parsed.password,
        }
    )


def may_send_as(engine: Engine, database_url: str, login: str, sender: str) -> bool:
    """Ask both consumers; they must agree."""
    milter = ContractLookups(milter_database(database_url)).may_send_as(login, sender)
    postfix = login in postfix_logins(engine, sender)
    assert milter == postfix, (login, sender, milter, postfix)
    return milter


@pytest.mark.parametrize(
    ("sender", "allowed"),
    [
        (A_LOGIN, True),  # its own address
        (B_OTHER, False),  # B's mailbox, whitelisted by address
        ("anyone@b.example", False),  # B's domain, whitelisted by domain (and by *)
        (B_LOGIN, False),  # B's IDN domain: straße is not strasse
        ("someone@outside.example", True),  # * covers domains hosted nowhere here
        ("x@partner.example", True),  # an outside address by name
        ("sales@a-other.example", True),  # * covers A's own other domain
        ("new@later.example", True),  # not hosted (yet)
    ],
)
def test_a_whitelist_never_reaches_another_customers_addresses(
    sessions: sessionmaker[Session], engine: Engine, database_url: str, sender: str, allowed: bool
) -> None:
    seed(sessions)
    assert may_send_as(engine, database_url, A_LOGIN, sender) is allowed


def test_the_owner_still_sends_as_its_own_addresses(
    sessions: sessionmaker[Session], engine: Engine, database_url: str
) -> None:
    seed(sessions)
    assert may_send_as(engine, database_url, B_LOGIN, B_LOGIN)
    assert may_send_as(engine, database_url, "boss@b.example", B_OTHER)
    # Postfix's answer for B's address names B only, never A's login.
    assert postfix_logins(engine, B_OTHER) == {B_OTHER}
    assert postfix_logins(engine, B_LOGIN) == {B_LOGIN}


def test_a_domain_another_customer_adds_later_is_refused_at_once(
    sessions: sessionmaker[Session], engine: Engine, database_url: str
) -> None:
    customers = seed(sessions)
    assert may_send_as(engine, database_url, A_LOGIN, "new@later.example")
    assert may_send_as(engine, database_url, A_LOGIN, "new@brand-new.example")  # via *

    with unit_of_work(sessions) as session:
        _domain(session, customers.b, "later.example")
        _domain(session, customers.b, "brand-new.example")

    assert not may_send_as(engine, database_url, A_LOGIN, "new@later.example")
    assert not may_send_as(engine, database_url, A_LOGIN, "new@brand-new.example")


def test_a_domain_the_same_customer_adds_later_stays_allowed(
    sessions: sessionmaker[Session], engine: Engine, database_url: str
) -> None:
    customers = seed(sessions)
    with unit_of_work(sessions) as session:
        _domain(session, customers.a, "later.example")
    assert may_send_as(engine, database_url, A_LOGIN, "new@later.example")


def test_views_carry_the_tenant_of_logins_and_domains(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    customers = seed(sessions)
    with engine.connect() as connection:
        domains = {
            row[0]: row[1]
            for row in connection.execute(
                text("SELECT domain, customer_id FROM dataplane_v1_domains")
            )
        }
        logins = {
            (row[0], row[1])
            for row in connection.execute(
                text("SELECT login, customer_id FROM dataplane_v1_sender_logins")
            )
        }
    assert domains["strasse.example"] == customers.a
    assert domains["xn--strae-oqa.example"] == customers.b
    assert logins == {
        (A_LOGIN, customers.a),
        (B_LOGIN, customers.b),
        (B_OTHER, customers.b),
    }


def _bound(statement: str, **values: str) -> str:
    return statement.format(**{name: f":{name}" for name in values})


def test_the_milter_lookup_uses_indexes(sessions: sessionmaker[Session], engine: Engine) -> None:
    """Each database's own planner: SQLite must not scan a table; PostgreSQL, with scans
    forbidden (a tiny table is always scanned otherwise), must find an index path."""
    seed(sessions)
    values = {"address": "x@b.example", "domain": "b.example", "login": A_LOGIN}
    sql = _bound(MAY_SEND_AS, **values)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            plan = [
                str(row[-1])
                for row in connection.execute(text(f"EXPLAIN QUERY PLAN {sql}"), values)
            ]
            scans = [step for step in plan if step.startswith("SCAN") and "INDEX" not in step]
            assert not scans, plan
            return
        connection.execute(text("SET enable_seqscan = off"))
        lines = "\n".join(str(row[0]) for row in connection.execute(text(f"EXPLAIN {sql}"), values))
    assert "Seq Scan" not in lines, lines
