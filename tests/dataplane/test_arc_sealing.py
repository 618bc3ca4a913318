"""Which recipients' mail is ARC-sealed, and with which key: the antispam milter's questions
asked of the contract views on both databases (rules in `postmeister.dataplane.milter.arc`).

Mail is sealed when the recipient's mail leaves for a domain not hosted here (through a
forward, a chain of hosted forwards, a mailbox that keeps a copy and forwards, or the
catch-all), with the recipient's domain's active RSA key; mail that stays here is not.
"""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from postmeister import models as m
from postmeister.dataplane.milter.arc import Seal, admit_seal, arc_headers, seal_for
from postmeister.dataplane.milter.lookups import ContractLookups
from postmeister.db import unit_of_work
from tests.dataplane.test_sender_tenancy import milter_database

HOSTED = "forwarder.example"
OTHER_HOSTED = "neighbour.example"
OUTSIDE = "friend@remote.example"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQ==\n-----END PRIVATE KEY-----\n"


def _address(session: Session, domain: m.Domain, local: str, kind: str, targets: list[str]) -> None:
    row = m.Address(
        domain_id=domain.id,
        address=f"{local}@{domain.name}",
        local_part=local,
        kind=kind,
        password_hash="$6$salt$hash" if kind == "mailbox" else None,
    )
    session.add(row)
    session.flush()
    session.add_all(
        m.ForwardTarget(address_id=row.id, position=i, target=t) for i, t in enumerate(targets)
    )


def _seed(sessions: sessionmaker[Session], *, catchall: list[str]) -> None:
    with unit_of_work(sessions) as session:
        customer = m.Customer(name="Forwarding customer")
        session.add(customer)
        session.flush()
        package = m.Package(customer_id=customer.id, name="default")
        session.add(package)
        session.flush()
        domains = {}
        for name in (HOSTED, OTHER_HOSTED):
            domain = m.Domain(
                customer_id=customer.id, package_id=package.id, name=name, display_name=name
            )
            session.add(domain)
            session.flush()
            domains[name] = domain
        hosted, other = domains[HOSTED], domains[OTHER_HOSTED]
        session.add(
            m.DkimKey(
                domain_id=hosted.id,
                selector="pm2026",
                algorithm="rsa",
                private_key=PEM,
                public_key="MIIB",
            )
        )
        session.add_all(
            m.CatchallTarget(domain_id=hosted.id, position=i, target=t)
            for i, t in enumerate(catchall)
        )
        _address(session, hosted, "box", "mailbox", [])
        _address(session, hosted, "keeper", "mailbox", [OUTSIDE])
        _address(session, hosted, "away", "forward", [OUTSIDE])
        _address(session, hosted, "inside", "forward", [f"box@{HOSTED}"])
        _address(session, hosted, "chain", "forward", [f"relay@{OTHER_HOSTED}"])
        _address(session, other, "relay", "forward", [OUTSIDE])
        _address(session, other, "gone", "forward", [OUTSIDE])  # its domain has no key


def _seal(database_url: str, address: str) -> Seal | None:
    return seal_for(ContractLookups(milter_database(database_url)), address)


EXPECTED = Seal(
    domain=HOSTED,
    selector="pm2026",
    private_key="MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ==",
)


@pytest.mark.parametrize(
    "local", ["away", "keeper", "chain"], ids=["forward", "mailbox-keeps-copy", "hosted-chain"]
)
def test_mail_that_leaves_for_another_domain_is_sealed_with_the_forwarding_domains_key(
    sessions: sessionmaker[Session], database_url: str, local: str
) -> None:
    _seed(sessions, catchall=[])
    assert _seal(database_url, f"{local}@{HOSTED}") == EXPECTED


def test_mail_the_catch_all_sends_outside_is_sealed_but_an_existing_address_wins(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    _seed(sessions, catchall=[OUTSIDE])
    assert _seal(database_url, f"anyone@{HOSTED}") == EXPECTED
    assert _seal(database_url, f"box@{HOSTED}") is None


@pytest.mark.parametrize(
    "address",
    [f"box@{HOSTED}", f"inside@{HOSTED}", f"anyone@{HOSTED}", f"gone@{OTHER_HOSTED}", OUTSIDE],
    ids=["mailbox", "forward-inside", "no-catch-all", "domain-without-key", "not-hosted"],
)
def test_mail_that_stays_here_or_has_no_key_is_not_sealed(
    sessions: sessionmaker[Session], database_url: str, address: str
) -> None:
    _seed(sessions, catchall=[])
    assert _seal(database_url, address) is None


def test_one_message_carries_one_seal() -> None:
    other = Seal(domain=OTHER_HOSTED, selector="s", private_key="k")
    assert admit_seal(None, EXPECTED) and admit_seal(EXPECTED, None)
    assert admit_seal(EXPECTED, EXPECTED)
    assert not admit_seal(EXPECTED, other)


def test_the_arc_set_is_taken_from_rspamds_answer_only_when_complete() -> None:
    answer = {
        "ARC-Seal": {"order": 1, "value": "i=1; cv=none;\r\n\tb=x"},
        "ARC-Message-Signature": [{"order": 1, "value": "i=1; b=y"}],
        "ARC-Authentication-Results": {"order": 1, "value": "i=1; mx; none"},
        "X-Other": "z",
    }
    assert arc_headers(answer) == (
        ("ARC-Authentication-Results", "i=1; mx; none"),
        ("ARC-Message-Signature", "i=1; b=y"),
        ("ARC-Seal", "i=1; cv=none;\n\tb=x"),
    )
    del answer["ARC-Seal"]
    assert arc_headers(answer) == ()
    assert arc_headers(None) == ()
