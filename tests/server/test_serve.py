"""`postmeister serve` as a real process: HTTPS, bootstrap token, concurrency, the CLI.

The first test gets a fresh server (it sees an empty installation); the others share one
per database (`shared_server`): each makes its own customer, domain and token."""

from __future__ import annotations

import json
import ssl
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import Server
from tests.support.factories import STRONG_PASSWORD
from tests.support.processes import BIN, CliWorker, cli

pytestmark = pytest.mark.server


def test_https_with_self_signed_certificate_and_bootstrap_token(server: Server) -> None:
    with httpx.Client(verify=ssl.create_default_context(cafile=server.cert)) as client:
        response = client.get(
            server.url + "/mail/account/", headers={"Authorization": f"Bearer {server.admin_token}"}
        )
    assert response.status_code == 200
    assert response.json() == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/mail/account/")  # the system CAs do not trust it
    plain = server.url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(plain + "/mail/account/", timeout=5)


def test_cli_creates_objects_and_fifty_concurrent_creates_give_one_201(
    shared_server: Server, postmeister_cli: CliWorker
) -> None:
    server = shared_server
    customer = json.loads(
        postmeister_cli("customer", "create", "Concurrent Ltd", env=server.env).stdout
    )
    added = cli("domain", "add", "race.example", "--customer", str(customer["id"]), env=server.env)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["name"] == "race.example"
    issued = postmeister_cli("token", "create", "--customer", str(customer["id"]), env=server.env)
    token = json.loads(issued.stdout)["token"]
    body = {"name": "same", "domain": "race.example", "password": STRONG_PASSWORD}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(verify=ssl.create_default_context(cafile=server.cert), timeout=60) as client:

        def create(_: int) -> int:
            return client.post(
                server.url + "/mail/account/", json=body, headers=headers
            ).status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = Counter(pool.map(create, range(50)))
        assert statuses == {201: 1, 409: 49}
        listed = client.get(server.url + "/mail/account/", headers=headers).json()
    assert [a["id"] for a in listed] == ["same@race.example"]


def test_bootstrap_token_is_printed_only_on_first_start(
    shared_server: Server, tmp_path: Path
) -> None:
    server = shared_server
    again = subprocess.run(
        [str(BIN / "postmeister"), "migrate"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0
    from postmeister.config import Settings
    from postmeister.server import bootstrap_admin_token

    settings = Settings(
        data_dir=Path(server.env["POSTMEISTER_DATA_DIR"]),
        database_url=server.env["POSTMEISTER_DATABASE_URL"],
    )
    assert bootstrap_admin_token(settings) is None


def test_cli_errors_are_clear_and_exit_non_zero(shared_server: Server) -> None:
    server = shared_server
    unknown = cli("domain", "add", "x.example", "--customer", "999", env=server.env)
    assert unknown.returncode == 1
    assert "customer '999' not found" in unknown.stderr
    bad = cli("token", "create", "--admin", "--customer", "1", env=server.env)
    assert bad.returncode == 2
    invalid = cli("domain", "add", "not a domain", "--customer", "1", env=server.env)
    assert invalid.returncode == 1
    assert "not a valid domain name" in invalid.stderr


def test_token_cli_scopes(shared_server: Server, postmeister_cli: CliWorker) -> None:
    server = shared_server
    customer = json.loads(postmeister_cli("customer", "create", "Scoped", env=server.env).stdout)
    cid = str(customer["id"])
    postmeister_cli("domain", "add", "one.example", "--customer", cid, env=server.env)
    issued = cli(
        "token",
        "create",
        "--customer",
        cid,
        "--read-only",
        "--domain",
        "one.example",
        "--expires",
        "2099-01-01T00:00:00Z",
        env=server.env,
    )
    assert issued.returncode == 0, issued.stderr
    shown = json.loads(issued.stdout)
    assert shown["read_only"] is True
    assert shown["domains"] == ["one.example"]
    past = postmeister_cli(
        "token", "create", "--customer", cid, "--expires", "2001-01-01", env=server.env
    )
    assert past.returncode == 1
    assert "past" in past.stderr


def test_malformed_bodies_to_the_real_server_are_4xx_without_a_traceback(
    shared_server: Server,
) -> None:
    """Issue 10, findings 7 and 8, through uvicorn itself: authenticate first, never a 5xx,
    the security headers on every answer, and /docs with its assets served locally."""
    server = shared_server
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    deep = b"[" * 2000 + b"]" * 2000
    huge = b'{"name": ' + b"9" * 5000 + b"}"
    with httpx.Client(
        verify=ssl.create_default_context(cafile=server.cert), base_url=server.url
    ) as client:
        for path, kind in (
            ("/mail/account/", "application/json"),
            ("/sync/sources/", "application/json"),
            ("/email-addresses", "application/vnd.api+json"),
        ):
            for body in (deep, huge):
                anonymous = client.post(path, content=body, headers={"Content-Type": kind})
                assert anonymous.status_code == 401, anonymous.text
                known = client.post(path, content=body, headers={**admin, "Content-Type": kind})
                assert known.status_code == 400, known.text
                for response in (anonymous, known):
                    assert "Traceback" not in response.text
                    assert response.headers["x-content-type-options"] == "nosniff"
                    assert response.headers["cache-control"] == "no-store"
                    assert response.headers["strict-transport-security"] == "max-age=31536000"
        docs = client.get("/docs")
        assert docs.status_code == 200
        assert "https://" not in docs.text
        assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
