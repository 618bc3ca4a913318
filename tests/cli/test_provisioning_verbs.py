"""`postmeister customer|package|token …` print what `/customers`, `/packages` and
`/api-tokens` show: the API's resource objects, rendered by the API's own modules (loaded
when a verb first needs them, see `postmeister.cli.lazy`)."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import Settings
from tests.api.hosting.provisioning import auth_of, send
from tests.cli.test_domain_verbs import env_for
from tests.support.factories import make_token
from tests.support.processes import CliWorker


def test_provisioning_verbs_print_the_apis_resource_objects(
    settings: Settings, sessions: sessionmaker[Session], postmeister_cli: CliWorker
) -> None:
    env = env_for(settings)

    def run(*args: str) -> Any:
        done = postmeister_cli(*args, env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    customer = run("customer", "create", "Verbs GmbH")
    package = run("package", "create", "Basis", "--customer", str(customer["id"]))
    issued = run("token", "create", "--customer", str(customer["id"]), "--label", "panel")
    suspended = run("customer", "suspend", str(customer["id"]))
    assert suspended["attributes"]["suspended"] is True

    admin = auth_of(make_token(sessions, admin=True))
    with TestClient(create_app(settings), base_url="https://testserver") as client:

        def api(path: str) -> Any:
            response = send(client, admin, "GET", path)
            assert response.status_code == 200, response.text
            return response.json()["data"]

        assert run("customer", "show", str(customer["id"])) == api(f"/customers/{customer['id']}")
        assert run("customer", "list") == api("/customers")
        assert package == api(f"/packages/{package['id']}")
        assert run("package", "list", "--customer", str(customer["id"])) == api(
            f"/packages?filter[customer_id]={customer['id']}"
        )
        assert run("token", "show", str(issued["id"])) == api(f"/api-tokens/{issued['id']}")
        revoked = run("token", "revoke", str(issued["id"]))
        assert revoked == api(f"/api-tokens/{issued['id']}")
        listed = run("token", "list", "--customer", str(customer["id"]))
        assert listed == [revoked]
        assert issued["token"] not in json.dumps(listed)  # the secret is shown once
