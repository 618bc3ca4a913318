"""Sync sources through the API (/sync/sources/) and their polling by the scheduler."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import Settings
from postmeister.db import unit_of_work
from postmeister.domain.sync_sources.service import poll_interval
from postmeister.models import SyncRun, SyncSource
from postmeister.sync import service as sync_service
from postmeister.sync.fetch import fetch_document
from tests.support.docserver import DocumentServer, Reply
from tests.support.factories import Tenant, make_tenant, make_token
from tests.support.snapshot import snapshot
from tests.support.tls import TestPki

MD5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"
DOC = {"example.com": {"account": [{"name": "alice", "password": MD5}]}}


@pytest.fixture
def app_settings(settings: Settings, pki: TestPki) -> Settings:
    return settings.model_copy(
        update={
            "sync": settings.sync.model_copy(
                update={
                    "ca_bundle": pki.ca_cert,
                    "min_interval_seconds": 1,
                    "allow_private_networks": True,
                }
            )
        }
    )


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings), base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture
def alice(sessions: sessionmaker[Session]) -> Tenant:
    return make_tenant(sessions, name="Example", domain="example.com")


@pytest.fixture
def bob(sessions: sessionmaker[Session]) -> Tenant:
    return make_tenant(sessions, name="Other", domain="other.example")


def test_a_customer_manages_its_sources_and_the_scheduler_polls_them(
    client: TestClient, alice: Tenant, server: DocumentServer
) -> None:
    server.routes["/mail.json"] = lambda _headers: Reply(body=json.dumps(DOC).encode())
    created = client.post(
        "/sync/sources/",
        json={"url": server.url("/mail.json"), "interval_seconds": 60},
        headers=alice.auth,
    )
    assert created.status_code == 201, created.text
    source = created.json()
    assert source["customer_id"] == alice.customer_id
    assert source["last_run"] is None

    # The scheduler's catch-up runs every job: the new source is due at once.
    client.app.state.scheduler.run_due(force=True)  # type: ignore[attr-defined]
    shown = client.get(f"/sync/sources/{source['id']}/", headers=alice.auth).json()
    assert shown["last_run"]["result"] == "applied"
    assert shown["last_run"]["created"] == 1
    assert shown["domains"] == ["example.com"]
    assert client.get("/mail/account/alice@example.com/", headers=alice.auth).status_code == 200

    # Not due again before its interval: a second tick does not fetch.
    fetched = len(server.requests)
    client.app.state.scheduler.run_due(force=True)  # type: ignore[attr-defined]
    assert len(server.requests) == fetched

    assert [s["id"] for s in client.get("/sync/sources/", headers=alice.auth).json()] == [
        source["id"]
    ]
    assert client.delete(f"/sync/sources/{source['id']}/", headers=alice.auth).status_code == 204
    assert client.get("/sync/sources/", headers=alice.auth).json() == []
    # The domain is API-managed again; its addresses stayed.
    assert (
        client.post(
            "/mail/alias/",
            json={"name": "x", "domain": "example.com", "to": "a@b.example"},
            headers=alice.auth,
        ).status_code
        == 201
    )


def test_sources_are_invisible_to_other_customers_and_domain_limited_tokens(
    client: TestClient, alice: Tenant, bob: Tenant, sessions: sessionmaker[Session]
) -> None:
    created = client.post(
        "/sync/sources/", json={"url": "https://127.0.0.1:9/x.json"}, headers=alice.auth
    )
    assert created.status_code == 201
    path = f"/sync/sources/{created.json()['id']}/"
    limited = {
        "Authorization": "Bearer "
        + make_token(sessions, customer_id=alice.customer_id, domains=["example.com"])
    }
    reader = {
        "Authorization": "Bearer "
        + make_token(sessions, customer_id=alice.customer_id, read_only=True)
    }
    before = snapshot(sessions)
    for method, url in (("GET", path), ("DELETE", path), ("POST", path + "confirm/")):
        assert client.request(method, url, headers=bob.auth).status_code == 404
    assert client.get("/sync/sources/", headers=bob.auth).json() == []
    assert client.get(path, headers=limited).status_code == 404
    assert (
        client.post(
            "/sync/sources/", json={"url": "https://x.example/a.json"}, headers=limited
        ).status_code
        == 404
    )
    assert client.get(path, headers=reader).status_code == 200
    assert client.delete(path, headers=reader).status_code == 403
    assert snapshot(sessions) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://example.com/a.json"}, "url"),
        ({"url": "not a url at all"}, "url"),
        ({"url": "https://example.com/a.json", "interval_seconds": 0}, "interval_seconds"),
        # Finding 5 of issue 10: these overflowed the shared polling job (or gave a 500).
        ({"url": "https://example.com/a.json", "interval_seconds": 604_801}, "interval_seconds"),
        ({"url": "https://example.com/a.json", "interval_seconds": 10**15}, "interval_seconds"),
        ({"url": "https://example.com/a.json", "interval_seconds": 2**63}, "interval_seconds"),
        ({"url": "https://example.com/a.json", "interval_seconds": -(2**63)}, "interval_seconds"),
        ({"url": "https://example.com/a.json", "colour": "red"}, "colour"),
        ({"url": 5}, "url"),
    ],
)
def test_bad_sources_are_refused(
    client: TestClient, alice: Tenant, body: dict[str, object], field: str
) -> None:
    response = client.post("/sync/sources/", json=body, headers=alice.auth)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


def test_confirm_without_a_held_document_is_409(client: TestClient, alice: Tenant) -> None:
    created = client.post(
        "/sync/sources/", json={"url": "https://127.0.0.1:9/x.json"}, headers=alice.auth
    )
    response = client.post(f"/sync/sources/{created.json()['id']}/confirm/", headers=alice.auth)
    assert response.status_code == 409


def test_admin_must_name_the_customer(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    admin = {"Authorization": "Bearer " + make_token(sessions, admin=True)}
    missing = client.post("/sync/sources/", json={"url": "https://x.example/a.json"}, headers=admin)
    assert missing.status_code == 422
    named = client.post(
        "/sync/sources/",
        json={"url": "https://x.example/a.json", "customer_id": alice.customer_id},
        headers=admin,
    )
    assert named.status_code == 201
    assert named.json()["customer_id"] == alice.customer_id


def test_the_interval_range_is_named_and_its_ends_are_accepted(
    client: TestClient, alice: Tenant
) -> None:
    for seconds in (1, 604_800):  # min_interval_seconds is 1 in these tests; 7 days is the max
        created = client.post(
            "/sync/sources/",
            json={"url": "https://x.example/a.json", "interval_seconds": seconds},
            headers=alice.auth,
        )
        assert created.status_code == 201, created.text
    refused = client.post(
        "/sync/sources/",
        json={"url": "https://x.example/a.json", "interval_seconds": 10**15},
        headers=alice.auth,
    )
    (error,) = refused.json()["errors"]
    assert "between 1 and 604800 seconds" in error["message"]


# --- one source's failure never keeps the others from running (finding 5 of issue 10) -------


def _source(sessions: sessionmaker[Session], tenant: Tenant, url: str, interval: int) -> int:
    """A source row written directly, as one stored before the interval bound existed."""
    with unit_of_work(sessions) as session:
        source = SyncSource(customer_id=tenant.customer_id, url=url, interval_seconds=interval)
        session.add(source)
        session.flush()
        return source.id


def _runs(sessions: sessionmaker[Session], source_id: int) -> list[SyncRun]:
    with sessions() as session:
        return list(session.scalars(select(SyncRun).where(SyncRun.source_id == source_id)))


def _document(domain: str, name: str) -> bytes:
    return json.dumps({domain: {"account": [{"name": name, "password": MD5}]}}).encode()


def test_sources_that_fail_in_any_way_do_not_keep_the_others_from_running(
    client: TestClient,
    alice: Tenant,
    bob: Tenant,
    sessions: sessionmaker[Session],
    server: DocumentServer,
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
) -> None:
    carol = make_tenant(sessions, name="Third", domain="third.example")
    server.routes["/alice.json"] = lambda _h: Reply(body=_document("example.com", "alice"))
    server.routes["/carol.json"] = lambda _h: Reply(body=_document("third.example", "carol"))
    server.routes["/bob.json"] = lambda _h: Reply(body=_document("other.example", "bob"))
    # Sources are polled in id order; the failing ones come first.
    bug = _source(sessions, bob, server.url("/bug.json"), 60)
    db_error = _source(sessions, bob, server.url("/bob.json"), 60)
    # Stored before the bound: 10**15 s overflowed every tick (PostgreSQL's INTEGER column
    # cannot hold it; its largest value is the worst case there).
    huge = 10**15 if engine.dialect.name == "sqlite" else 2**31 - 1
    unbounded = _source(sessions, carol, server.url("/carol.json"), huge)
    good = _source(sessions, alice, server.url("/alice.json"), 60)

    real_fetch = fetch_document
    real_sync = sync_service.sync_document

    def fetch_with_a_bug(url: str, **kwargs: Any) -> Any:
        if url.endswith("/bug.json"):
            raise RuntimeError("a bug in the fetcher")
        return real_fetch(url, **kwargs)

    def sync_with_a_broken_row(session: Session, **kwargs: Any) -> Any:
        if kwargs["source"].id == db_error:
            raise OperationalError("UPDATE sync_sources ...", {}, Exception("disk I/O error"))
        return real_sync(session, **kwargs)

    monkeypatch.setattr(sync_service, "fetch_document", fetch_with_a_bug)
    monkeypatch.setattr(sync_service, "sync_document", sync_with_a_broken_row)
    outcomes = client.app.state.scheduler.run_due(force=True)  # type: ignore[attr-defined]
    assert ("sync-sources", "ran") in [(o.name, o.outcome) for o in outcomes]

    for failed, kind in ((bug, "RuntimeError"), (db_error, "OperationalError")):
        (run,) = _runs(sessions, failed)
        assert run.result == "failed"
        assert json.loads(run.errors or "[]") == [
            f"the sync failed inside the controller ({kind}); the operator's log has the details"
        ]
    for ran in (unbounded, good):
        assert [r.result for r in _runs(sessions, ran)] == ["applied"]
    assert client.get("/mail/account/alice@example.com/", headers=alice.auth).status_code == 200
    assert client.get("/mail/account/carol@third.example/", headers=carol.auth).status_code == 200
    assert client.get("/mail/account/bob@other.example/", headers=bob.auth).status_code == 404
    with sessions() as session:
        source = session.get(SyncSource, unbounded)
        assert source is not None and source.next_run_at is not None
        (run,) = _runs(sessions, unbounded)
        # Polled again within the bound (7 days), not never / not an overflow.
        assert source.next_run_at - run.started_at == dt.timedelta(days=7)


def test_a_source_that_cannot_be_claimed_is_recorded_and_the_others_still_run(
    client: TestClient,
    alice: Tenant,
    bob: Tenant,
    sessions: sessionmaker[Session],
    server: DocumentServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server.routes["/alice.json"] = lambda _h: Reply(body=_document("example.com", "alice"))
    broken = _source(sessions, bob, server.url("/bob.json"), 61)
    good = _source(sessions, alice, server.url("/alice.json"), 60)
    real_interval = poll_interval

    def interval_failing_on_one_row(seconds: int, settings: Any) -> dt.timedelta:
        if seconds == 61:
            raise OverflowError("date value out of range")
        return real_interval(seconds, settings)

    monkeypatch.setattr(sync_service, "poll_interval", interval_failing_on_one_row)
    client.app.state.scheduler.run_due(force=True)  # type: ignore[attr-defined]
    (run,) = _runs(sessions, broken)
    assert run.result == "failed"
    assert "(OverflowError)" in (run.errors or "")
    with sessions() as session:
        row = session.get(SyncSource, broken)
        assert row is not None and row.next_run_at is None  # still due: tried next tick
    assert [r.result for r in _runs(sessions, good)] == ["applied"]
    assert [path for path, _headers in server.requests] == ["/alice.json"]
