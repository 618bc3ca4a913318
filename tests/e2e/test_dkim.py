"""DKIM signing and outbound delivery, end to end on both databases.

A private stack relays everything through its smarthost setting to a second, separate real
Postfix on 127.0.0.2 (tests/support/receiver.py), which plays the recipient's server. A
hosted mailbox submits (587, STARTTLS, AUTH) to an outside address; the message arrives
there signed, and dkimpy, an independent verifier, accepts the signature with the TXT
record that `GET /domains/{id}/dkim-keys` shows, published with the domain's zone snippet in
a real DNS server (NSD on loopback, tests/support/dns_server.py). After a rotation the next message is signed
with the new selector (and, as configured here, a second Ed25519 signature), the earlier one
still verifies while the old key is published, and after the overlap it no longer is.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dkim  # type: ignore[import-untyped]  # dkimpy ships no type information
import dns.resolver
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from postmeister.config import DkimSettings
from postmeister.db import unit_of_work
from postmeister.models import DkimKey, Domain
from postmeister.scheduler.jobs import JOBS, JobContext
from tests.e2e.conftest import Stack, dataplane_cli, scratch_database, shared_tmp_dir, start_stack
from tests.e2e.hosting import customer, request_as
from tests.e2e.mail import submit, unique_subject
from tests.support.dns_server import NsdServer, nsd
from tests.support.receiver import Receiver, running_receiver

DKIM = DkimSettings(algorithms=["rsa", "ed25519"], overlap_days=7)
OUTSIDE = "someone@remote.example"


@dataclass
class Signing:
    stack: Stack
    receiver: Receiver
    dns: NsdServer  # serves the zones the customers publish; dkimpy asks it


def _env(receiver: Receiver) -> dict[str, str]:
    return {
        "POSTMEISTER_DATAPLANE__OUTBOUND_RELAY": receiver.relay,
        "POSTMEISTER_DKIM__ALGORITHMS": '["rsa", "ed25519"]',
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def signing(request: pytest.FixtureRequest) -> Iterator[Signing]:
    root = shared_tmp_dir(f"pm-dkim-{request.param}-")
    try:
        with (
            running_receiver(root / "receiver") as receiver,
            nsd(root / "nsd") as dns_server,
            scratch_database(request.param, root, prefix="pm_dkim") as url,
        ):
            yield from (
                Signing(stack, receiver, dns_server)
                for stack in start_stack(
                    request.param, root, url, extra_env=_env(receiver), dkim=DKIM
                )
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _domain_id(stack: Stack, name: str) -> int:
    with stack.sessions() as session:
        found = session.scalar(select(Domain.id).where(Domain.name == name))
        assert found is not None
        return found


def _published(signing: Signing, token: str, domain_id: int) -> dict[str, str]:
    """The DKIM TXT records the API tells the customer to publish (name -> value), after
    publishing the domain's whole zone snippet (`/domains/{id}/dns?format=zone`) in the
    test's DNS server, as the customer would."""
    stack = signing.stack
    response = request_as(stack, token, "GET", f"/domains/{domain_id}/dkim-keys")
    assert response.status_code == 200, response.text
    zone = request_as(stack, token, "GET", f"/domains/{domain_id}/dns?format=zone")
    assert zone.status_code == 200, zone.text
    name = response.json()["data"][0]["attributes"]["record_name"].split("._domainkey.")[1]
    signing.dns.publish(name, zone.text)
    return {
        key["attributes"]["record_name"]: key["attributes"]["record_value"]
        for key in response.json()["data"]
    }


def _dns(server: NsdServer) -> Any:
    """dkimpy's DNS lookup: a TXT query to the test's DNS server (no internet)."""
    resolver = dns.resolver.Resolver(configure=False)
    host, _, port = server.address.rpartition(":")
    resolver.nameservers, resolver.port, resolver.cache = [host], int(port), None

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode(), "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(answer[0].strings)

    return lookup


def _signatures(raw: bytes) -> list[dict[str, str]]:
    checker = dkim.DKIM(raw)
    found = []
    for header_name, value in checker.headers:
        if header_name.lower() == b"dkim-signature":
            tags = dict(
                part.strip().split("=", 1)
                for part in value.decode().replace("\r\n", "").split(";")
                if "=" in part
            )
            found.append({k.strip(): "".join(v.split()) for k, v in tags.items()})
    return found


def _verifies(raw: bytes, signing: Signing, index: int = 0) -> bool:
    try:
        return bool(dkim.DKIM(raw).verify(idx=index, dnsfunc=_dns(signing.dns)))
    except dkim.ValidationError:  # dkimpy raises for some failures (body hash) instead
        return False


def _send(signing: Signing, login: str, password: str, subject: str) -> bytes:
    before = len(signing.receiver.raw_messages())
    sent = submit(
        signing.stack.ports["submission"],
        login=login,
        password=password,
        envelope_from=login,
        header_from=login,
        to=OUTSIDE,
        subject=subject,
    )
    assert sent.sent, sent
    received = signing.receiver.wait_for(before + 1)
    (raw,) = [r for r in received if subject.encode() in r]
    return raw


