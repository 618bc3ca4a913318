"""ARC sealing of forwarded mail, end to end on both databases.

As in tests/e2e/test_dkim.py: a private stack relays everything to a second real Postfix on
127.0.0.2 (tests/support/receiver.py), the customer's zone (with the DKIM key the API shows)
is published in NSD on loopback, and dkimpy is the independent verifier.

- Mail from an outside sender to a hosted forward (or catch-all) whose target is at the
  other provider arrives there with one valid ARC set: i=1, cv=none, d= the forwarding
  domain, sealed by the stack's rspamd with the domain's key from the database.
- Mail that stays here (to a hosted mailbox, or to a forward whose target is hosted) and mail
  a hosted mailbox submits is not sealed; submitted mail carries its DKIM signature only.
- Forwarded spam whose Subject the forward's policy rewrites leaves marked and unsealed.
"""

from __future__ import annotations

import email.message
import shutil
from collections.abc import Iterator
from typing import Any

import dkim  # type: ignore[import-untyped]  # dkimpy ships no type information
import pytest

from postmeister.config import DkimSettings
from tests.e2e import hosting
from tests.e2e.conftest import scratch_database, shared_tmp_dir, start_stack, unique
from tests.e2e.hosting import request_as
from tests.e2e.mail import (
    compose,
    send_raw,
    subject_is,
    submit,
    unique_subject,
    wait_for_messages,
)
from tests.e2e.test_antispam import GTUBE
from tests.e2e.test_dkim import Signing, _dns, _domain_id, _published
from tests.support.dns_server import nsd
from tests.support.factories import make_token
from tests.support.receiver import running_receiver

pytestmark = pytest.mark.e2e

DKIM = DkimSettings(algorithms=["rsa"])
OUTSIDE_SENDER = "writer@sender.example"
OUTSIDE_TARGET = "friend@remote.example"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sealing(request: pytest.FixtureRequest) -> Iterator[Signing]:
    root = shared_tmp_dir(f"pm-arc-{request.param}-")
    try:
        with (
            running_receiver(root / "receiver") as receiver,
            nsd(root / "nsd") as dns_server,
            scratch_database(request.param, root, prefix="pm_arc") as url,
        ):
            env = {
                "POSTMEISTER_DATAPLANE__OUTBOUND_RELAY": receiver.relay,
                "POSTMEISTER_DKIM__ALGORITHMS": '["rsa"]',
            }
            for stack in start_stack(request.param, root, url, extra_env=env, dkim=DKIM):
                signing = Signing(stack, receiver, dns_server)
                # The tenant's RSA key (ARC seals with RSA only) published in the test zone.
                _published(signing, stack.tenant.token, _domain_id(stack, stack.domain))
                yield signing
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _from_outside(sealing: Signing, recipient: str, subject: str) -> None:
    raw = compose(header_from=OUTSIDE_SENDER, to=recipient, subject=subject)
    codes, data = send_raw(
        sealing.stack.ports["smtp"], sender=OUTSIDE_SENDER, recipients=[recipient], raw=raw
    )
    assert codes == {recipient: 250} and data is not None and data[0] == 250, (codes, data)


def _received(sealing: Signing, subject: str, before: int) -> bytes:
    received = sealing.receiver.wait_for(before + 1)
    (raw,) = [r for r in received if subject.encode() in r]
    return raw


def _header_names(raw: bytes) -> list[str]:
    return [name.decode().lower() for name, _ in dkim.DKIM(raw).headers]


def _arc(raw: bytes, sealing: Signing) -> tuple[bytes, list[dict[str, Any]], str]:
    cv, results, reason = dkim.arc_verify(raw, dnsfunc=_dns(sealing.dns))
    return cv, results, reason


