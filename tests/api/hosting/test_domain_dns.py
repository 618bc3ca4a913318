"""`GET /domains/{id}/dns` on both databases against a real DNS server (NSD on loopback):
what a customer is told to publish, and how the live check judges what it published."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import DkimSettings, DnsSettings, SchedulerSettings, Settings
from postmeister.db import unit_of_work
from postmeister.domain.dkim.service import published_records
from postmeister.models import Domain
from tests.api.hosting.jsonapi import JSONAPI
from tests.support.dns_server import NsdServer, nsd
from tests.support.factories import Tenant, make_tenant, make_token


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsdServer]:
    with nsd(tmp_path_factory.mktemp("nsd")) as server:
        yield server


@pytest.fixture
def client(settings: Settings, dns_server: NsdServer) -> Iterator[TestClient]:
    checked = settings.model_copy(
        update={
            "scheduler": SchedulerSettings(enabled=False),
            "dns": DnsSettings(
                resolvers=[dns_server.address],
                timeout_seconds=2,
                dmarc_rua=["mailto:dmarc@reports.example.net"],
                mta_sts_enabled=True,
                mta_sts_id="20261201",
                tls_rpt_enabled=True,
                tls_rpt_rua=["mailto:tls@reports.example.net"],
            ),
        }
    )
    with TestClient(create_app(checked), base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture
def alice(sessions: sessionmaker[Session]) -> Tenant:
    # RSA 2048, the production default: its record is longer than one TXT string.
    return make_tenant(
        sessions, name="Alice GmbH", domain="alice.example", read_only=True, dkim=DkimSettings()
    )


@pytest.fixture
def bob(sessions: sessionmaker[Session]) -> Tenant:
    return make_tenant(sessions, name="Bob AG", domain="bob.example")


@dataclass(frozen=True)
class Dkim:
    """Alice's DKIM record as the DKIM service publishes it (its key made at domain add)."""

    name: str  # pm2026a._domainkey.alice.example
    value: str  # v=DKIM1; k=rsa; p=...

    @property
    def key(self) -> str:
        return self.value.partition("p=")[2]

    @property
    def label(self) -> str:
        return self.name.removesuffix(".alice.example")


@pytest.fixture
def dkim(alice: Tenant, sessions: sessionmaker[Session]) -> Dkim:
    with unit_of_work(sessions, write=False) as session:
        domain = session.scalars(select(Domain).where(Domain.name == "alice.example")).one()
        (record,) = published_records(session, domain)
        assert len(record.value) > 255  # more than one TXT string
        return Dkim(record.name, record.value)


def domain_id(client: TestClient, tenant: Tenant) -> str:
    response = client.get("/domains", headers={**tenant.auth, "Accept": JSONAPI})
    assert response.status_code == 200, response.text
    found: str = response.json()["data"][0]["id"]
    return found


def zone_of(client: TestClient, auth: dict[str, str], key: str) -> str:
    response = client.get(f"/domains/{key}/dns?format=zone", headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    snippet: str = response.text
    return snippet


def checked(client: TestClient, auth: dict[str, str], key: str) -> dict[str, Any]:
    response = client.get(f"/domains/{key}/dns", headers={**auth, "Accept": JSONAPI})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSONAPI
    attributes: dict[str, Any] = response.json()["data"]["attributes"]
    return attributes


def by_name(attributes: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["name"], r["type"]): r for r in attributes["records"]}


