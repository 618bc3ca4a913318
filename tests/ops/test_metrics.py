"""`/metrics`: admin token only, and the numbers move as the controller works."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.sync_sources.service import create_source
from postmeister.sync.service import run_source
from tests.ops.metrics_text import sample
from tests.support.factories import STRONG_PASSWORD, Tenant
from tests.support.processes import free_port


def scrape(client: TestClient, auth: dict[str, str]) -> str:
    response = client.get("/metrics", headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    text: str = response.text
    return text


def test_metrics_need_an_admin_token(
    client: TestClient, alice: Tenant, admin_auth: dict[str, str]
) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=alice.auth).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer pm_wrong"}).status_code == 401
    assert "postmeister_build_info" in scrape(client, admin_auth)


def test_requests_statements_and_hashes_are_counted(
    client: TestClient, alice: Tenant, admin_auth: dict[str, str]
) -> None:
    route = "/mail/account/"
    before = scrape(client, admin_auth)
    for _ in range(2):
        assert client.get(route, headers=alice.auth).status_code == 200
    created = client.post(
        route,
        json={"name": "carla", "domain": alice.domain, "password": STRONG_PASSWORD},
        headers=alice.auth,
    )
    assert created.status_code == 201, created.text
    assert client.get("/mail/account/nobody@alice.example/", headers=alice.auth).status_code == 404
    after = scrape(client, admin_auth)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("postmeister_http_requests_total", method="GET", route=route, status="200") == 2
    assert delta("postmeister_http_requests_total", method="POST", route=route, status="201") == 1
    assert (
        delta(
            "postmeister_http_requests_total",
            method="GET",
            route="/mail/account/{account_id}/",
            status="404",
        )
        == 1
    )
    assert delta("postmeister_http_request_duration_seconds_count", method="GET", route=route) == 2
    assert delta("postmeister_db_statements_total", operation="SELECT") >= 3
    assert delta("postmeister_db_statements_total", operation="INSERT") >= 1
    assert delta("postmeister_db_statement_duration_seconds_count", operation="INSERT") >= 1
    assert delta("postmeister_password_hashes_total", scheme="argon2id") >= 1


def test_unknown_paths_share_one_series(client: TestClient, admin_auth: dict[str, str]) -> None:
    before = scrape(client, admin_auth)
    for path in ("/no/such/thing", "/wp-login.php"):
        assert client.get(path).status_code == 404
    after = scrape(client, admin_auth)
    labels = {"method": "GET", "route": "unmatched", "status": "404"}
    assert (
        sample(after, "postmeister_http_requests_total", **labels)
        - sample(before, "postmeister_http_requests_total", **labels)
        == 2
    )
    assert "wp-login" not in after


def test_scheduler_jobs_and_sync_runs_are_counted(
    client: TestClient,
    settings: Settings,
    sessions: sessionmaker[Session],
    alice: Tenant,
    admin_auth: dict[str, str],
) -> None:
    # The controller's start ran every job once (the catch-up).
    first = scrape(client, admin_auth)
    assert (
        sample(
            first, "postmeister_scheduler_job_runs_total", job="autoresponder-dates", outcome="ran"
        )
        >= 1
    )
    sync = settings.sync.model_copy(update={"allow_private_networks": True, "timeout_seconds": 5})
    with unit_of_work(sessions) as session:
        source = create_source(
            session,
            Actor.for_customer(alice.customer_id),
            url=f"https://127.0.0.1:{free_port()}/mail.json",  # nothing listens there
            interval_seconds=None,
            settings=sync,
        )
        source_id = source.id
    outcome = run_source(sessions, source_id, settings=sync, now=dt.datetime.now(dt.UTC))
    assert outcome.result == "failed"
    after = scrape(client, admin_auth)
    runs = "postmeister_sync_runs_total"
    assert sample(after, runs, result="failed") - sample(first, runs, result="failed") == 1
    duration = "postmeister_sync_run_duration_seconds_count"
    assert sample(after, duration, result="failed") - sample(first, duration, result="failed") == 1
