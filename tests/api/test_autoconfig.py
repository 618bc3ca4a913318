"""Client autoconfiguration over HTTP (issue 13, item 5): Thunderbird's autoconfig, Outlook's
autodiscover and the Apple profile, for hosted domains only, without credentials, and the
same for an existing and a missing mailbox."""

from __future__ import annotations

import plistlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.api.clientconfig import MAX_AUTODISCOVER_BODY
from postmeister.config import ClientSettings, Settings
from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.domains.service import DomainChanges, get_domain, update_domain
from tests.support.factories import STRONG_PASSWORD, Tenant, add_domain_to

AUTODISCOVER_NS = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}"
OUTLOOK_NS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
AUTOCONFIG_PATHS = ("/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml")
AUTODISCOVER_PATHS = ("/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml")

CUSTOM = ClientSettings(
    host="imap.provider.example",
    imap_tls_port=10993,
    imap_starttls_port=None,
    pop3_tls_port=None,
    pop3_starttls_port=10110,
    submission_tls_port=None,
    submission_starttls_port=10587,
    display_name="Provider Mail",
)


def pox_request(address: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<Autodiscover xmlns="{REQUEST_NS}">'
        f"<Request><EMailAddress>{address}</EMailAddress><AcceptableResponseSchema>"
        "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
        "</AcceptableResponseSchema></Request></Autodiscover>"
    ).encode()


