"""Sending limits in the real mail flow (issue 14): a mailbox over its hourly limit gets a
4xx on its next message through Postfix's submission service, the deferral reaches the
audit trail and a real HTTPS webhook receiver, and other mailboxes send on unaffected."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from postmeister.config import WebhookSettings
from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.sending_limits.service import report_limit_hits
from postmeister.domain.webhooks.dispatch import deliver_due
from postmeister.domain.webhooks.service import VettedUrl, create_endpoint
from postmeister.models import AuditEvent
from tests.e2e.conftest import Stack
from tests.e2e.hosting import mailbox, request
from tests.e2e.mail import Submission, subject_is, submit, unique_subject, wait_for_messages
from tests.support.hookreceiver import Receiver, receiving
from tests.support.tls import TestPki, make_test_pki

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def receiver(pki: TestPki) -> Iterator[Receiver]:
    with receiving(pki.server_context()) as running:
        yield running


def _limit(stack: Stack, address_id: str, **limits: int) -> None:
    document = {"data": {"type": "sending-limits", "id": address_id, "attributes": limits}}
    request(stack, "PATCH", f"/email-addresses/{address_id}/sending-limits", document)


def test_a_mailbox_over_its_hourly_limit_is_deferred_and_reported(
    stack: Stack, pki: TestPki, receiver: Receiver
) -> None:
    hooks = WebhookSettings(enabled=False, ca_bundle=pki.ca_cert, allow_private_networks=True)
    with unit_of_work(stack.sessions) as session:
        create_endpoint(
            session,
            Actor.for_customer(stack.tenant.customer_id),
            url=VettedUrl(receiver.url()),
            event_types=["mailbox.sending_limit_reached"],
        )
    sender = mailbox(stack, prefix="limited")
    neighbour = mailbox(stack, prefix="neighbour")
    reader = mailbox(stack, prefix="reader")
    _limit(stack, sender.id, messages_per_hour=2)
    port = stack.ports["submission"]

    def send(box_address: str, password: str, subject: str) -> Submission:
        return submit(
            port,
            login=box_address,
            password=password,
            envelope_from=box_address,
            header_from=box_address,
            to=reader.address,
            subject=subject,
        )

    subjects = [unique_subject("within") for _ in range(2)]
    for subject in subjects:
        assert send(sender.address, sender.password, subject).sent
    over = send(sender.address, sender.password, unique_subject("over"))
    assert (over.stage, over.code) == ("data", 451), over
    assert "Sending limit reached: 2 messages per hour" in over.text
    # The neighbour in the same domain sends on.
    other = unique_subject("neighbour")
    assert send(neighbour.address, neighbour.password, other).sent
    for subject in [*subjects, other]:
        found = wait_for_messages(
            stack.ports["imap"], reader.address, reader.password, subject_is(subject)
        )
        assert len(found) == 1, subject

    # The controller's job (run here instead of waiting for the scheduler's next tick).
    with unit_of_work(stack.sessions) as session:
        assert report_limit_hits(session, now=dt.datetime.now(dt.UTC), disable_submission=None)
    with unit_of_work(stack.sessions, write=False) as session:
        events = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "sending_limit_reached",
                AuditEvent.resource_name == sender.address,
            )
        ).all()
        assert len(events) == 1
        assert events[0].changes["limit"] == [None, "messages_per_hour"]
    deliver_due(stack.sessions, hooks)
    bodies = [json.loads(r.body) for r in receiver.received]
    assert [b["type"] for b in bodies] == ["mailbox.sending_limit_reached"]
    assert bodies[0]["data"]["name"] == sender.address
    assert bodies[0]["data"]["changes"]["limit_value"] == [None, 2]

    # The API shows what was counted.
    limits = request(stack, "GET", f"/email-addresses/{sender.id}/sending-limits").json()
    assert limits["data"]["attributes"]["usage"]["messages_this_hour"] == 2
