"""What a mail client is told: the servers of a hosted domain and the account to set up.

Built from `ClientSettings` only (`servers_from`), so that every document and the README's
SRV records name the same hosts and ports. Plain values, no database: the renderers in
`render.py` take these and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from postmeister.config import ClientSettings

Protocol = Literal["imap", "pop3", "smtp"]
# "tls": implicit TLS from the first byte (993, 995, 465); "starttls": the plain port,
# where the client must upgrade with STARTTLS before it logs in (143, 110, 587).
Security = Literal["tls", "starttls"]


@dataclass(frozen=True, slots=True)
class Server:
    protocol: Protocol
    host: str
    port: int
    security: Security


@dataclass(frozen=True, slots=True)
class Account:
    """One mailbox as a client sets it up: the address it was asked about and the login
    name the data plane accepts for it (the address itself, or for an address in an alias
    domain the same local part in the domain it aliases: Dovecot's passdb knows only the
    mailbox's own address)."""

    address: str
    login: str


@dataclass(frozen=True, slots=True)
class ClientProfile:
    """The client configuration of one hosted domain.

    `domain` and `login_domain` are A-labels; `login_domain` differs from `domain` only for
    an alias domain. `servers` is in order of preference, implicit TLS before STARTTLS."""

    domain: str
    display_name: str
    login_domain: str
    servers: tuple[Server, ...]

    def of(self, protocol: Protocol) -> tuple[Server, ...]:
        return tuple(server for server in self.servers if server.protocol == protocol)

    def preferred(self, protocol: Protocol) -> Server | None:
        """The first server of that protocol (implicit TLS when offered), or None."""
        servers = self.of(protocol)
        return servers[0] if servers else None

    def account(self, local_part: str) -> Account:
        """The account of `local_part` (canonical, lowercase) in this domain."""
        return Account(f"{local_part}@{self.domain}", f"{local_part}@{self.login_domain}")


def servers_from(settings: ClientSettings, host: str) -> tuple[Server, ...]:
    """Every service the settings offer, in order of preference, each on `host`."""
    offered: list[tuple[Protocol, int | None, Security]] = [
        ("imap", settings.imap_tls_port, "tls"),
        ("imap", settings.imap_starttls_port, "starttls"),
        ("pop3", settings.pop3_tls_port, "tls"),
        ("pop3", settings.pop3_starttls_port, "starttls"),
        ("smtp", settings.submission_tls_port, "tls"),
        ("smtp", settings.submission_starttls_port, "starttls"),
    ]
    return tuple(
        Server(protocol, host, port, security)
        for protocol, port, security in offered
        if port is not None
    )
