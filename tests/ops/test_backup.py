"""`postmeister backup` and `restore` as an operator runs them, on both databases."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from postmeister.api.app import create_app
from postmeister.config import Settings
from tests.conftest import PG_ADMIN_URL, fast_password_settings
from tests.support.databases import fresh_postgres_database
from tests.support.factories import STRONG_PASSWORD, Tenant
from tests.support.processes import CliWorker, cli


def env_for(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(settings.data_dir),
        "POSTMEISTER_DATABASE_URL": settings.resolved_database_url,
    }


@pytest.fixture
def target(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Where a restore goes: a new data folder (SQLite) or a new, empty database."""
    data_dir = tmp_path / "restored"
    if settings.resolved_database_url.startswith("sqlite"):
        yield Settings(data_dir=data_dir, passwords=fast_password_settings())
        return
    with fresh_postgres_database(PG_ADMIN_URL) as url:
        yield Settings(data_dir=data_dir, database_url=url, passwords=fast_password_settings())


@pytest.fixture
def backed_up(
    client: TestClient,
    alice: Tenant,
    settings: Settings,
    tmp_path: Path,
    postmeister_cli: CliWorker,
) -> Path:
    """A backup taken with `postmeister backup` (in the CLI worker: the same command, exit
    code, stdout and stderr; `test_backup_refuses_a_directory_that_is_not_empty` and every
    restore below run the real executable)."""
    created = client.post(
        "/mail/account/",
        json={"name": "greta", "domain": alice.domain, "password": STRONG_PASSWORD},
        headers=alice.auth,
    )
    assert created.status_code == 201, created.text
    mail = tmp_path / "mail" / alice.domain / "greta" / "Maildir"
    for folder in ("cur", "new", "tmp"):
        (mail / folder).mkdir(parents=True)
    (mail / "new" / "1700000000.M1.host").write_text("Subject: kept\n\nhello\n")
    (mail / "tmp" / "1700000001.M2.host").write_text("half written")
    (mail / "dovecot-uidlist.lock").write_text("held by a delivery while the copy ran")
    out = tmp_path / "backup"
    result = postmeister_cli(
        "backup", "--out", str(out), "--mail-store", "--mail-root", str(tmp_path / "mail"),
        env=env_for(settings),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["database"]["schema_revision"]
    assert manifest["database"]["row_counts"]["addresses"] == 1
    assert set(manifest["files"]) == {manifest["database"]["file"], "mail.tar"}
    assert "pages" in result.stderr or "pg_dump" in result.stderr  # progress
    return out


def test_a_backup_restores_into_an_empty_target_with_mail_and_tokens(
    backed_up: Path, target: Settings, alice: Tenant, tmp_path: Path
) -> None:
    restored_mail = tmp_path / "restored-mail"
    result = cli("restore", str(backed_up), "--mail-root", str(restored_mail), env=env_for(target))
    assert result.returncode == 0, result.stderr
    with TestClient(create_app(target), base_url="https://testserver") as client:
        assert client.get("/readyz").status_code == 200
        accounts = client.get("/mail/account/", headers=alice.auth)
    assert accounts.status_code == 200
    assert [a["name"] for a in accounts.json()] == ["greta"]
    maildir = restored_mail / alice.domain / "greta" / "Maildir"
    assert (maildir / "new" / "1700000000.M1.host").read_text().startswith("Subject: kept")
    assert (maildir / "tmp").is_dir() and not any((maildir / "tmp").iterdir())
    assert not (maildir / "dovecot-uidlist.lock").exists()


def test_a_second_restore_into_the_same_target_is_refused(
    backed_up: Path, target: Settings, tmp_path: Path, postmeister_cli: CliWorker
) -> None:
    first = postmeister_cli("restore", str(backed_up), "--no-mail-store", env=env_for(target))
    assert first.returncode == 0, first.stderr
    again = cli("restore", str(backed_up), "--no-mail-store", env=env_for(target))
    assert again.returncode == 1
    assert "not empty" in again.stderr


def test_a_tampered_backup_is_refused_and_nothing_is_written(
    backed_up: Path, target: Settings
) -> None:
    manifest = json.loads((backed_up / "manifest.json").read_text())
    database = backed_up / manifest["database"]["file"]
    with database.open("r+b") as handle:
        handle.seek(database.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    result = cli("restore", str(backed_up), "--no-mail-store", env=env_for(target))
    assert result.returncode == 1
    assert "does not match its checksum" in result.stderr
    # Nothing was restored: the target still takes a good backup later.
    if target.database_url is None:
        assert not (target.data_dir / "postmeister.sqlite3").exists()


def test_a_backup_from_a_newer_schema_is_refused(backed_up: Path, target: Settings) -> None:
    manifest_file = backed_up / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["database"]["schema_revision"] = "9999"
    manifest_file.write_text(json.dumps(manifest))
    result = cli("restore", str(backed_up), "--no-mail-store", env=env_for(target))
    assert result.returncode == 1
    assert "schema revision '9999'" in result.stderr and "newer version" in result.stderr


def test_a_restore_into_a_non_empty_mail_store_is_refused(
    backed_up: Path, target: Settings, tmp_path: Path
) -> None:
    busy = tmp_path / "busy-mail"
    (busy / "someone").mkdir(parents=True)
    result = cli("restore", str(backed_up), "--mail-root", str(busy), env=env_for(target))
    assert result.returncode == 1
    assert f"the mail store {busy} is not empty" in result.stderr


def test_backup_refuses_a_directory_that_is_not_empty(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "used"
    out.mkdir()
    (out / "something").write_text("x")
    result = cli("backup", "--out", str(out), env=env_for(settings))
    assert result.returncode == 1
    assert "is not empty" in result.stderr
    shutil.rmtree(out)
