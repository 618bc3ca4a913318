"""Cross-tenant sending, tried as a hostile customer would, in the real mail flow (issue 10,
findings 3 and 4): spoofing whitelists that name another customer's mailbox, domain or `*`,
domains added by another customer later, and IDN spellings of another customer's domain,
against Postfix's envelope check and the sender milter's header check; and IDN recipients
of the antispam milter.

Customers, domains and mailboxes are written straight into the database, and the whitelist
rows too, as an attacker's rows that predate the write-time check would be: the data plane
must refuse them on its own.
"""

from __future__ import annotations

import smtplib
import time
import uuid
from dataclasses import dataclass

import pytest

from postmeister import models as m
from postmeister.canonical import canonical_domain
from postmeister.db import unit_of_work
from postmeister.domain.passwords.hashing import PasswordHashing
from tests.e2e.conftest import Stack, strong_password, unique
from tests.e2e.mail import (
    HOST,
    TLS,
    compose,
    imap_subjects,
    send_raw,
    subject_is,
    unique_subject,
    wait_for_messages,
)
from tests.support.factories import Tenant, add_domain_to, make_tenant

pytestmark = pytest.mark.e2e

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@dataclass(frozen=True)
class Box:
    address: str
    password: str


def customer(stack: Stack, *domains: str) -> Tenant:
    """A new customer hosting `domains` (Unicode or A-label spellings)."""
    tenant = make_tenant(stack.sessions, name=unique("Customer "), domain=domains[0])
    for name in domains[1:]:
        add_domain_to(stack.sessions, tenant, name)
    return tenant


def mailbox(stack: Stack, address: str, *, antispam: str = "reject") -> Box:
    local, _, domain_text = address.partition("@")
    domain_name = canonical_domain(domain_text)
    canonical = f"{local.lower()}@{domain_name}"
    password = strong_password(canonical)
    with unit_of_work(stack.sessions) as session:
        domain = session.query(m.Domain).filter_by(name=domain_name).one()
        session.add(
            m.Address(
                domain_id=domain.id,
                address=canonical,
                local_part=local.lower(),
                kind="mailbox",
                antispam=antispam,
                password_hash=PasswordHashing(stack.settings.passwords).hash(password),
            )
        )
    return Box(canonical, password)


def whitelist(stack: Stack, box: Box, *patterns: str) -> None:
    """Whitelist rows written directly, as rows that predate the write-time rule."""
    with unit_of_work(stack.sessions) as session:
        row = session.query(m.Address).filter_by(address=box.address).one()
        start = len(row.sender_permissions)
        session.add_all(
            m.SenderPermission(address_id=row.id, position=start + index, pattern=pattern)
            for index, pattern in enumerate(patterns)
        )


@dataclass(frozen=True)
class Outcome:
    stage: str  # mail, rcpt, data, or sent
    code: int
    text: str


def submit_raw(stack: Stack, box: Box, *, envelope: str, header_from: str, to: str) -> Outcome:
    """Submit as `box` with a header From written verbatim (UTF-8 allowed)."""
    subject = unique_subject("cross-tenant")
    raw = (
        f"From: {header_from}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@laptop.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Who am I?\r\n"
    ).encode()
    with smtplib.SMTP(HOST, stack.ports["submission"], timeout=15) as smtp:
        smtp.starttls(context=TLS)
        smtp.ehlo("laptop.example")
        smtp.user, smtp.password = box.address, box.password
        smtp.auth("PLAIN", smtp.auth_plain)
        code, text = smtp.mail(envelope)
        if code != 250:
            return Outcome("mail", code, text.decode())
        code, text = smtp.rcpt(to)
        if code != 250:
            return Outcome("rcpt", code, text.decode())
        code, text = smtp.data(raw)
        return Outcome("sent" if code == 250 else "data", code, text.decode())


@dataclass(frozen=True)
class World:
    a: Box  # the attacker
    a_other_domain: str
    b: Box  # the victim
    b_domain: str
    inbox: Box  # where A sends to (A's own second mailbox)


def world(stack: Stack) -> World:
    tag = uuid.uuid4().hex[:8]
    a_domain, a_other, b_domain = (f"{p}-{tag}.example" for p in ("a", "a-other", "b"))
    customer(stack, a_domain, a_other)
    customer(stack, b_domain)
    a = mailbox(stack, f"ceo@{a_domain}")
    inbox = mailbox(stack, f"inbox@{a_domain}")
    b = mailbox(stack, f"ceo@{b_domain}")
    whitelist(stack, a, b.address, b_domain, "*")
    return World(a, a_other, b, b_domain, inbox)


def refused_envelope(outcome: Outcome) -> bool:
    return (outcome.stage, outcome.code) == ("rcpt", 553) and "not owned by user" in outcome.text


def refused_header(outcome: Outcome, address: str) -> bool:
    return (outcome.stage, outcome.code) == ("data", 550) and (
        f"Header From <{address}> is not permitted" in outcome.text
    )


def test_whitelisting_another_customers_mailbox_domain_and_star_sends_nothing_as_it(
    stack: Stack,
) -> None:
    w = world(stack)
    for sender in (w.b.address, f"anyone@{w.b_domain}"):
        both = submit_raw(stack, w.a, envelope=sender, header_from=sender, to=w.inbox.address)
        assert refused_envelope(both), both
        header_only = submit_raw(
            stack, w.a, envelope=w.a.address, header_from=f"Boss <{sender}>", to=w.inbox.address
        )
        assert refused_header(header_only, sender), header_only
    # B itself is unaffected.
    own = submit_raw(stack, w.b, envelope=w.b.address, header_from=w.b.address, to=w.a.address)
    assert own.stage == "sent", own


