"""The client configuration documents, as pure functions of a `ClientProfile`.

- `autoconfig`: Thunderbird's `config-v1.1.xml` (clientConfig version 1.1), also read by
  other clients (K-9/Thunderbird for Android, Evolution, KMail).
- `autodiscover`: Outlook's POX autodiscover response (the `outlook/responseschema/2006a`
  schema), for one account.
- `mobileconfig`: an Apple configuration profile with one `com.apple.mail.managed` payload.
- `srv_records`: the RFC 6186 / RFC 8314 SRV records of a domain, as zone-file lines
  (`srv_entries`: the same records as values, which the DNS check compares with).

XML is built with `xml.etree.ElementTree` and the profile with `plistlib`, never by
concatenating strings, so no name a customer chose can change a document's structure. No
document holds a password: clients ask the user for it. Output is deterministic (stable
element order, PayloadUUIDs derived from the address), so golden files can pin it.
"""

from __future__ import annotations

import plistlib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from postmeister.domain.clientconfig.schemas import Account, ClientProfile, Protocol, Server

AUTODISCOVER_RESPONSE: Final = (
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
)
OUTLOOK_RESPONSE: Final = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)
MOBILECONFIG_MEDIA_TYPE: Final = "application/x-apple-aspen-config"
# The namespace of the profiles' PayloadUUIDs: uuid5 of it and the address is the same
# for the same address on every controller, so installing a new profile replaces the old.
_PROFILE_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:postmeister:mobileconfig")

_SOCKET_TYPE: Final = {"tls": "SSL", "starttls": "STARTTLS"}
# Outlook: <Encryption> overrides <SSL>; "SSL" is implicit TLS, "TLS" is STARTTLS.
_ENCRYPTION: Final = {"tls": "SSL", "starttls": "TLS"}
_OUTLOOK_TYPES: Final[tuple[tuple[Protocol, str], ...]] = (
    ("imap", "IMAP"),
    ("pop3", "POP3"),
    ("smtp", "SMTP"),
)
_SRV_SERVICE: Final[dict[tuple[Protocol, str], str]] = {
    ("imap", "tls"): "_imaps._tcp",
    ("imap", "starttls"): "_imap._tcp",
    ("pop3", "tls"): "_pop3s._tcp",
    ("pop3", "starttls"): "_pop3._tcp",
    ("smtp", "tls"): "_submissions._tcp",
    ("smtp", "starttls"): "_submission._tcp",
}


