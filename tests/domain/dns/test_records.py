"""The records a domain needs, from its name and the settings (pure: no DNS, no database)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from postmeister.config import ClientSettings, DataplaneSettings, DnsSettings, Settings
from postmeister.domain.clientconfig import render
from postmeister.domain.clientconfig.schemas import ClientProfile, servers_from
from postmeister.domain.dns.rules import expected_records, shown_name


@dataclass(frozen=True)
class Key:
    name: str
    value: str


def lines(settings: Settings, domain: str = "example.com", dkim: tuple[Key, ...] = ()) -> list[str]:
    return [
        f"{r.name} {r.type} {r.value}"
        for r in expected_records(domain, settings=settings, dkim=dkim)
    ]


def test_the_default_records_name_the_data_plane_and_client_hosts() -> None:
    settings = Settings(dataplane=DataplaneSettings(hostname="mx.provider.example"))
    assert lines(settings, dkim=(Key("pm1._domainkey.example.com", "v=DKIM1; k=rsa; p=AAAA"),)) == [
        "example.com MX 10 mx.provider.example.",
        "example.com TXT v=spf1 a:mx.provider.example ~all",
        "pm1._domainkey.example.com TXT v=DKIM1; k=rsa; p=AAAA",
        "_dmarc.example.com TXT v=DMARC1; p=none",
        "autoconfig.example.com CNAME mx.provider.example.",
        "autodiscover.example.com CNAME mx.provider.example.",
        "_imaps._tcp.example.com SRV 0 1 993 mx.provider.example.",
        "_imap._tcp.example.com SRV 10 1 143 mx.provider.example.",
        "_pop3s._tcp.example.com SRV 0 1 995 mx.provider.example.",
        "_pop3._tcp.example.com SRV 10 1 110 mx.provider.example.",
        "_submissions._tcp.example.com SRV 0 1 465 mx.provider.example.",
        "_submission._tcp.example.com SRV 10 1 587 mx.provider.example.",
    ]


def test_the_settings_shape_spf_dmarc_mta_sts_tls_rpt_and_the_web_host() -> None:
    settings = Settings(
        dns=DnsSettings(
            spf_mechanisms=["include:relay.example.net"],
            spf_policy="-all",
            dmarc_policy="reject",
            dmarc_rua=["mailto:a@r.example", "mailto:b@r.example"],
            mta_sts_enabled=True,
            mta_sts_id="2026a",
            tls_rpt_enabled=True,
            tls_rpt_rua=["mailto:tls@r.example"],
            web_host="Web.Provider.Example",
            mx_preference=5,
            ttl=600,
        )
    )
    found = lines(settings)
    assert found[:7] == [
        "example.com MX 5 mail.example.org.",
        "example.com TXT v=spf1 a:mail.example.org include:relay.example.net -all",
        "_dmarc.example.com TXT v=DMARC1; p=reject; rua=mailto:a@r.example,mailto:b@r.example",
        "_mta-sts.example.com TXT v=STSv1; id=2026a",
        "mta-sts.example.com CNAME web.provider.example.",
        "_smtp._tls.example.com TXT v=TLSRPTv1; rua=mailto:tls@r.example",
        "autoconfig.example.com CNAME web.provider.example.",
    ]


def test_the_srv_records_are_the_client_documents_own() -> None:
    client = ClientSettings(
        host="imap.provider.example", pop3_tls_port=None, pop3_starttls_port=None
    )
    settings = Settings(client=client)
    srv = [r for r in expected_records("example.com", settings=settings) if r.type == "SRV"]
    profile = ClientProfile(
        "example.com", "x", "example.com", servers_from(client, "imap.provider.example")
    )
    assert "\n".join(f"{r.name}. 3600 IN SRV {r.value}" for r in srv) + "\n" == render.srv_records(
        profile
    )
    assert [r.value for r in srv if r.name.startswith("_pop3")] == ["0 0 0 .", "0 0 0 ."]


def test_names_are_shown_as_entered() -> None:
    assert (
        shown_name(
            "_dmarc.xn--mller-kva.de", ascii_domain="xn--mller-kva.de", shown_domain="müller.de"
        )
        == "_dmarc.müller.de"
    )
    assert (
        shown_name("xn--mller-kva.de", ascii_domain="xn--mller-kva.de", shown_domain="müller.de")
        == "müller.de"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"resolvers": ["dns.example"]}, "not an IP address"),
        ({"resolvers": ["127.0.0.1:0"]}, "port"),
        ({"resolvers": ["[::1]x"]}, r"\[address\]:port"),
        ({"tls_rpt_enabled": True}, "tls_rpt_rua"),
        ({"mta_sts_id": "has space"}, "mta_sts_id"),
    ],
)
def test_bad_dns_settings_are_refused(value: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DnsSettings.model_validate(value)


def test_resolvers_come_as_a_list_or_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTMEISTER_DNS__RESOLVERS", "127.0.0.1:5353, [::1]:53, 192.0.2.1")
    assert Settings().dns.resolvers == ["127.0.0.1:5353", "[::1]:53", "192.0.2.1"]
    monkeypatch.setenv("POSTMEISTER_DNS__RESOLVERS", '["127.0.0.1"]')
    assert Settings().dns.resolvers == ["127.0.0.1"]
