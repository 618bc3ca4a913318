"""The DNS records a hosted domain needs, as pure values of its name and the settings.

Every host name and port comes from the settings that the data plane and the client
documents use too (`DataplaneSettings.hostname` for MX and SPF, `ClientSettings` through
`clientconfig.render.srv_entries` for the SRV records), so what a customer is told to publish
cannot disagree with what the servers and the autoconfiguration documents say.

Names are A-labels, absolute, without the final dot; `shown_name` turns one back into the
domain as entered, as the API shows domains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from postmeister.config import Settings
from postmeister.domain.clientconfig.render import srv_entries
from postmeister.domain.clientconfig.schemas import servers_from
from postmeister.domain.dns.notes import Note, note

RecordType = Literal["MX", "TXT", "CNAME", "SRV"]
Purpose = Literal[
    "mx", "spf", "dkim", "dmarc", "mta-sts", "mta-sts-host", "tls-rpt", "autoconfig", "srv"
]
PURPOSES: Final[tuple[Purpose, ...]] = (
    "mx", "spf", "dkim", "dmarc", "mta-sts", "mta-sts-host", "tls-rpt", "autoconfig", "srv"
)  # fmt: skip


class DkimRecord(Protocol):
    """One published DKIM key as the DKIM service gives it: `name` is
    `<selector>._domainkey.<domain>`, `value` the TXT data (`v=DKIM1; k=rsa; p=...`)."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ExpectedRecord:
    """One record the domain needs. `value` is in presentation form: MX `10 host.`, CNAME
    `host.`, SRV `0 1 993 host.`, TXT the text itself (unquoted, not split)."""

    purpose: Purpose
    name: str
    type: RecordType
    value: str
    about: Note  # why the domain needs it

    @property
    def note(self) -> str:
        return self.about.english()


def _host(name: str) -> str:
    """A host name from the settings as an absolute A-label (`mail.example.org.`)."""
    labels = name.strip().rstrip(".").lower().split(".")
    return ".".join(label.encode("idna").decode("ascii") for label in labels) + "."


def ascii_name(name: str) -> str:
    """A record name (which may hold `_` labels) as A-labels, without the final dot."""
    return _host(name).rstrip(".")


def spf_value(settings: Settings) -> str:
    terms = ["v=spf1", f"a:{_host(settings.dataplane.hostname).rstrip('.')}"]
    terms.extend(settings.dns.spf_mechanisms)
    terms.append(settings.dns.spf_policy)
    return " ".join(terms)


def dmarc_value(settings: Settings) -> str:
    tags = ["v=DMARC1", f"p={settings.dns.dmarc_policy}"]
    if settings.dns.dmarc_rua:
        tags.append("rua=" + ",".join(settings.dns.dmarc_rua))
    return "; ".join(tags)


def expected_records(
    domain: str, *, settings: Settings, dkim: Sequence[DkimRecord] = ()
) -> list[ExpectedRecord]:
    """Every record `domain` (an A-label) needs, in the order a customer best reads them:
    mail routing, sender authentication, transport security, client configuration."""
    dns = settings.dns
    mail_host = _host(settings.dataplane.hostname)
    web_host = _host(dns.web_host or settings.client_host)
    records = [
        ExpectedRecord(
            "mx",
            domain,
            "MX",
            f"{dns.mx_preference} {mail_host}",
            note("about.mx"),
        ),
        ExpectedRecord(
            "spf", domain, "TXT", spf_value(settings), note("about.spf")
        ),
    ]
    records.extend(
        ExpectedRecord(
            "dkim",
            ascii_name(key.name),
            "TXT",
            key.value,
            note("about.dkim"),
        )
        for key in dkim
    )
    records.append(
        ExpectedRecord(
            "dmarc",
            f"_dmarc.{domain}",
            "TXT",
            dmarc_value(settings),
            note("about.dmarc"),
        )
    )
    if dns.mta_sts_enabled:
        records.append(
            ExpectedRecord(
                "mta-sts",
                f"_mta-sts.{domain}",
                "TXT",
                f"v=STSv1; id={dns.mta_sts_id}",
                note("about.mta-sts"),
            )
        )
        records.append(
            ExpectedRecord(
                "mta-sts-host",
                f"mta-sts.{domain}",
                "CNAME",
                web_host,
                note("about.mta-sts-host"),
            )
        )
    if dns.tls_rpt_enabled:
        records.append(
            ExpectedRecord(
                "tls-rpt",
                f"_smtp._tls.{domain}",
                "TXT",
                "v=TLSRPTv1; rua=" + ",".join(dns.tls_rpt_rua),
                note("about.tls-rpt"),
            )
        )
    for prefix, client in (("autoconfig", "Thunderbird"), ("autodiscover", "Outlook")):
        records.append(
            ExpectedRecord(
                "autoconfig",
                f"{prefix}.{domain}",
                "CNAME",
                web_host,
                note("about.autoconfig", client=client),
            )
        )
    servers = servers_from(settings.client, ascii_name(settings.client_host))
    for srv in srv_entries(domain, servers):
        offered = srv.target != "."
        records.append(
            ExpectedRecord(
                "srv",
                srv.name,
                "SRV",
                srv.value,
                note("about.srv" if offered else "about.srv-none"),
            )
        )
    return records


def shown_name(name: str, *, ascii_domain: str, shown_domain: str) -> str:
    """`name` (under `ascii_domain`) with the domain as entered (`_dmarc.müller.de`)."""
    if name == ascii_domain:
        return shown_domain
    if name.endswith("." + ascii_domain):
        return name[: -len(ascii_domain)] + shown_domain
    return name
