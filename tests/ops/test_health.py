"""`/healthz` and `/readyz` as a load balancer sees them: no token, 503 naming the check."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import SchedulerSettings, Settings
from postmeister.db import make_engine
from postmeister.store import migrate
from tests.conftest import fast_password_settings
from tests.support.pgcluster import PrivateCluster
from tests.support.processes import free_port


def test_healthz_answers_without_token_or_database(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_with_database_and_scheduler(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert checks["database"]["ok"] and checks["database"]["detail"].startswith("schema revision")
    assert checks["scheduler"] == {"ok": True, "detail": "running"}


def test_probes_answer_over_plain_http_while_the_api_does_not(settings: Settings) -> None:
    with TestClient(create_app(settings), base_url="http://testserver") as plain:
        assert plain.get("/healthz").status_code == 200
        assert plain.get("/readyz").status_code == 200
        assert plain.get("/mail/account/").status_code == 403
        assert plain.get("/metrics").status_code == 403


def test_readyz_names_a_schema_that_is_not_the_expected_revision(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        current = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        session.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["failing"] == ["database"]
        assert "schema revision 0005, expected" in response.json()["checks"]["database"]["detail"]
    finally:
        with sessions.begin() as session:
            session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})
    assert client.get("/readyz").status_code == 200


def test_readyz_names_a_stopped_scheduler(settings: Settings) -> None:
    fast = settings.model_copy(update={"scheduler": SchedulerSettings(tick_seconds=0.01)})
    app = create_app(fast)
    stopped = threading.Event()

    def broken(*, force: bool = False) -> list[object]:
        stopped.set()
        raise RuntimeError("a bug outside any job")

    with TestClient(app, base_url="https://testserver") as client:
        assert client.get("/readyz").status_code == 200
        app.state.scheduler.run_due = broken
        assert stopped.wait(30)
        while not app.state.scheduler.task.done():
            stopped.wait(0.01)
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["failing"] == ["scheduler"]
        assert response.json()["checks"]["scheduler"]["detail"] == "stopped by RuntimeError"


def test_readyz_with_the_scheduler_switched_off_is_ready(settings: Settings) -> None:
    off = settings.model_copy(update={"scheduler": SchedulerSettings(enabled=False)})
    with TestClient(create_app(off), base_url="https://testserver") as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["scheduler"]["detail"] == "disabled by configuration"


def test_readyz_503_while_the_sqlite_file_is_gone_and_200_when_it_is_back(
    tmp_path: Path, sqlite_template: Path
) -> None:
    database = tmp_path / "data" / "postmeister.sqlite3"
    database.parent.mkdir()
    shutil.copyfile(sqlite_template, database)
    settings = Settings(data_dir=tmp_path / "data", passwords=fast_password_settings())
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        assert client.get("/readyz").status_code == 200
        database.rename(tmp_path / "moved.sqlite3")
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["failing"] == ["database"]
        assert "is missing" in response.json()["checks"]["database"]["detail"]
        (tmp_path / "moved.sqlite3").rename(database)
        assert client.get("/readyz").status_code == 200


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    """A PostgreSQL of this test's own, which it may stop (the shared one keeps running)."""
    root = Path(tempfile.mkdtemp(prefix="pm-readyz-", dir="/tmp"))
    root.chmod(0o755)  # the postgres user must reach its data folder below
    cluster = PrivateCluster(root, free_port())
    try:
        cluster.init()
        cluster.start()
        admin = make_engine(cluster.url.replace("/postmeister", "/postgres"),
                            isolation_level="AUTOCOMMIT")  # fmt: skip
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE postmeister"))
        admin.dispose()
        migrate(cluster.url)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_readyz_503_while_postgresql_is_stopped_and_200_when_it_is_back(
    private_cluster: PrivateCluster, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url=private_cluster.url, passwords=fast_password_settings()
    )
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        assert client.get("/readyz").status_code == 200
        private_cluster.stop()
        try:
            response = client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["failing"] == ["database"]
            assert response.json()["checks"]["database"]["detail"].startswith("unreachable")
            assert client.get("/healthz").status_code == 200  # alive all the same
        finally:
            private_cluster.start()
        assert client.get("/readyz").status_code == 200
