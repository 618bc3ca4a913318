"""Bulk-load benchmark data with plain SQL (executemany in batches), not through the API.

Shape: every domain `dNNNNN.bench.example` gets MAILBOXES mailboxes `user000…` (all with the
same argon2id hash of BULK_PASSWORD, so that any of them can log in over IMAP) and FORWARDS
forwards `alias000…`, each forwarding to the mailbox of the same number. 10,000 domains are
1,000,000 addresses. All domains belong to one customer, so that customer has them all.

Run in a child process (`python -m bench.load …`) so that its peak memory is its own; prints
its timing as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, text

from bench.common import own_peak_rss_mib
from postmeister.db import make_engine
from postmeister.models import Address, Domain, ForwardTarget

MAILBOXES = 70
FORWARDS = 30
PER_DOMAIN = MAILBOXES + FORWARDS
BATCH = 10_000
BULK_PASSWORD = "Bench-Orbit-Lantern-Pepper-58"


def domain_name(index: int) -> str:
    return f"d{index:05d}.bench.example"


def mailbox(number: int, domain: int) -> str:
    return f"user{number:03d}@{domain_name(domain)}"


def forward(number: int, domain: int) -> str:
    return f"alias{number:03d}@{domain_name(domain)}"


@dataclass(frozen=True)
class Tenant:
    """The one customer who owns every benchmark domain, and its API token."""

    customer_id: int
    package_id: int
    token: str


def bulk_hash() -> str:
    """One argon2id hash (the default parameters) shared by every bulk-loaded mailbox."""
    from argon2 import PasswordHasher

    from postmeister.config import PasswordSettings

    settings = PasswordSettings()
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    ).hash(BULK_PASSWORD)


def create_tenant(url: str) -> Tenant:
    from postmeister.db import make_session_factory, unit_of_work
    from postmeister.domain.customers.service import create_customer, default_package
    from postmeister.domain.tokens.service import create_token

    engine = make_engine(url)
    with unit_of_work(make_session_factory(engine)) as session:
        customer = create_customer(session, name="Bench")
        package = default_package(session, customer.id)
        issued = create_token(session, customer_id=customer.id, label="bench")
        tenant = Tenant(customer.id, package.id, issued.secret)
    engine.dispose()
    return tenant


@dataclass(frozen=True)
class Shape:
    """`domains` domains of PER_DOMAIN addresses each."""

    domains: int

    @property
    def addresses(self) -> int:
        return self.domains * PER_DOMAIN


def _batched(rows: Iterator[dict[str, Any]], size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _next_id(connection: Connection, column: Any) -> int:
    return int(connection.execute(select(func.coalesce(func.max(column), 0))).scalar_one()) + 1


def load(
    url: str,
    *,
    customer_id: int,
    package_id: int,
    shape: Shape,
    password_hash: str,
    domains_only: bool = False,
) -> None:
    """Insert `shape` into an empty customer. Ids are given explicitly, so forward targets
    need no lookup; PostgreSQL's sequences are moved past them afterwards."""
    engine = make_engine(url)
    with engine.begin() as connection:
        first_domain = _next_id(connection, Domain.id)
        first_address = _next_id(connection, Address.id)
        connection.execute(
            insert(Domain),
            [
                {
                    "id": first_domain + d,
                    "customer_id": customer_id,
                    "package_id": package_id,
                    "name": domain_name(d),
                    "display_name": domain_name(d),
                }
                for d in range(shape.domains)
            ],
        )

        def addresses() -> Iterator[dict[str, Any]]:
            for d in range(shape.domains):
                base = first_address + d * PER_DOMAIN
                for n in range(MAILBOXES):
                    yield {
                        "id": base + n,
                        "domain_id": first_domain + d,
                        "address": mailbox(n, d),
                        "local_part": f"user{n:03d}",
                        "kind": "mailbox",
                        "password_hash": password_hash,
                        "submission_disabled": False,
                        "antispam": "reject",
                    }
                for n in range(FORWARDS):
                    yield {
                        "id": base + MAILBOXES + n,
                        "domain_id": first_domain + d,
                        "address": forward(n, d),
                        "local_part": f"alias{n:03d}",
                        "kind": "forward",
                        "password_hash": None,
                        "submission_disabled": False,
                        "antispam": "reject",
                    }

        def targets() -> Iterator[dict[str, Any]]:
            for d in range(shape.domains):
                base = first_address + d * PER_DOMAIN
                for n in range(FORWARDS):
                    yield {
                        "address_id": base + MAILBOXES + n,
                        "position": 0,
                        "target": mailbox(n, d),
                    }

        if not domains_only:
            for batch in _batched(addresses()):
                connection.execute(insert(Address), batch)
            for batch in _batched(targets()):
                connection.execute(insert(ForwardTarget), batch)
        if connection.dialect.name == "postgresql":
            # Fixed table names, nothing from outside goes into the statement.
            for table in ("domains", "addresses"):
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    # Fresh statistics, as an operator would have after a large import (autovacuum would
    # get there on its own, later); part of the measured load time.
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--customer", type=int, required=True)
    parser.add_argument("--package", type=int, required=True)
    parser.add_argument("--domains", type=int, required=True)
    parser.add_argument("--password-hash", default="")
    parser.add_argument("--domains-only", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    load(
        args.url,
        customer_id=args.customer,
        package_id=args.package,
        shape=Shape(args.domains),
        password_hash=args.password_hash,
        domains_only=args.domains_only,
    )
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss_mib": own_peak_rss_mib()}))


if __name__ == "__main__":
    main()
