"""`postmeister user create|list` as a real process on both databases: the generated
password is printed once and logs in to the web interface; the list never shows it."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import Settings
from tests.cli.test_domain_verbs import env_for
from tests.support.factories import make_tenant
from tests.support.processes import cli
from tests.web.conftest import Browser


def test_create_an_admin_and_a_customer_user_then_log_in(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    tenant = make_tenant(sessions, name="Cli GmbH", domain="cli.example")
    env = env_for(settings)
    admin = cli("user", "create", "Root@Provider.example", "--admin", env=env)
    assert admin.returncode == 0, admin.stderr
    created = json.loads(admin.stdout)
    assert created["email"] == "root@provider.example" and created["admin"] is True
    user = cli("user", "create", "anna@cli.example", "--customer", str(tenant.customer_id), env=env)
    assert user.returncode == 0, user.stderr
    again = cli(
        "user", "create", "anna@cli.example", "--customer", str(tenant.customer_id), env=env
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    neither = cli("user", "create", "x@cli.example", env=env)
    assert neither.returncode != 0
    listed = cli("user", "list", env=env)
    assert created["password"] not in listed.stdout
    assert [u["email"] for u in json.loads(listed.stdout)] == [
        "root@provider.example",
        "anna@cli.example",
    ]
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        browser = Browser(client)
        landed = browser.login("root@provider.example", created["password"])
        assert landed.url.path == "/ui/admin" and "Cli GmbH" in landed.text