def test_submitted_mail_arrives_signed_and_verifies_through_rotation_and_overlap(
    signing: Signing,
) -> None:
    stack = signing.stack
    account = stack.create_account()
    domain_id = _domain_id(stack, stack.domain)
    token = stack.tenant.token

    # Before any rotation: one RSA signature, with the key the API publishes.
    records = _published(signing, token, domain_id)
    (old_name,) = records
    first = _send(signing, account.address, account.password, unique_subject("dkim-first"))
    (signature,) = _signatures(first)
    assert signature["d"] == stack.domain
    assert signature["a"] == "rsa-sha256"
    assert f"{signature['s']}._domainkey.{stack.domain}" == old_name
    assert _verifies(first, signing)
    # A changed body no longer verifies: the signature really covers the message.
    assert not _verifies(first.replace(b"Hello", b"Hallo"), signing)

    # Rotation: the new keys sign at once, RSA and (as configured) Ed25519.
    rotated = request_as(stack, token, "POST", f"/domains/{domain_id}/dkim-keys/rotate")
    assert rotated.status_code == 200, rotated.text
    records = _published(signing, token, domain_id)
    assert old_name in records and len(records) == 3
    second = _send(signing, account.address, account.password, unique_subject("dkim-second"))
    signatures = _signatures(second)
    assert {s["a"] for s in signatures} == {"rsa-sha256", "ed25519-sha256"}
    assert all(f"{s['s']}._domainkey.{stack.domain}" != old_name for s in signatures)
    for index in range(len(signatures)):
        assert _verifies(second, signing, index), signatures[index]
    # The message signed before the rotation still verifies during the overlap.
    assert _verifies(first, signing)

    # After the overlap the scheduler's job removes the old key: no longer published, and
    # the old message no longer verifies against what the domain publishes.
    (job,) = [j for j in JOBS if j.name == "dkim-keys"]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=DKIM.overlap_days, minutes=1)
    with unit_of_work(stack.sessions) as session:
        job.run(
            session,
            JobContext(
                now=later, today=later.date(), sessions=stack.sessions, settings=stack.settings
            ),
        )
    records = _published(signing, token, domain_id)
    assert old_name not in records and len(records) == 2
    assert not _verifies(first, signing)
    third = _send(signing, account.address, account.password, unique_subject("dkim-third"))
    assert all(_verifies(third, signing, i) for i in range(len(_signatures(third))))


def test_another_customer_can_neither_list_nor_rotate_the_keys(signing: Signing) -> None:
    stack = signing.stack
    domain_id = _domain_id(stack, stack.domain)
    before = _published(signing, stack.tenant.token, domain_id)
    other = customer(stack, prefix="dkim-attacker")
    for method, path in (
        ("GET", f"/domains/{domain_id}/dkim-keys"),
        ("POST", f"/domains/{domain_id}/dkim-keys/rotate"),
    ):
        response = request_as(stack, other.token, method, path)
        assert response.status_code == 404, response.text
        assert "PRIVATE" not in response.text
    assert _published(signing, stack.tenant.token, domain_id) == before
    # Its own domain has keys of its own.
    assert _published(signing, other.token, _domain_id(stack, other.domain))


def test_private_keys_stay_in_the_database_and_no_other_user_can_read_them(
    signing: Signing,
) -> None:
    stack = signing.stack
    with stack.sessions() as session:
        pems = [key.private_key for key in session.scalars(select(DkimKey)).all()]
    assert pems
    bodies = ["".join(pem.splitlines()[1:-1])[:48] for pem in pems]
    # No rendered file holds a private key, and what OpenDKIM reads is not world-readable.
    for path in stack.root.rglob("*"):
        if path.is_file() and not path.is_symlink() and "mail" not in path.parts:
            content = path.read_bytes()
            assert not any(body.encode() in content for body in bodies), path
    url = stack.settings.resolved_database_url
    if url.startswith("sqlite"):
        database = Path(url.removeprefix("sqlite:///"))
        for file in database.parent.iterdir():
            assert not file.stat().st_mode & stat.S_IROTH, file
    # A database password in OpenDKIM's DSN makes its configuration a secret file.
    password = make_url(url).password
    confs = list((stack.root / "etc" / "opendkim").glob("*.conf"))
    assert len(confs) == 2
    for conf in confs:
        if password and str(password) in conf.read_text():
            assert not conf.stat().st_mode & stat.S_IROTH, conf
    assert os.geteuid() == 0  # the stack (and this check) run as root, like `dataplane up`


def test_dataplane_status_reports_both_signers(signing: Signing) -> None:
    stack = signing.stack
    result = dataplane_cli("status", "--dir", str(stack.root), env=stack.env)
    report = json.loads(result.stdout)
    assert report["daemons"]["opendkim"]["answers"] is True, report
    assert {"dkim_rsa", "dkim_ed25519"} <= set(stack.ports)
