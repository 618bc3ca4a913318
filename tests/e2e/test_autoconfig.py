"""The servers the autoconfiguration documents name answer with the protocol they say
(issue 13, "Done when": "names the ports that actually answer").

The private stack listens on random loopback ports (IMAP, POP3 and submission, each with
STARTTLS and implicit TLS), so `ClientSettings` is set to exactly those; the documents are then
fetched from the controller and every server they name is driven as a mail program would:
the greeting, the TLS the document promises, AUTH advertised only after it, and a login
with the username the document names (`%EMAILADDRESS%` filled in) and the password.
"""

from __future__ import annotations

import imaplib
import plistlib
import poplib
import smtplib
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from postmeister.api.app import create_app
from postmeister.config import ClientSettings, SchedulerSettings
from tests.e2e.conftest import Account, Stack
from tests.e2e.mail import HOST, TLS

pytestmark = pytest.mark.e2e


def stack_client_settings(stack: Stack) -> ClientSettings:
    ports = stack.ports
    return ClientSettings(
        host=HOST,
        imap_tls_port=ports.get("imaps"),
        imap_starttls_port=ports["imap"],
        pop3_tls_port=ports.get("pop3s"),
        pop3_starttls_port=ports.get("pop3"),
        submission_tls_port=ports.get("submissions"),
        submission_starttls_port=ports["submission"],
    )


@pytest.fixture
def autoconfig_api(stack: Stack) -> Iterator[TestClient]:
    settings = stack.settings.model_copy(
        update={
            "client": stack_client_settings(stack),
            "scheduler": SchedulerSettings(enabled=False),
        }
    )
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield client


def imap_answers(port: int, socket_type: str, account: Account) -> None:
    imap: imaplib.IMAP4
    if socket_type == "SSL":
        imap = imaplib.IMAP4_SSL(HOST, port, ssl_context=TLS, timeout=15)
    else:
        imap = imaplib.IMAP4(HOST, port, timeout=15)
        assert "STARTTLS" in imap.capabilities
        imap.starttls(ssl_context=TLS)
    with imap:
        assert imap.welcome.startswith(b"* OK")
        assert imap.login(account.address, account.password)[0] == "OK"


def pop3_answers(port: int, socket_type: str, account: Account) -> None:
    pop: poplib.POP3
    if socket_type == "SSL":
        pop = poplib.POP3_SSL(HOST, port, context=TLS, timeout=15)
    else:
        pop = poplib.POP3(HOST, port, timeout=15)
        pop.stls(context=TLS)
    try:
        assert pop.getwelcome().startswith(b"+OK")
        pop.user(account.address)
        assert pop.pass_(account.password).startswith(b"+OK")
    finally:
        pop.quit()


def smtp_answers(port: int, socket_type: str, account: Account) -> None:
    smtp: smtplib.SMTP
    if socket_type == "SSL":
        smtp = smtplib.SMTP_SSL(HOST, port, context=TLS, timeout=15)
        smtp.ehlo("laptop.example")
    else:
        smtp = smtplib.SMTP(HOST, port, timeout=15)
        smtp.ehlo("laptop.example")
        assert smtp.has_extn("starttls")
        # Before TLS no password may be asked for.
        assert not smtp.has_extn("auth")
        smtp.starttls(context=TLS)
        smtp.ehlo("laptop.example")
    with smtp:
        assert smtp.has_extn("auth")
        smtp.user, smtp.password = account.address, account.password
        assert smtp.auth("PLAIN", smtp.auth_plain)[0] == 235


def test_every_server_the_autoconfig_names_answers_as_it_says(
    stack: Stack, autoconfig_api: TestClient
) -> None:
    account = stack.create_account()
    response = autoconfig_api.get(
        "/.well-known/autoconfig/mail/config-v1.1.xml", params={"emailaddress": account.address}
    )
    assert response.status_code == 200, response.text
    provider = ET.fromstring(response.content).find("emailProvider")  # noqa: S314 (ours)
    assert provider is not None
    servers = provider.findall("incomingServer") + provider.findall("outgoingServer")
    named: dict[tuple[str | None, int], str] = {}
    for server in servers:
        kind = server.get("type")
        port = int(server.findtext("port") or 0)
        socket_type = server.findtext("socketType") or ""
        assert server.findtext("hostname") == HOST
        assert server.findtext("authentication") == "password-cleartext"
        assert server.findtext("username") == "%EMAILADDRESS%"
        {"imap": imap_answers, "pop3": pop3_answers, "smtp": smtp_answers}[kind or ""](
            port, socket_type, account
        )
        named[kind, port] = socket_type
    assert ("imap", stack.ports["imap"]) in named
    assert ("smtp", stack.ports["submission"]) in named

    # The Apple profile and Outlook's answer name servers from the same set.
    payload = plistlib.loads(
        autoconfig_api.get("/mobileconfig", params={"emailaddress": account.address}).content
    )["PayloadContent"][0]
    assert ("imap", payload["IncomingMailServerPortNumber"]) in named
    assert ("smtp", payload["OutgoingMailServerPortNumber"]) in named
    assert payload["IncomingMailServerUsername"] == account.address
    body = (
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/'
        f'requestschema/2006"><Request><EMailAddress>{account.address}</EMailAddress>'
        "</Request></Autodiscover>"
    )
    pox = autoconfig_api.post("/autodiscover/autodiscover.xml", content=body.encode())
    assert pox.status_code == 200, pox.text
    ns = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
    for protocol in ET.fromstring(pox.content).iter(ns + "Protocol"):  # noqa: S314 (ours)
        kind = {"IMAP": "imap", "POP3": "pop3", "SMTP": "smtp"}[
            protocol.findtext(ns + "Type") or ""
        ]
        assert (kind, int(protocol.findtext(ns + "Port") or 0)) in named
        assert protocol.findtext(ns + "LoginName") == account.address