def not_ok(attributes: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {key: r for key, r in by_name(attributes).items() if r["state"] != "ok"}


def test_the_zone_snippet_once_published_checks_ok(
    client: TestClient, alice: Tenant, dns_server: NsdServer, dkim: Dkim
) -> None:
    key = domain_id(client, alice)
    snippet = zone_of(client, alice.auth, key)
    assert snippet.splitlines()[1:] == [
        "alice.example. 3600 IN MX 10 mail.example.org.",
        'alice.example. 3600 IN TXT "v=spf1 a:mail.example.org ~all"',
        # Split after 255 bytes: no character string of a TXT record is longer.
        f'{dkim.name}. 3600 IN TXT "{dkim.value[:255]}" "{dkim.value[255:]}"',
        '_dmarc.alice.example. 3600 IN TXT "v=DMARC1; p=none; '
        'rua=mailto:dmarc@reports.example.net"',
        '_mta-sts.alice.example. 3600 IN TXT "v=STSv1; id=20261201"',
        "mta-sts.alice.example. 3600 IN CNAME mail.example.org.",
        '_smtp._tls.alice.example. 3600 IN TXT "v=TLSRPTv1; rua=mailto:tls@reports.example.net"',
        "autoconfig.alice.example. 3600 IN CNAME mail.example.org.",
        "autodiscover.alice.example. 3600 IN CNAME mail.example.org.",
        "_imaps._tcp.alice.example. 3600 IN SRV 0 1 993 mail.example.org.",
        "_imap._tcp.alice.example. 3600 IN SRV 10 1 143 mail.example.org.",
        "_pop3s._tcp.alice.example. 3600 IN SRV 0 1 995 mail.example.org.",
        "_pop3._tcp.alice.example. 3600 IN SRV 10 1 110 mail.example.org.",
        "_submissions._tcp.alice.example. 3600 IN SRV 0 1 465 mail.example.org.",
        "_submission._tcp.alice.example. 3600 IN SRV 10 1 587 mail.example.org.",
    ]
    dns_server.publish("alice.example", "")  # the zone exists, with none of the records
    before = checked(client, alice.auth, key)
    assert before["ok"] is False
    assert {r["state"] for r in before["records"]} == {"missing"}

    dns_server.publish("alice.example", snippet)
    after = checked(client, alice.auth, key)  # a read-only token suffices
    assert not_ok(after) == {}
    assert after["ok"] is True
    assert len(after["records"]) == len(snippet.splitlines()) - 1 == 15
    dkim_record = by_name(after)[(dkim.name, "TXT")]
    assert dkim_record["found"] == [dkim.value]  # the strings joined again


def test_equivalent_records_count_as_published(
    client: TestClient, alice: Tenant, dns_server: NsdServer, dkim: Dkim
) -> None:
    key_text = dkim.key
    key = domain_id(client, alice)
    # Written by hand, differently from the snippet, in every way that does not matter.
    dns_server.publish(
        "alice.example",
        f"""
@ IN MX 5 MAIL.example.org.
@ IN TXT "v=spf1 include:_spf.other.example +A:Mail.Example.Org -all"
@ IN TXT "google-site-verification=abc"
{dkim.label} IN TXT "k=rsa; t=y; p={key_text[:100]}" "{key_text[100:300]}" "{key_text[300:]}"
_dmarc IN TXT "v=DMARC1;p=quarantine;pct=50;rua=mailto:DMARC@reports.example.net!10m,mailto:me@alice.example"
_mta-sts IN TXT "v=STSv1;  id=20261201"
mta-sts IN CNAME mail.example.org.
_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tls@reports.example.net,https://tls.alice.example/r"
autoconfig IN CNAME mail.example.org.
autodiscover IN A 192.0.2.25
_imaps._tcp IN SRV 5 100 993 mail.example.org.
_imap._tcp IN SRV 10 1 143 mail.example.org.
_pop3s._tcp IN SRV 0 1 995 mail.example.org.
_pop3._tcp IN SRV 10 1 110 mail.example.org.
_submissions._tcp IN SRV 0 1 465 mail.example.org.
_submission._tcp IN SRV 10 1 587 mail.example.org.
""",
    )
    # autodiscover with A records is ok only if they are those of the CNAME's target.
    dns_server.publish("example.org", "mail IN A 192.0.2.25\n")
    try:
        result = checked(client, alice.auth, key)
    finally:
        dns_server.remove("example.org")
    assert not_ok(result) == {}
    autodiscover = by_name(result)[("autodiscover.alice.example", "CNAME")]
    assert autodiscover["found"] == ["192.0.2.25"]
    assert "A/AAAA" in autodiscover["note"]


def test_a_broken_zone_names_each_wrong_or_missing_record(
    client: TestClient, alice: Tenant, dns_server: NsdServer, dkim: Dkim
) -> None:
    key = domain_id(client, alice)
    published = zone_of(client, alice.auth, key).splitlines()
    broken = [
        line
        for line in published
        if not line.startswith(("alice.example. 3600 IN MX", f"{dkim.name}.", "_dmarc."))
        and "v=spf1" not in line
        and not line.startswith("_imaps.")
    ]
    broken += [
        'alice.example. 3600 IN TXT "v=spf1 a:mail.example.org ?all"',
        "_imaps._tcp.alice.example. 3600 IN SRV 0 1 9993 mail.example.org.",
        'alice.example. 3600 IN TXT "some other text"',
    ]
    dns_server.publish("alice.example", "\n".join(broken) + "\n")
    wrong = not_ok(checked(client, alice.auth, key))
    assert set(wrong) == {
        ("alice.example", "MX"),
        ("alice.example", "TXT"),
        (dkim.name, "TXT"),
        ("_dmarc.alice.example", "TXT"),
        ("_imaps._tcp.alice.example", "SRV"),
    }
    assert wrong[("alice.example", "MX")]["state"] == "missing"
    spf = wrong[("alice.example", "TXT")]
    assert (spf["state"], spf["found"]) == ("different", ["v=spf1 a:mail.example.org ?all"])
    assert "?all is weaker than ~all" in spf["note"]
    assert wrong[(dkim.name, "TXT")]["state"] == "missing"
    assert wrong[("_dmarc.alice.example", "TXT")]["state"] == "missing"
    srv = wrong[("_imaps._tcp.alice.example", "SRV")]
    assert (srv["state"], srv["found"]) == ("different", ["0 1 9993 mail.example.org."])
    assert srv["expected"] == "0 1 993 mail.example.org."
    assert "port 993" in srv["note"]


def test_no_answer_is_unknown_never_ok(
    client: TestClient, alice: Tenant, dns_server: NsdServer
) -> None:
    key = domain_id(client, alice)
    dns_server.publish("alice.example", zone_of(client, alice.auth, key))
    dns_server.remove("alice.example")  # the server now answers REFUSED
    result = checked(client, alice.auth, key)
    assert result["ok"] is False
    assert {r["state"] for r in result["records"]} == {"unknown"}
    assert all("REFUSED" in r["note"] and r["found"] == [] for r in result["records"])


def test_another_customers_domain_is_404(
    client: TestClient,
    alice: Tenant,
    bob: Tenant,
    sessions: sessionmaker[Session],
    dns_server: NsdServer,
) -> None:
    theirs = domain_id(client, bob)
    dns_server.publish("bob.example", zone_of(client, bob.auth, theirs))
    for suffix in ("", "?format=zone"):
        attack = client.get(f"/domains/{theirs}/dns{suffix}", headers=alice.auth)
        missing = client.get(f"/domains/987654/dns{suffix}", headers=alice.auth)
        assert attack.status_code == missing.status_code == 404
        assert "bob" not in attack.text
    admin = {"Authorization": f"Bearer {make_token(sessions, admin=True)}"}
    assert checked(client, admin, theirs)["ok"] is True
    assert client.get(f"/domains/{theirs}/dns").status_code == 401


def test_an_idn_domain_is_published_in_a_labels_and_shown_as_entered(
    client: TestClient, sessions: sessionmaker[Session], dns_server: NsdServer
) -> None:
    tenant = make_tenant(sessions, name="Müller KG", domain="müller.example")
    key = domain_id(client, tenant)
    snippet = zone_of(client, tenant.auth, key)
    assert "müller" not in snippet.split("\n", 1)[1]
    assert "xn--mller-kva.example. 3600 IN MX 10 mail.example.org." in snippet
    assert "_dmarc.xn--mller-kva.example. 3600 IN TXT" in snippet
    dns_server.publish("xn--mller-kva.example", snippet)
    result = checked(client, tenant.auth, key)
    assert result["ok"] is True
    assert (result["domain"], result["ascii_domain"]) == ("müller.example", "xn--mller-kva.example")
    dmarc = by_name(result)[("_dmarc.müller.example", "TXT")]
    assert dmarc["ascii_name"] == "_dmarc.xn--mller-kva.example"


def test_the_zone_format_needs_no_json_api_accept_header_but_other_parameters_are_refused(
    client: TestClient, alice: Tenant
) -> None:
    key = domain_id(client, alice)
    plain = client.get(
        f"/domains/{key}/dns?format=zone", headers={**alice.auth, "Accept": "text/plain"}
    )
    assert plain.status_code == 200
    refused = client.get(f"/domains/{key}/dns", headers={**alice.auth, "Accept": "text/plain"})
    assert refused.status_code == 406
    unknown = client.get(f"/domains/{key}/dns?format=zone&x=1", headers=alice.auth)
    assert unknown.status_code == 400
    bad = client.get(f"/domains/{key}/dns?format=bind", headers={**alice.auth, "Accept": JSONAPI})
    assert bad.status_code == 400