def _xml(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _text(parent: ET.Element, tag: str, text: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = text
    return element


def autoconfig(profile: ClientProfile) -> bytes:
    """Thunderbird's autoconfig document of the domain. It names no address: the login is
    the placeholder the client fills in (`%EMAILADDRESS%`, or for an alias domain the
    local part in the domain it aliases), so the document is the same for every mailbox."""
    root = ET.Element("clientConfig", version="1.1")
    provider = ET.SubElement(root, "emailProvider", id=profile.domain)
    _text(provider, "domain", profile.domain)
    _text(provider, "displayName", profile.display_name)
    _text(provider, "displayShortName", profile.display_name)
    if profile.login_domain == profile.domain:
        username = "%EMAILADDRESS%"
    else:
        username = f"%EMAILLOCALPART%@{profile.login_domain}"
    for server in profile.servers:
        if server.protocol == "smtp":
            element = ET.SubElement(provider, "outgoingServer", type="smtp")
        else:
            element = ET.SubElement(provider, "incomingServer", type=server.protocol)
        _text(element, "hostname", server.host)
        _text(element, "port", str(server.port))
        _text(element, "socketType", _SOCKET_TYPE[server.security])
        _text(element, "authentication", "password-cleartext")
        _text(element, "username", username)
    # Thunderbird reads incoming servers before outgoing ones; keep that order in the file.
    provider[:] = sorted(provider, key=lambda e: e.tag == "outgoingServer")
    return _xml(root)


def autodiscover(profile: ClientProfile, account: Account) -> bytes:
    """Outlook's POX autodiscover response for `account`: one Protocol per service type,
    the preferred server of each (implicit TLS when offered)."""
    # The two default namespaces are written as plain `xmlns` attributes: ElementTree
    # would otherwise invent prefixes (ns0:, ns1:), which some clients do not accept.
    root = ET.Element("Autodiscover", xmlns=AUTODISCOVER_RESPONSE)
    response = ET.SubElement(root, "Response", xmlns=OUTLOOK_RESPONSE)
    outlook = ET.SubElement(response, "Account")
    _text(outlook, "AccountType", "email")
    _text(outlook, "Action", "settings")
    for protocol, name in _OUTLOOK_TYPES:
        server = profile.preferred(protocol)
        if server is None:
            continue
        element = ET.SubElement(outlook, "Protocol")
        _text(element, "Type", name)
        _text(element, "Server", server.host)
        _text(element, "Port", str(server.port))
        _text(element, "DomainRequired", "off")
        _text(element, "LoginName", account.login)
        _text(element, "SPA", "off")
        _text(element, "SSL", "on")
        _text(element, "Encryption", _ENCRYPTION[server.security])
        _text(element, "AuthRequired", "on")
        if protocol == "smtp":
            _text(element, "UsePOPAuth", "off")
            _text(element, "SMTPLast", "off")
    return _xml(root)


def _reverse_dns(name: str) -> str:
    return ".".join(reversed(name.split(".")))


def mobileconfig(profile: ClientProfile, account: Account) -> bytes:
    """An Apple configuration profile that sets up `account` for IMAP and submission (the
    preferred server of each). Unsigned, and without a password: the device asks for it."""
    incoming = profile.preferred("imap")
    outgoing = profile.preferred("smtp")
    if incoming is None or outgoing is None:
        # `ClientSettings` refuses settings without an IMAP or a submission port.
        raise ValueError("a mobileconfig needs an IMAP and a submission server")
    profile_uuid = str(uuid.uuid5(_PROFILE_NAMESPACE, f"profile:{account.address}")).upper()
    payload_uuid = str(uuid.uuid5(_PROFILE_NAMESPACE, f"mail:{account.address}")).upper()
    identifier = f"{_reverse_dns(profile.domain)}.mail.{profile_uuid}"
    mail: dict[str, Any] = {
        "EmailAccountDescription": account.address,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": account.address,
        **_server_keys("Incoming", incoming, account),
        **_server_keys("Outgoing", outgoing, account),
        "OutgoingPasswordSameAsIncomingPassword": True,
        "PayloadDescription": f"Mail account {account.address}",
        "PayloadDisplayName": account.address,
        "PayloadIdentifier": f"{identifier}.account",
        "PayloadType": "com.apple.mail.managed",
        "PayloadUUID": payload_uuid,
        "PayloadVersion": 1,
        "PreventAppSheet": False,
        "PreventMove": False,
        "SMIMEEnabled": False,
        "allowMailDrop": False,
        "disableMailRecentsSyncing": False,
    }
    document: dict[str, Any] = {
        "PayloadContent": [mail],
        "PayloadDescription": f"Sets up the mail account {account.address}.",
        "PayloadDisplayName": f"{profile.display_name} mail ({account.address})",
        "PayloadIdentifier": identifier,
        "PayloadOrganization": profile.display_name,
        "PayloadRemovalDisallowed": False,
        "PayloadType": "Configuration",
        "PayloadUUID": profile_uuid,
        "PayloadVersion": 1,
    }
    return plistlib.dumps(document, fmt=plistlib.FMT_XML, sort_keys=True)


def _server_keys(direction: str, server: Server, account: Account) -> dict[str, Any]:
    prefix = f"{direction}MailServer"
    return {
        f"{prefix}Authentication": "EmailAuthPassword",
        f"{prefix}HostName": server.host,
        f"{prefix}PortNumber": server.port,
        # Apple's "UseSSL" on a STARTTLS port means: upgrade with STARTTLS, never send the
        # password in the clear.
        f"{prefix}UseSSL": True,
        f"{prefix}Username": account.login,
    }


@dataclass(frozen=True, slots=True)
class SrvRecord:
    """One RFC 6186 SRV record: `name` is absolute without the final dot; `target` is "."
    for a service that is not offered."""

    name: str
    priority: int
    weight: int
    port: int
    target: str

    @property
    def value(self) -> str:
        """The record's data as a zone file writes it (`0 1 993 mail.example.org.`)."""
        target = "." if self.target == "." else f"{self.target}."
        return f"{self.priority} {self.weight} {self.port} {target}"


def srv_entries(domain: str, servers: Sequence[Server]) -> list[SrvRecord]:
    """The RFC 6186 SRV records (with RFC 8314's `_submissions`) of `domain` (an A-label).
    Implicit TLS gets priority 0, STARTTLS priority 10 (RFC 8314 §5.1 prefers implicit TLS);
    a service the settings do not offer gets the target "." (RFC 6186 §3.4: not
    available)."""
    records = []
    for (protocol, security), service in _SRV_SERVICE.items():
        name = f"{service}.{domain}"
        offered = [s for s in servers if s.protocol == protocol and s.security == security]
        if offered:
            server = offered[0]
            priority = 0 if security == "tls" else 10
            records.append(SrvRecord(name, priority, 1, server.port, server.host))
        else:
            records.append(SrvRecord(name, 0, 0, 0, "."))
    return records


def srv_records(profile: ClientProfile, *, ttl: int = 3600) -> str:
    """The SRV records of `srv_entries` for the profile's domain, one zone line each."""
    lines = [
        f"{record.name}. {ttl} IN SRV {record.value}"
        for record in srv_entries(profile.domain, profile.servers)
    ]
    return "\n".join(lines) + "\n"
