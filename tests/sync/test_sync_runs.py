"""Polling a sync source end to end: real HTTPS server, real database, recorded runs."""

from __future__ import annotations

import json
from email.message import Message
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings, SyncSettings
from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.audit.rules import REDACTED
from postmeister.domain.sync_sources.service import confirm_held_document, create_source, get_source
from postmeister.models import Address, AuditEvent, Domain, SyncRun
from postmeister.sync.document import render_document
from postmeister.sync.export import export_customer
from postmeister.sync.service import run_source, sync_document
from tests.support.docserver import DocumentServer, Reply
from tests.support.factories import Tenant, add_domain_to, make_tenant
from tests.support.snapshot import snapshot
from tests.support.tls import TestPki, make_test_pki

MD5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"
SHA512 = (
    "$6$rounds=100000$vE8/iTZi9/cC/RCk$lkjkaN9LY3KAiF0lxmd/dfvkxKm9WDnyG.onOaXCJ64htjzkpzx"
    "RCNLZFDbi5ggwTf4Z3vbo3pPATJzgtytU//"
)


def document(**domains: Any) -> bytes:
    return json.dumps(domains).encode()


BASE = {
    "example.com": {
        "account": [
            {"name": "alice", "password": MD5},
            {"name": "bob", "password": MD5},
            {"name": "carol", "password": MD5},
        ],
        "alias": [{"name": "office", "to": "alice@example.com,bob@example.com"}],
    }
}


