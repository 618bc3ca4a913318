"""A client written for the original controller works unchanged (issue 11, "Done when").

`DrfClient` behaves like the original product's clients: the API token is the password of
HTTP Basic auth taken from the base URL (`https://token:pm_…@host/`), lists are read as DRF
pages (`page_size=10000`, `results`, following `next`), bodies are JSON objects posted with
`content-type: application/json`, and ids are the full addresses. It drives every endpoint of
the controller dialect against a real `postmeister serve` process over HTTPS, on both
databases, as a customer, with another customer's objects existing.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpx
import pytest

from tests.server.conftest import Server
from tests.support.factories import OTHER_STRONG_PASSWORD, STRONG_PASSWORD
from tests.support.processes import CliWorker

pytestmark = pytest.mark.server


class DrfClient:
    """What a provider's scripts for the original controller do, in a few lines."""

    def __init__(self, base_url: str, cafile: str) -> None:
        url = httpx.URL(base_url)
        # Credentials ride in the base URL; they are kept for the `next` links, which are
        # absolute URLs without them (as a requests.Session with auth= would).
        self.auth = httpx.BasicAuth(url.username, url.password)
        self.http = httpx.Client(
            base_url=base_url, verify=ssl.create_default_context(cafile=cafile), timeout=30
        )

    def close(self) -> None:
        self.http.close()

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(
            path,
            content=json.dumps(body or {}),
            headers={"content-type": "application/json"},
            auth=self.auth,
        )

    def put(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.put(
            path,
            content=json.dumps(body),
            headers={"content-type": "application/json"},
            auth=self.auth,
        )

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params, auth=self.auth)

    def delete(self, path: str) -> httpx.Response:
        return self.http.delete(path, auth=self.auth)

    def list_all(self, path: str, page_size: int = 10000, **params: Any) -> list[dict[str, Any]]:
        """Every object of a list, page by page, the DRF way."""
        response = self.get(path, page_size=page_size, **params)
        items: list[dict[str, Any]] = []
        while True:
            assert response.status_code == 200, response.text
            page = response.json()
            assert set(page) == {"count", "next", "previous", "results"}
            items.extend(page["results"])
            if page["next"] is None:
                assert len(items) == page["count"]
                return items
            response = self.http.get(page["next"], auth=self.auth)


def customer_token(server: Server, cli: CliWorker, name: str, domain: str) -> str:
    """Set up through the CLI (the same commands as `postmeister ...`, in the CLI worker)."""
    customer = json.loads(cli("customer", "create", name, env=server.env).stdout)
    added = cli("domain", "add", domain, "--customer", str(customer["id"]), env=server.env)
    assert added.returncode == 0, added.stderr
    issued = cli("token", "create", "--customer", str(customer["id"]), env=server.env)
    token: str = json.loads(issued.stdout)["token"]
    return token


def base_url(server: Server, token: str) -> str:
    return server.url.replace("https://", f"https://token:{token}@") + "/"


def test_a_drf_style_client_drives_every_controller_endpoint(
    server: Server, postmeister_cli: CliWorker
) -> None:
    mine = customer_token(server, postmeister_cli, "Migrating Provider", "provider.example")
    theirs = customer_token(server, postmeister_cli, "Someone Else", "else.example")
    other = DrfClient(base_url(server, theirs), str(server.cert))
    client = DrfClient(base_url(server, mine), str(server.cert))
    try:
        _drive(client, other, server)
    finally:
        client.close()
        other.close()