@pytest.fixture
def custom_client(settings: Settings) -> Iterator[TestClient]:
    custom = settings.model_copy(update={"client": CUSTOM})
    with TestClient(create_app(custom), base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture
def mailbox(client: TestClient, alice: Tenant) -> str:
    response = client.post(
        "/mail/account/",
        json={"name": "info", "domain": alice.domain, "password": STRONG_PASSWORD},
        headers=alice.auth,
    )
    assert response.status_code == 201, response.text
    return f"info@{alice.domain}"


# ---------------------------------------------------------------- readers of each document


def thunderbird(body: bytes) -> dict[str, Any]:
    root = ET.fromstring(body)  # noqa: S314 (the controller's own answer, under test)
    assert root.tag == "clientConfig"
    assert root.get("version") == "1.1"
    provider = root.find("emailProvider")
    assert provider is not None

    def server(element: ET.Element) -> tuple[str | None, ...]:
        return (
            element.get("type"),
            element.findtext("hostname"),
            element.findtext("port"),
            element.findtext("socketType"),
            element.findtext("authentication"),
            element.findtext("username"),
        )

    return {
        "id": provider.get("id"),
        "domains": [d.text for d in provider.findall("domain")],
        "display_name": provider.findtext("displayName"),
        "incoming": [server(e) for e in provider.findall("incomingServer")],
        "outgoing": [server(e) for e in provider.findall("outgoingServer")],
    }


def outlook(body: bytes) -> dict[str, dict[str, str | None]]:
    root = ET.fromstring(body)  # noqa: S314 (the controller's own answer, under test)
    assert root.tag == AUTODISCOVER_NS + "Autodiscover"
    account = root.find(f"{OUTLOOK_NS}Response/{OUTLOOK_NS}Account")
    assert account is not None
    assert account.findtext(OUTLOOK_NS + "AccountType") == "email"
    assert account.findtext(OUTLOOK_NS + "Action") == "settings"
    protocols: dict[str, dict[str, str | None]] = {}
    for protocol in account.findall(OUTLOOK_NS + "Protocol"):
        fields = {child.tag.removeprefix(OUTLOOK_NS): child.text for child in protocol}
        protocols[str(fields.pop("Type"))] = fields
    return protocols


def apple(body: bytes) -> dict[str, Any]:
    document: dict[str, Any] = plistlib.loads(body)
    assert document["PayloadType"] == "Configuration"
    (payload,) = document["PayloadContent"]
    assert payload["PayloadType"] == "com.apple.mail.managed"
    mail: dict[str, Any] = payload
    return mail


# ---------------------------------------------------------------- the documents


@pytest.mark.parametrize("path", AUTOCONFIG_PATHS)
def test_autoconfig_names_the_default_servers(
    client: TestClient, alice: Tenant, mailbox: str, path: str
) -> None:
    response = client.get(path, params={"emailaddress": mailbox})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    doc = thunderbird(response.content)
    assert doc["id"] == "alice.example"
    assert doc["domains"] == ["alice.example"]
    assert doc["display_name"] == "alice.example"
    auth = ("password-cleartext", "%EMAILADDRESS%")
    host = "mail.example.org"  # dataplane.hostname, the default client host
    assert doc["incoming"] == [
        ("imap", host, "993", "SSL", *auth),
        ("imap", host, "143", "STARTTLS", *auth),
        ("pop3", host, "995", "SSL", *auth),
        ("pop3", host, "110", "STARTTLS", *auth),
    ]
    assert doc["outgoing"] == [
        ("smtp", host, "465", "SSL", *auth),
        ("smtp", host, "587", "STARTTLS", *auth),
    ]


def test_every_document_follows_the_client_settings(
    custom_client: TestClient, alice: Tenant
) -> None:
    address = "info@alice.example"
    host = "imap.provider.example"
    doc = thunderbird(
        custom_client.get(AUTOCONFIG_PATHS[0], params={"emailaddress": address}).content
    )
    assert doc["display_name"] == "Provider Mail"
    auth = ("password-cleartext", "%EMAILADDRESS%")
    assert doc["incoming"] == [
        ("imap", host, "10993", "SSL", *auth),
        ("pop3", host, "10110", "STARTTLS", *auth),
    ]
    assert doc["outgoing"] == [("smtp", host, "10587", "STARTTLS", *auth)]

    response = custom_client.post(AUTODISCOVER_PATHS[0], content=pox_request(address))
    assert response.status_code == 200, response.text
    common = {"DomainRequired": "off", "LoginName": address, "SPA": "off", "SSL": "on"}
    assert outlook(response.content) == {
        "IMAP": {
            **common,
            "Server": host,
            "Port": "10993",
            "Encryption": "SSL",
            "AuthRequired": "on",
        },
        "POP3": {
            **common,
            "Server": host,
            "Port": "10110",
            "Encryption": "TLS",
            "AuthRequired": "on",
        },
        "SMTP": {
            **common,
            "Server": host,
            "Port": "10587",
            "Encryption": "TLS",
            "AuthRequired": "on",
            "UsePOPAuth": "off",
            "SMTPLast": "off",
        },
    }

    payload = apple(custom_client.get("/mobileconfig", params={"emailaddress": address}).content)
    assert payload["IncomingMailServerHostName"] == host
    assert payload["IncomingMailServerPortNumber"] == 10993
    assert payload["OutgoingMailServerHostName"] == host
    assert payload["OutgoingMailServerPortNumber"] == 10587


@pytest.mark.parametrize("path", AUTODISCOVER_PATHS)
def test_autodiscover_names_the_default_servers(
    client: TestClient, alice: Tenant, mailbox: str, path: str
) -> None:
    response = client.post(
        path, content=pox_request("Info@Alice.Example"), headers={"Content-Type": "text/xml"}
    )
    assert response.status_code == 200, response.text
    protocols = outlook(response.content)
    assert {name: (p["Server"], p["Port"], p["Encryption"]) for name, p in protocols.items()} == {
        "IMAP": ("mail.example.org", "993", "SSL"),
        "POP3": ("mail.example.org", "995", "SSL"),
        "SMTP": ("mail.example.org", "465", "SSL"),
    }
    for fields in protocols.values():
        assert fields["LoginName"] == mailbox
        assert fields["SPA"] == "off"
        assert fields["AuthRequired"] == "on"


def test_mobileconfig_is_an_attachment_without_a_secret(
    client: TestClient, alice: Tenant, mailbox: str
) -> None:
    response = client.get("/mobileconfig", params={"emailaddress": mailbox})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-apple-aspen-config"
    assert response.headers["content-disposition"] == (
        'attachment; filename="alice.example.mobileconfig"'
    )
    payload = apple(response.content)
    assert payload["EmailAccountType"] == "EmailTypeIMAP"
    assert payload["EmailAddress"] == mailbox
    for direction in ("Incoming", "Outgoing"):
        assert payload[f"{direction}MailServerUsername"] == mailbox
        assert payload[f"{direction}MailServerAuthentication"] == "EmailAuthPassword"
        assert payload[f"{direction}MailServerUseSSL"] is True
        assert payload[f"{direction}MailServerHostName"] == "mail.example.org"
        assert f"{direction}Password" not in payload
    assert (payload["IncomingMailServerPortNumber"], payload["OutgoingMailServerPortNumber"]) == (
        993,
        465,
    )
    assert STRONG_PASSWORD.encode() not in response.content
    assert b"Password</key>" not in response.content.replace(
        b"OutgoingPasswordSameAsIncomingPassword</key>", b""
    )
    again = client.get("/mobileconfig", params={"emailaddress": mailbox})
    assert again.content == response.content, "stable PayloadUUIDs"


def test_the_host_form_takes_the_domain_from_the_host_header(
    client: TestClient, alice: Tenant
) -> None:
    for host in ("autoconfig.alice.example", "AUTOCONFIG.alice.example:443", "alice.example"):
        response = client.get("/mail/config-v1.1.xml", headers={"Host": host})
        assert response.status_code == 200, (host, response.text)
        assert thunderbird(response.content)["id"] == "alice.example"
    response = client.get("/mail/config-v1.1.xml", headers={"Host": "autoconfig.other.example"})
    assert response.status_code == 404, response.text


def test_an_idn_domain_is_found_in_either_spelling(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    add_domain_to(sessions, alice, "straße.example")
    for address in (
        "info@straße.example",
        "info@STRAßE.example",
        "info@xn--strae-oqa.example",
    ):
        response = client.get(AUTOCONFIG_PATHS[0], params={"emailaddress": address})
        assert response.status_code == 200, (address, response.text)
        doc = thunderbird(response.content)
        assert doc["id"] == "xn--strae-oqa.example"
        assert doc["display_name"] == "straße.example"
    # IDNA 2008: ß is not ss; strasse.example is another (unhosted) domain.
    response = client.get(AUTOCONFIG_PATHS[0], params={"emailaddress": "info@strasse.example"})
    assert response.status_code == 404
    response = client.post(AUTODISCOVER_PATHS[0], content=pox_request("info@straße.example"))
    assert response.status_code == 200, response.text
    assert outlook(response.content)["IMAP"]["LoginName"] == "info@xn--strae-oqa.example"
    response = client.get(
        "/mail/config-v1.1.xml", headers={"Host": "autoconfig.xn--strae-oqa.example"}
    )
    assert response.status_code == 200, response.text


def test_an_alias_domain_gets_logins_in_the_domain_it_aliases(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    add_domain_to(sessions, alice, "alice-alias.example")
    with unit_of_work(sessions) as session:
        actor = Actor.system()
        alias = get_domain(session, actor, "alice-alias.example")
        update_domain(session, actor, alias, DomainChanges(alias_of="alice.example"))
    doc = thunderbird(
        client.get(AUTOCONFIG_PATHS[0], params={"emailaddress": "info@alice-alias.example"}).content
    )
    assert doc["id"] == "alice-alias.example"
    assert {server[5] for server in doc["incoming"] + doc["outgoing"]} == {
        "%EMAILLOCALPART%@alice.example"
    }
    protocols = outlook(
        client.post(AUTODISCOVER_PATHS[0], content=pox_request("info@alice-alias.example")).content
    )
    assert {p["LoginName"] for p in protocols.values()} == {"info@alice.example"}
    payload = apple(
        client.get("/mobileconfig", params={"emailaddress": "info@alice-alias.example"}).content
    )
    assert payload["EmailAddress"] == "info@alice-alias.example"
    assert payload["IncomingMailServerUsername"] == "info@alice.example"


# ---------------------------------------------------------------- who gets an answer


def _every_route(client: TestClient, address: str) -> list[tuple[int, bytes]]:
    answers = [client.get(path, params={"emailaddress": address}) for path in AUTOCONFIG_PATHS]
    answers += [client.post(path, content=pox_request(address)) for path in AUTODISCOVER_PATHS]
    answers.append(client.get("/mobileconfig", params={"emailaddress": address}))
    return [(r.status_code, r.content) for r in answers]


def test_an_unhosted_domain_is_a_404_on_every_route(client: TestClient, alice: Tenant) -> None:
    for status, body in _every_route(client, "info@unhosted.example"):
        assert status == 404, body
        assert b"unhosted.example" in body


def test_an_existing_and_a_missing_mailbox_get_the_same_answer(
    client: TestClient, alice: Tenant, mailbox: str
) -> None:
    existing = _every_route(client, mailbox)
    missing = _every_route(client, "nobody@alice.example")
    assert [status for status, _ in existing] == [200] * 5
    assert [(s, b.replace(b"nobody@", b"info@")) for s, b in missing[:4]] == existing[:4]
    # The profile's UUIDs derive from the address; everything else is the same.
    assert apple(missing[4][1])["EmailAddress"] == "nobody@alice.example"
    assert apple(missing[4][1]).keys() == apple(existing[4][1]).keys()


def test_no_credentials_are_needed_and_a_token_changes_nothing(
    client: TestClient, alice: Tenant, mailbox: str
) -> None:
    anonymous = client.get("/mobileconfig", params={"emailaddress": mailbox})
    with_token = client.get("/mobileconfig", params={"emailaddress": mailbox}, headers=alice.auth)
    assert anonymous.status_code == with_token.status_code == 200
    assert anonymous.content == with_token.content


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "address", ["", "no-at-sign", "two@@alice.example", "@alice.example", "info@", "a b@x.example"]
)
def test_a_malformed_address_is_a_422(client: TestClient, alice: Tenant, address: str) -> None:
    for status, body in _every_route(client, address):
        assert status in (400, 422), body
        assert b"Traceback" not in body


def test_a_missing_address_is_a_422(client: TestClient) -> None:
    response = client.get("/mobileconfig")
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "emailaddress"
    response = client.get(AUTOCONFIG_PATHS[0], headers={"Host": "192.0.2.1"})
    assert response.status_code in (404, 422), response.text


BAD_BODIES = {
    "empty": b"",
    "not XML": b"{EMailAddress: info@alice.example}",
    "truncated": pox_request("info@alice.example")[:-20],
    "no address": f'<Autodiscover xmlns="{REQUEST_NS}"><Request/></Autodiscover>'.encode(),
    "two addresses": (
        b"<Autodiscover><Request><EMailAddress>info@alice.example</EMailAddress>"
        b"<EMailAddress>x@alice.example</EMailAddress></Request></Autodiscover>"
    ),
    "a DTD": (
        b'<?xml version="1.0"?><!DOCTYPE Autodiscover SYSTEM "http://attacker.example/x.dtd">'
        b"<Autodiscover><Request><EMailAddress>info@alice.example</EMailAddress>"
        b"</Request></Autodiscover>"
    ),
    "an internal entity": (
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "info@alice.example">]>'
        b"<Autodiscover><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>"
    ),
    "billion laughs": (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY l0 "ha">'
        + b"".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">'.encode() for i in range(1, 10))
        + b"]><Autodiscover><Request><EMailAddress>&l9;</EMailAddress></Request></Autodiscover>"
    ),
    "an external entity": (
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>"
    ),
    "an undeclared entity": (
        b"<Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>"
    ),
    "another response schema": pox_request("info@alice.example").replace(
        b"outlook/responseschema/2006a", b"mobilesync/responseschema/2006"
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_a_bad_autodiscover_body_is_a_400(client: TestClient, alice: Tenant, name: str) -> None:
    for path in AUTODISCOVER_PATHS:
        response = client.post(path, content=BAD_BODIES[name])
        assert response.status_code == 400, (name, response.text)
        problem = response.json()
        assert problem["type"] == "urn:postmeister:problem:malformed-body", name
        assert "root:" not in response.text  # nothing of /etc/passwd


def test_an_oversized_autodiscover_body_is_a_413(client: TestClient, alice: Tenant) -> None:
    padding = b" " * MAX_AUTODISCOVER_BODY
    body = pox_request("info@alice.example").replace(b"<Request>", b"<Request>" + padding)
    response = client.post(AUTODISCOVER_PATHS[0], content=body)
    assert response.status_code == 413, response.text
    # Without a Content-Length too (read as a stream).
    response = client.post(AUTODISCOVER_PATHS[0], content=iter([body[:9000], body[9000:]]))
    assert response.status_code == 413, response.text


def test_plain_http_is_refused(settings: Settings, alice: Tenant) -> None:
    """Like the API: a document from a plain-HTTP exchange could send a client's password
    to another server; the controller serves them over HTTPS only."""
    with TestClient(create_app(settings), base_url="http://testserver") as plain:
        response = plain.get(AUTOCONFIG_PATHS[0], params={"emailaddress": "info@alice.example"})
    assert response.status_code == 403