def test_star_still_covers_outside_domains_and_the_customers_own_domains(stack: Stack) -> None:
    w = world(stack)
    for sender in (f"someone@outside-{uuid.uuid4().hex[:6]}.example", f"sales@{w.a_other_domain}"):
        outcome = submit_raw(stack, w.a, envelope=sender, header_from=sender, to=w.inbox.address)
        assert outcome.stage == "sent", (sender, outcome)


def test_a_domain_another_customer_adds_later_is_refused_at_once(stack: Stack) -> None:
    w = world(stack)
    later = f"later-{uuid.uuid4().hex[:8]}.example"
    named = f"named-{uuid.uuid4().hex[:8]}.example"
    whitelist(stack, w.a, named)
    for sender in (f"news@{later}", f"news@{named}"):  # via * and via the domain entry
        outcome = submit_raw(stack, w.a, envelope=sender, header_from=sender, to=w.inbox.address)
        assert outcome.stage == "sent", (sender, outcome)

    customer(stack, later, named)  # another customer adds both domains

    for sender in (f"news@{later}", f"news@{named}"):
        both = submit_raw(stack, w.a, envelope=sender, header_from=sender, to=w.inbox.address)
        assert refused_envelope(both), (sender, both)
        header = submit_raw(
            stack, w.a, envelope=w.a.address, header_from=sender, to=w.inbox.address
        )
        assert refused_header(header, sender), (sender, header)


@pytest.mark.parametrize(
    ("a_label", "b_label", "spellings"),
    [
        # IDNA 2003 maps ß to ss: B's straße would have been A's strasse.
        (
            "strasse",
            "straße",
            ["ceo@straße.{p}", "CEO@STRAßE.{P}", "ceo@xn--strae-oqa.{p}", "CEO@XN--STRAE-OQA.{P}"],
        ),
        # ... and final sigma to sigma: B's σοφος would have been A's σοφοσ.
        ("σοφοσ", "σοφος", ["ceo@σοφος.{p}", "ceo@xn--0xaajbq.{p}", "CEO@XN--0XAAJBQ.{P}"]),
    ],
)
@pytest.mark.parametrize("a_whitelist", [(), ("*",)], ids=["no-whitelist", "star"])
def test_idn_spellings_of_another_customers_domain_are_refused(
    stack: Stack, a_label: str, b_label: str, spellings: list[str], a_whitelist: tuple[str, ...]
) -> None:
    parent = f"idn{uuid.uuid4().hex[:8]}.example"
    a_domain, b_domain = f"{a_label}.{parent}", f"{b_label}.{parent}"
    customer(stack, a_domain)
    customer(stack, b_domain)
    a = mailbox(stack, f"ceo@{a_domain}")
    inbox = mailbox(stack, f"inbox@{a_domain}")
    mailbox(stack, f"ceo@{b_domain}")
    whitelist(stack, a, *a_whitelist)

    for spelling in spellings:
        header = spelling.format(p=parent, P=parent.upper())
        outcome = submit_raw(stack, a, envelope=a.address, header_from=header, to=inbox.address)
        assert (outcome.stage, outcome.code) == ("data", 550), (header, outcome)
        assert "is not permitted" in outcome.text, (header, outcome)
    b_alabel = f"ceo@{canonical_domain(b_domain)}"
    envelope = submit_raw(stack, a, envelope=b_alabel, header_from=b_alabel, to=inbox.address)
    assert refused_envelope(envelope), envelope
    # A's own domain, in any spelling the store accepts, still works.
    for own in (a.address, a.address.upper(), f"ceo@{a_domain}"):
        outcome = submit_raw(stack, a, envelope=a.address, header_from=own, to=inbox.address)
        assert outcome.stage == "sent", (own, outcome)


@pytest.mark.parametrize("policy", ["none", "subject-rewrite"])
def test_an_idn_mailbox_gets_its_own_spam_policy(stack: Stack, policy: str) -> None:
    domain = f"straße.idn{uuid.uuid4().hex[:8]}.example"
    customer(stack, domain)
    box = mailbox(stack, f"ceo@{domain}", antispam=policy)
    subject = unique_subject("idn spam")
    raw = compose(
        header_from="someone@sender.example",
        to=box.address,
        subject=subject,
        body=f"Buy now!\n{GTUBE}\n",
    )
    # The default policy (reject) would refuse GTUBE with 550.
    for recipient in (box.address, box.address.upper()):
        codes, reply = send_raw(
            stack.ports["smtp"], sender="someone@sender.example", recipients=[recipient], raw=raw
        )
        assert codes == {recipient: 250}
        assert reply is not None and reply[0] == 250, reply
    expected = subject if policy == "none" else f"[SPAM] {subject}"
    received = wait_for_messages(
        stack.ports["imap"], box.address, box.password, subject_is(expected), count=2
    )
    assert len(received) == 2
    if policy == "none":
        assert all(message["X-Spam"] is None for message in received)
    else:
        assert all(message["X-Spam"] == "Yes" for message in received)


def test_refused_mail_is_not_delivered(stack: Stack) -> None:
    w = world(stack)
    subject_before = set(imap_subjects(stack.ports["imap"], w.inbox.address, w.inbox.password))
    outcome = submit_raw(
        stack, w.a, envelope=w.a.address, header_from=w.b.address, to=w.inbox.address
    )
    assert outcome.stage == "data"
    time.sleep(0.5)
    after = set(imap_subjects(stack.ports["imap"], w.inbox.address, w.inbox.password))
    assert after == subject_before