def _drive(client: DrfClient, other: DrfClient, server: Server) -> None:
    # The other customer's objects exist throughout.
    assert (
        other.post(
            "mail/account/", {"name": "boss", "domain": "else.example", "password": STRONG_PASSWORD}
        ).status_code
        == 201
    )
    assert (
        other.post(
            "mail/alias/", {"name": "team", "domain": "else.example", "to": "boss@else.example"}
        ).status_code
        == 201
    )

    # Credentials in the URL alone are enough (no auth= at all).
    with httpx.Client(verify=ssl.create_default_context(cafile=str(server.cert))) as bare:
        direct = bare.get(base_url(server, "pm_not-a-token") + "mail/account/")
    assert direct.status_code == 401  # a wrong token in the URL is refused …
    with httpx.Client(verify=ssl.create_default_context(cafile=str(server.cert))) as bare:
        direct = bare.get(str(client.http.base_url) + "mail/account/")
    assert direct.status_code == 200, direct.text  # … the right one accepted
    assert direct.json() == []

    # Accounts: create (25, so that small pages have several), read, list in pages.
    for i in range(25):
        created = client.post(
            "mail/account/",
            {
                "name": f"user{i:02}",
                "domain": "provider.example",
                "password": STRONG_PASSWORD,
                "spoofing_whitelist": "provider.example" if i == 0 else "",
                "subaddress_extension": i == 0,
            },
        )
        assert created.status_code == 201, created.text
    first = client.get("mail/account/user00@provider.example/").json()
    assert first["spoofing_whitelist"] == "provider.example"
    assert first["subaddress_extension"] is True
    assert first["password"].startswith("$argon2id$")  # only the hash is readable
    accounts = client.list_all("mail/account/")
    assert [a["id"] for a in accounts] == [f"user{i:02}@provider.example" for i in range(25)]
    assert client.list_all("mail/account/", page_size=10) == accounts  # three pages
    assert client.list_all("mail/account/", domain="provider.example") == accounts
    # Filtering by the other customer's domain answers like a domain that does not exist.
    foreign = client.get("mail/account/", domain="else.example", page_size=10000)
    unknown = client.get("mail/account/", domain="nowhere.example", page_size=10000)
    assert foreign.status_code == unknown.status_code == 404

    # Every action on an account, each answering the account as it now is.
    account = "mail/account/user01@provider.example/"
    for action, body, field, value in (
        ("set_password", {"password": OTHER_STRONG_PASSWORD}, None, None),
        ("disable_submission", None, "submission_disabled", True),
        ("enable_submission", None, "submission_disabled", False),
        ("enable_subaddress", None, "subaddress_extension", True),
        ("disable_subaddress", None, "subaddress_extension", False),
        (
            "set_spoofing_whitelist",
            {"spoofing_whitelist": "a@provider.example,*"},
            "spoofing_whitelist",
            "a@provider.example,*",
        ),
    ):
        response = client.post(f"{account}{action}/", body)
        assert response.status_code == 200, (action, response.text)
        if field is not None:
            assert response.json()[field] == value, action
    assert client.get(account).json()["password"] != first["password"]

    # Aliases: create, read, list, replace the targets, delete.
    created = client.post(
        "mail/alias/",
        {"name": "office", "domain": "provider.example", "to": "user00@provider.example"},
    )
    assert created.status_code == 201, created.text
    alias = "mail/alias/office@provider.example/"
    assert client.get(alias).json()["to"] == "user00@provider.example"
    replaced = client.put(alias, {"to": "user01@provider.example,outside@else.example"})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["to"] == "user01@provider.example,outside@else.example"
    assert [a["id"] for a in client.list_all("mail/alias/")] == ["office@provider.example"]

    # Sync sources (the Basic JSON API): create, list, get, confirm (nothing held), delete.
    source = client.post("sync/sources/", {"url": "https://panel.provider.example/mail.json"})
    assert source.status_code == 201, source.text
    source_id = source.json()["id"]
    assert [s["id"] for s in client.get("sync/sources/").json()] == [source_id]
    assert client.get(f"sync/sources/{source_id}/").json()["waiting_for_confirmation"] is False
    assert client.post(f"sync/sources/{source_id}/confirm/").status_code == 409

    # The other customer's objects are absent, whatever the endpoint.
    for path in ("mail/account/boss@else.example/", "mail/alias/team@else.example/"):
        assert client.get(path).status_code == 404
        assert client.delete(path).status_code == 404
    assert (
        client.post(
            "mail/account/boss@else.example/set_password/", {"password": STRONG_PASSWORD}
        ).status_code
        == 404
    )
    assert client.post("mail/account/boss@else.example/enable_subaddress/").status_code == 404
    assert (
        client.put("mail/alias/team@else.example/", {"to": "user00@provider.example"}).status_code
        == 404
    )
    assert other.get(f"sync/sources/{source_id}/").status_code == 404

    # Deletes.
    assert client.delete(f"sync/sources/{source_id}/").status_code == 204
    assert client.delete(alias).status_code == 204
    assert client.delete(account).status_code == 204
    assert client.get(account).status_code == 404
    assert len(client.list_all("mail/account/")) == 24
    # The other customer's objects are untouched.
    assert [a["id"] for a in other.list_all("mail/account/")] == ["boss@else.example"]
    assert other.get("mail/alias/team@else.example/").json()["to"] == "boss@else.example"