def mail_state(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Everything except the sync bookkeeping (runs are recorded even for failures)."""
    state = snapshot(sessions)
    state.pop("sync_runs")
    state.pop("sync_sources")
    state.pop("audit_events")  # a failed or rejected run is recorded there too
    return state


@pytest.fixture
def alice(sessions: sessionmaker[Session]) -> Tenant:
    tenant = make_tenant(sessions, name="Example", domain="example.com")
    add_domain_to(sessions, tenant, "example.org")
    return tenant


@pytest.fixture
def sync_settings(settings: Settings, pki: TestPki) -> SyncSettings:
    # The document server is on loopback, which customer sources may not reach by default.
    return settings.sync.model_copy(
        update={"ca_bundle": pki.ca_cert, "timeout_seconds": 5, "allow_private_networks": True}
    )


class Publisher:
    """The customer's web server: serves one document with an ETag, answers 304 on match."""

    def __init__(self, server: DocumentServer) -> None:
        self.body = document(**BASE)
        self.version = 1
        self.status = 200
        server.routes["/mail.json"] = self.reply

    def publish(self, body: bytes) -> None:
        self.body = body
        self.version += 1

    def reply(self, headers: Message) -> Reply:
        etag = f'"v{self.version}"'
        if self.status != 200:
            return Reply(status=self.status, body=b"oops")
        if headers.get("If-None-Match") == etag:
            return Reply(status=304, body=b"", headers={"ETag": etag})
        return Reply(body=self.body, headers={"ETag": etag})


@pytest.fixture
def publisher(server: DocumentServer) -> Publisher:
    return Publisher(server)


@pytest.fixture
def source_id(
    sessions: sessionmaker[Session],
    alice: Tenant,
    server: DocumentServer,
    sync_settings: SyncSettings,
) -> int:
    with unit_of_work(sessions) as session:
        actor = Actor(customer_id=alice.customer_id)
        return create_source(
            session,
            actor,
            url=server.url("/mail.json"),
            interval_seconds=60,
            settings=sync_settings,
        ).id


def addresses(sessions: sessionmaker[Session]) -> dict[str, tuple[str, str | None]]:
    with sessions() as session:
        return {a.address: (a.kind, a.password_hash) for a in session.scalars(select(Address))}


def last_run(sessions: sessionmaker[Session]) -> SyncRun:
    with sessions() as session:
        run = session.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
        assert run is not None
        return run


def test_first_import_update_delete_and_no_op(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    source_id: int,
    sync_settings: SyncSettings,
) -> None:
    first = run_source(sessions, source_id, settings=sync_settings)
    assert first.result == "applied", first.errors
    assert addresses(sessions) == {
        "alice@example.com": ("mailbox", MD5),
        "bob@example.com": ("mailbox", MD5),
        "carol@example.com": ("mailbox", MD5),
        "office@example.com": ("forward", None),
    }
    run = last_run(sessions)
    assert (run.result, run.created, run.updated, run.deleted) == ("applied", 4, 0, 0)
    with sessions() as session:
        managed = session.scalar(select(Domain.sync_source_id).where(Domain.name == "example.com"))
    assert managed == source_id

    # 304: nothing is downloaded, nothing is written.
    before = mail_state(sessions)
    assert run_source(sessions, source_id, settings=sync_settings).result == "unchanged"
    assert mail_state(sessions) == before

    # The same body under a new ETag: downloaded, compared, nothing written.
    publisher.publish(document(**BASE))
    assert run_source(sessions, source_id, settings=sync_settings).result == "unchanged"
    assert mail_state(sessions) == before

    changed = json.loads(json.dumps(BASE))
    changed["example.com"]["account"][0]["password"] = SHA512
    changed["example.com"]["account"].pop()  # carol goes: 1 of 4 addresses is 25 %
    changed["example.com"]["alias"][0]["to"] = "bob@example.com"
    publisher.publish(document(**changed))
    outcome = run_source(sessions, source_id, settings=sync_settings)
    assert outcome.result == "applied", outcome.errors
    run = last_run(sessions)
    assert (run.created, run.updated, run.deleted) == (0, 2, 1)
    assert addresses(sessions) == {
        "alice@example.com": ("mailbox", SHA512),
        "bob@example.com": ("mailbox", MD5),
        "office@example.com": ("forward", None),
    }


def test_a_prefixed_document_stores_bare_hashes_and_export_then_sync_is_a_no_op(
    sessions: sessionmaker[Session], alice: Tenant, sync_settings: SyncSettings
) -> None:
    prefixed = {
        "example.com": {
            "account": [
                {"name": "alice", "password": "{MD5-CRYPT}" + MD5},
                {"name": "bob", "password": "{sha512-crypt}" + SHA512},
            ]
        }
    }

    def sync(raw: bytes) -> str:
        with unit_of_work(sessions) as session:
            return sync_document(
                session, customer_id=alice.customer_id, raw=raw, settings=sync_settings
            ).result

    assert sync(document(**prefixed)) == "applied"
    stored = {"alice@example.com": ("mailbox", MD5), "bob@example.com": ("mailbox", SHA512)}
    assert addresses(sessions) == stored
    # The plan compares the bare hash with the stored one: the same prefixed document again,
    # and the exported (bare) document, change nothing.
    before = mail_state(sessions)
    assert sync(document(**prefixed)) == "unchanged"
    with sessions() as session:
        exported = render_document(export_customer(session, alice.customer_id))
    assert json.loads(exported)["example.com"]["account"] == [
        {"name": "alice", "password": MD5, "spoofing_whitelist": "", "subaddress_extension": False},
        {
            "name": "bob",
            "password": SHA512,
            "spoofing_whitelist": "",
            "subaddress_extension": False,
        },
    ]
    assert sync(exported) == "unchanged"
    assert mail_state(sessions) == before


REJECTIONS: dict[str, tuple[Any, str]] = {
    "truncated": (lambda p: p.publish(document(**BASE)[:-20]), "rejected"),
    "bad hash": (
        lambda p: p.publish(
            document(**{"example.com": {"account": [{"name": "alice", "password": "$6$x$short"}]}})
        ),
        "rejected",
    ),
    "foreign domain": (
        lambda p: p.publish(document(**{**BASE, "someone-else.example": {}})),
        "rejected",
    ),
    "http 500": (lambda p: setattr(p, "status", 500), "failed"),
    "oversized": (lambda p: p.publish(b" " * 70_000 + document(**BASE)), "failed"),
    "mass deletion": (
        lambda p: p.publish(
            document(**{"example.com": {"account": [{"name": "alice", "password": MD5}]}})
        ),
        "held",
    ),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_a_bad_document_changes_nothing_and_is_recorded(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    source_id: int,
    sync_settings: SyncSettings,
    case: str,
) -> None:
    assert run_source(sessions, source_id, settings=sync_settings).result == "applied"
    before = mail_state(sessions)
    breaks, expected = REJECTIONS[case]
    breaks(publisher)
    limited = sync_settings.model_copy(update={"max_document_bytes": 64 * 1024})
    outcome = run_source(sessions, source_id, settings=limited)
    assert outcome.result == expected
    assert outcome.errors
    assert mail_state(sessions) == before
    run = last_run(sessions)
    assert run.result == expected
    assert json.loads(run.errors or "[]") == outcome.errors


def test_untrusted_certificate_fails_and_changes_nothing(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    source_id: int,
    sync_settings: SyncSettings,
    tmp_path: Any,
) -> None:
    before = mail_state(sessions)
    other = make_test_pki(tmp_path / "other")
    outcome = run_source(
        sessions, source_id, settings=sync_settings.model_copy(update={"ca_bundle": other.ca_cert})
    )
    assert outcome.result == "failed"
    assert "not trusted" in outcome.errors[0]
    assert mail_state(sessions) == before


def test_held_mass_deletion_is_applied_after_confirmation(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    source_id: int,
    sync_settings: SyncSettings,
) -> None:
    run_source(sessions, source_id, settings=sync_settings)
    publisher.publish(
        document(**{"example.com": {"account": [{"name": "alice", "password": MD5}]}})
    )
    held = run_source(sessions, source_id, settings=sync_settings)
    assert held.result == "held"
    assert "3 of 4" in held.errors[0]
    assert len(addresses(sessions)) == 4
    with unit_of_work(sessions) as session:
        source = get_source(session, Actor.system(), source_id)
        confirm_held_document(session, Actor.system(), source)
    applied = run_source(sessions, source_id, settings=sync_settings)
    assert applied.result == "applied"
    assert list(addresses(sessions)) == ["alice@example.com"]


def test_api_writes_to_a_managed_domain_answer_409_naming_the_source(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    source_id: int,
    sync_settings: SyncSettings,
    settings: Settings,
    alice: Tenant,
) -> None:
    from fastapi.testclient import TestClient

    from postmeister.api.app import create_app

    run_source(sessions, source_id, settings=sync_settings)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        response = client.post(
            "/mail/alias/",
            json={"name": "new", "domain": "example.com", "to": "a@b.example"},
            headers=alice.auth,
        )
        assert response.status_code == 409
        assert f"sync source {source_id}" in response.json()["detail"]
        deleting = client.delete("/mail/account/alice@example.com/", headers=alice.auth)
        assert deleting.status_code == 409
        other = client.post(
            "/mail/alias/",
            json={"name": "new", "domain": "example.org", "to": "a@b.example"},
            headers=alice.auth,
        )
        assert other.status_code == 201


def test_sources_on_private_networks_are_refused_by_default(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    source_id: int,
    sync_settings: SyncSettings,
    server: DocumentServer,
) -> None:
    before = mail_state(sessions)
    default = sync_settings.model_copy(update={"allow_private_networks": False})
    outcome = run_source(sessions, source_id, settings=default)
    assert outcome.result == "failed"
    assert "non-public address 127.0.0.1" in outcome.errors[0]
    assert server.requests == []  # refused before connecting
    assert mail_state(sessions) == before


def trail(sessions: sessionmaker[Session], resource: str) -> list[AuditEvent]:
    with sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.resource == resource).order_by(AuditEvent.id)
            )
        )


