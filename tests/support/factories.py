"""Test factories: plain functions with explicit overrides that go through the services."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import DkimSettings
from postmeister.db import unit_of_work
from postmeister.domain.customers.service import create_customer
from postmeister.domain.domains.service import add_domain
from postmeister.domain.tokens.service import create_token

STRONG_PASSWORD = "Correct-Horse-Battery-Staple-42x"  # passes the default policy
OTHER_STRONG_PASSWORD = "Trombone!Glacier+Mosaic=Tulip77"
# The DKIM keys of test domains: Ed25519 only. An RSA 2048 key takes 40-90 ms to generate
# and the suite adds thousands of domains; the tests of RSA keys, of the DNS records and of
# signing (tests/api/hosting/test_dkim_keys.py, test_domain_dns.py, tests/e2e/test_dkim.py)
# ask for RSA themselves. The shared `settings` fixture uses the same, so that the
# scheduler's `dkim-keys` job finds nothing missing.
TEST_DKIM = DkimSettings(algorithms=["ed25519"])


@dataclass(frozen=True)
class Tenant:
    customer_id: int
    domain: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_tenant(
    sessions: sessionmaker[Session],
    *,
    name: str,
    domain: str,
    read_only: bool = False,
    dkim: DkimSettings = TEST_DKIM,
) -> Tenant:
    with unit_of_work(sessions) as session:
        customer = create_customer(session, name=name)
        add_domain(session, customer_id=customer.id, name=domain, dkim=dkim)
        issued = create_token(session, customer_id=customer.id, read_only=read_only)
        return Tenant(customer_id=customer.id, domain=domain, token=issued.secret)


def make_token(sessions: sessionmaker[Session], **kwargs: object) -> str:
    with unit_of_work(sessions) as session:
        return create_token(session, **kwargs).secret  # type: ignore[arg-type]


def add_domain_to(sessions: sessionmaker[Session], tenant: Tenant, name: str) -> None:
    with unit_of_work(sessions) as session:
        add_domain(session, customer_id=tenant.customer_id, name=name, dkim=TEST_DKIM)
