"""Structured logs: JSON lines, the request id on every line of a request, the actor's token
id, and no secret anywhere."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import LoggingSettings, SchedulerSettings, Settings
from postmeister.models import ApiToken
from postmeister.ops.logs import ContextFilter, JsonFormatter, configure_logging
from tests.support import secrets
from tests.support.factories import STRONG_PASSWORD, Tenant


class Lines(logging.Handler):
    """Every record, formatted as the controller's JSON log line."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[dict[str, object]] = []
        self.setFormatter(JsonFormatter())
        self.addFilter(ContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("httpx"):  # the test's own HTTP client
            self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def quiet_client(settings: Settings) -> Iterator[TestClient]:
    """No scheduler: every log line during a request belongs to that request."""
    quiet = settings.model_copy(update={"scheduler": SchedulerSettings(enabled=False)})
    with TestClient(create_app(quiet), base_url="https://testserver") as client:
        yield client


@pytest.fixture
def captured() -> Iterator[Lines]:
    """The log lines, with SQLAlchemy's statement log on (many lines from the thread pool)."""
    handler = Lines()
    root = logging.getLogger()
    engine_log = logging.getLogger("sqlalchemy.engine")
    previous = engine_log.level
    root.addHandler(handler)
    engine_log.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        engine_log.setLevel(previous)
        root.removeHandler(handler)


def token_id(sessions: sessionmaker[Session], customer_id: int) -> int:
    with sessions() as session:
        found = session.scalars(select(ApiToken.id).where(ApiToken.customer_id == customer_id))
        return found.one()


def test_every_line_of_a_request_carries_its_id_and_the_token_id(
    quiet_client: TestClient, alice: Tenant, captured: Lines, sessions: sessionmaker[Session]
) -> None:
    response = quiet_client.post(
        "/mail/account/",
        json={"name": "dora", "domain": alice.domain, "password": STRONG_PASSWORD},
        headers={**alice.auth, "X-Request-ID": "billing-7f3a.42"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["X-Request-ID"] == "billing-7f3a.42"
    lines = captured.lines
    assert len(lines) > 5  # the statements and the access line
    assert {line.get("request_id") for line in lines} == {"billing-7f3a.42"}
    access = [line for line in lines if line["logger"] == "postmeister.access"]
    assert len(access) == 1
    assert access[0]["token_id"] == token_id(sessions, alice.customer_id)
    assert access[0]["customer_id"] == alice.customer_id
    assert access[0]["status"] == 201
    assert access[0]["route"] == "/mail/account/"
    text = json.dumps(lines)
    assert STRONG_PASSWORD not in text and alice.token not in text
    assert "$argon2id$" not in text  # the statement log shows no parameters


def test_a_generated_id_when_none_or_an_unsafe_one_is_sent(
    quiet_client: TestClient, captured: Lines
) -> None:
    ids = set()
    for header in (None, "x" * 129, "bad id", "<script>", "a\\b"):
        headers = {} if header is None else {"X-Request-ID": header}
        response = quiet_client.get("/mail/account/", headers=headers)
        assert response.status_code == 401
        echoed = response.headers["X-Request-ID"]
        assert len(echoed) == 32 and echoed.isalnum() and echoed != header
        ids.add(echoed)
    assert len(ids) == 5
    assert {line["request_id"] for line in captured.lines} == ids


def test_refusals_before_any_route_get_an_id_too(settings: Settings) -> None:
    with TestClient(create_app(settings), base_url="http://testserver") as plain:
        response = plain.get("/mail/account/", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 403
    assert response.headers["X-Request-ID"] == "abc-123"


def test_json_and_human_formats(tmp_path: Path) -> None:
    log = logging.getLogger("postmeister.test")
    stream = io.StringIO()
    try:
        configure_logging(LoggingSettings(format="json"), stream=stream)
        log.info("hello %s", "world", extra={"fields": {"count": 3}})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        configure_logging(LoggingSettings(format="human"), stream=stream)
        log.warning("plain line")
        configure_logging(LoggingSettings(file=tmp_path / "log" / "pm.log"))
        log.info("to a file")
    finally:
        configure_logging(LoggingSettings(file=secrets.LOG_DIR / "subprocesses.jsonl"))
    first, second, third = stream.getvalue().splitlines()[0:3]
    assert json.loads(first)["message"] == "hello world"
    assert json.loads(first)["count"] == 3
    assert json.loads(first)["level"] == "info"
    assert "ValueError: boom" in json.loads(second)["exception"]
    assert "WARNING postmeister.test plain line" in stream.getvalue()
    assert json.loads((tmp_path / "log" / "pm.log").read_text())["message"] == "to a file"
    del third


def test_the_secret_scan_finds_a_secret_and_its_digest(tmp_path: Path) -> None:
    token = "pm_" + "k" * 40
    log = tmp_path / "x.log"
    log.write_text(
        '{"message": "fine"}\n'
        f'{{"message": "leaked {token}"}}\n'
        f'{{"message": "digest {secrets._sha256(token)}"}}\n'
    )
    leaks = secrets.scan([log], {token: "API token", "short": "too short to scan"})
    assert [(leak.line, leak.kind) for leak in leaks] == [
        (2, "API token"),
        (3, "SHA-256 of API token"),
    ]


def test_the_suite_remembers_the_secrets_it_uses(client: TestClient, alice: Tenant) -> None:
    password = "Quartz-Harbor-Lantern-Pepper-19"
    response = client.post(
        "/mail/account/",
        json={"name": "erik", "domain": alice.domain, "password": password},
        headers=alice.auth,
    )
    assert response.status_code == 201, response.text
    assert password in secrets.SECRETS
    assert alice.token in secrets.SECRETS
    assert response.json()["password"] in secrets.SECRETS  # the stored hash