def test_each_synced_change_is_the_sources_in_the_audit_trail_without_hashes(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    source_id: int,
    sync_settings: SyncSettings,
) -> None:
    assert run_source(sessions, source_id, settings=sync_settings).result == "applied"
    changed = json.loads(document(**BASE))
    changed["example.com"]["account"][0]["password"] = SHA512  # alice: new password
    changed["example.com"]["account"].pop()  # carol goes
    changed["example.com"]["alias"][0]["to"] = "alice@example.com"
    publisher.publish(json.dumps(changed).encode())
    assert run_source(sessions, source_id, settings=sync_settings).result == "applied"

    events = trail(sessions, "address")
    assert {e.actor_kind for e in events} == {"sync"}
    assert {e.actor_id for e in events} == {str(source_id)}
    assert len({e.request_id for e in events}) == 2  # one per run, shared by its events
    by_change = {(e.resource_name, e.action): e.changes for e in events}
    assert by_change["alice@example.com", "created"]["password"] == [None, REDACTED]
    assert by_change["office@example.com", "created"]["forward_to"] == [
        None,
        ["alice@example.com", "bob@example.com"],
    ]
    assert by_change["alice@example.com", "updated"] == {"password": [REDACTED, REDACTED]}
    assert by_change["office@example.com", "updated"] == {
        "forward_to": [["alice@example.com", "bob@example.com"], ["alice@example.com"]]
    }
    assert by_change["carol@example.com", "deleted"]["kind"] == ["mailbox", None]
    assert ("bob@example.com", "updated") not in by_change  # unchanged: no event
    with sessions() as session:
        ids = {a.address: a.id for a in session.scalars(select(Address))}
    assert by_change.keys() >= {("bob@example.com", "created")}
    alice_events = [e for e in events if e.resource_name == "alice@example.com"]
    assert {e.resource_id for e in alice_events} == {str(ids["alice@example.com"])}
    stored = repr([(e.changes, e.resource_name) for e in events])
    assert MD5 not in stored and SHA512 not in stored

    runs = trail(sessions, "sync_run")
    assert [r.action for r in runs] == ["applied", "applied"]
    assert runs[-1].changes["updated"] == [None, 2]
    assert runs[-1].changes["deleted"] == [None, 1]


def test_a_held_run_is_in_the_audit_trail(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    source_id: int,
    sync_settings: SyncSettings,
) -> None:
    assert run_source(sessions, source_id, settings=sync_settings).result == "applied"
    publisher.publish(document(**{"example.com": {}}))
    assert run_source(sessions, source_id, settings=sync_settings).result == "held"
    held = trail(sessions, "sync_run")[-1]
    assert held.action == "held"
    assert held.actor_kind == "sync"
    assert "waits for an operator's confirmation" in held.changes["errors"][1][0]