def _domain_with_catch_all(sealing: Signing) -> str:
    """A new domain of the tenant whose catch-all forwards outside, its zone published."""
    stack = sealing.stack
    domain = f"{unique('arc-catchall')}.e2e.example"
    admin = make_token(stack.sessions, admin=True)
    attributes = {"name": domain, "customer_id": stack.tenant.customer_id}
    created = request_as(
        stack, admin, "POST", "/domains",
        {"data": {"type": "domain", "attributes": {**attributes, "catchall": [OUTSIDE_TARGET]}}},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    _published(sealing, admin, int(created.json()["data"]["id"]))
    return domain


def test_mail_a_forward_sends_to_another_provider_arrives_with_a_valid_arc_set(
    sealing: Signing,
) -> None:
    stack = sealing.stack
    forward = stack.create_alias([OUTSIDE_TARGET])
    subject = unique_subject("arc-forward")
    before = len(sealing.receiver.raw_messages())
    _from_outside(sealing, forward, subject)
    raw = _received(sealing, subject, before)

    names = _header_names(raw)
    assert names.count("arc-seal") == 1 and names.count("arc-message-signature") == 1
    assert names.count("arc-authentication-results") == 1
    cv, (instance,), reason = _arc(raw, sealing)
    assert cv == b"pass", reason
    assert instance["instance"] == 1 and instance["cv"] == b"none"
    assert instance["as-domain"] == instance["ams-domain"] == stack.domain.encode()
    assert instance["as-valid"] and instance["ams-valid"]
    # The seal really covers the message: a changed body no longer verifies.
    assert _arc(raw.replace(b"Hello", b"Hallo"), sealing)[0] == b"fail"


def test_mail_a_catch_all_sends_to_another_provider_is_sealed_with_its_domain(
    sealing: Signing,
) -> None:
    domain = _domain_with_catch_all(sealing)
    subject = unique_subject("arc-catchall")
    before = len(sealing.receiver.raw_messages())
    _from_outside(sealing, f"{unique('anyone')}@{domain}", subject)
    raw = _received(sealing, subject, before)

    cv, (instance,), reason = _arc(raw, sealing)
    assert cv == b"pass", reason
    assert instance["as-domain"] == instance["ams-domain"] == domain.encode()


def test_mail_that_stays_here_is_not_sealed(sealing: Signing) -> None:
    stack = sealing.stack
    account = stack.create_account()
    forward = stack.create_alias([account.address])
    direct, forwarded = unique_subject("arc-direct"), unique_subject("arc-local-forward")
    _from_outside(sealing, account.address, direct)
    _from_outside(sealing, forward, forwarded)
    for subject in (direct, forwarded):
        (delivered,) = wait_for_messages(
            stack.ports["imap"], account.address, account.password, subject_is(subject)
        )
        assert isinstance(delivered, email.message.EmailMessage)
        assert delivered["ARC-Seal"] is None and delivered["ARC-Message-Signature"] is None


def test_mail_a_hosted_mailbox_submits_is_dkim_signed_but_not_sealed(sealing: Signing) -> None:
    stack = sealing.stack
    account = stack.create_account()
    subject = unique_subject("arc-submitted")
    before = len(sealing.receiver.raw_messages())
    sent = submit(
        stack.ports["submission"],
        login=account.address,
        password=account.password,
        envelope_from=account.address,
        header_from=account.address,
        to=OUTSIDE_TARGET,
        subject=subject,
    )
    assert sent.sent, sent
    raw = _received(sealing, subject, before)
    names = _header_names(raw)
    assert "dkim-signature" in names
    assert not {"arc-seal", "arc-message-signature", "arc-authentication-results"} & set(names)
    assert dkim.DKIM(raw).verify(dnsfunc=_dns(sealing.dns))


def test_forwarded_mail_marked_as_spam_is_not_sealed(sealing: Signing) -> None:
    """A seal vouches for what it signs: spam with its Subject rewritten (which the seal's
    signature covers) leaves marked, unsealed."""
    stack = sealing.stack
    _, forward = hosting.forward(stack, [OUTSIDE_TARGET], antispam="subject-rewrite")
    subject = unique_subject("arc-spam")
    raw = compose(
        header_from=OUTSIDE_SENDER, to=forward, subject=subject, body=f"Buy now!\n{GTUBE}\n"
    )
    before = len(sealing.receiver.raw_messages())
    codes, data = send_raw(
        stack.ports["smtp"], sender=OUTSIDE_SENDER, recipients=[forward], raw=raw
    )
    assert codes == {forward: 250} and data is not None and data[0] == 250, (codes, data)
    arrived = _received(sealing, subject, before)
    assert f"Subject: [SPAM] {subject}".encode() in arrived
    assert "arc-seal" not in _header_names(arrived)


def test_one_message_is_sealed_by_one_domain(sealing: Signing) -> None:
    """A recipient forwarded by another domain than the transaction's first is deferred
    (452 4.5.3), so that each copy carries its own forwarding domain's seal."""
    stack = sealing.stack
    forward = stack.create_alias([OUTSIDE_TARGET])
    other = f"{unique('anyone')}@{_domain_with_catch_all(sealing)}"
    subject = unique_subject("arc-two-domains")
    raw = compose(header_from=OUTSIDE_SENDER, to=f"{forward}, {other}", subject=subject)
    before = len(sealing.receiver.raw_messages())
    codes, data = send_raw(
        stack.ports["smtp"], sender=OUTSIDE_SENDER, recipients=[forward, other], raw=raw
    )
    assert codes == {forward: 250, other: 452} and data is not None and data[0] == 250
    cv, (instance,), reason = _arc(_received(sealing, subject, before), sealing)
    assert cv == b"pass", reason
    assert instance["as-domain"] == stack.domain.encode()
