"""ARC sealing of forwarded mail: which recipient's mail is sealed, and with which key.

A hosted forward (or catch-all) that sends mail on to a domain not hosted here breaks the
sender's SPF and often its DKIM at the next receiver. An ARC set (RFC 8617) records what
this server saw when the mail came in, signed with the forwarding domain's key, so that
receiver can trust the forward. rspamd's `arc` module does the signing; the antispam milter
passes it the key per message (rspamd's HTTP headers `PerformDkimSign`, `DkimDomain`,
`DkimSelector`, `DkimPrivateKey`, read because the rendered `arc.conf` sets
`use_http_headers`), so keys never become files on a mail node: like OpenDKIM, rspamd gets
them from the contract view `dataplane_v1_dkim_rsa_keys` (ARC knows only RSA).

The rule, in one place:
- Only mail received on the SMTP port from outside reaches the antispam milter; submissions
  never do, so mail a hosted mailbox sends is signed by DKIM alone.
- A recipient is sealed for when Postfix's alias resolution (the same contract statements
  Postfix's `virtual_alias_maps` asks, followed to the end like Postfix does) reaches at
  least one target whose domain is not hosted here, and the recipient's own domain has an
  active RSA key: d= is that forwarding domain. Mail that stays here is not sealed.
- One seal per message: a recipient whose seal would name another domain than the
  transaction's is deferred like a recipient of another spam policy (see `antispam`).
- Only a message delivered unchanged is sealed: a message marked as (likely) spam is not
  vouched for, and a rewritten Subject would break the seal's signature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

# The ARC headers rspamd returns, in the order RFC 8617 5.1 adds them (each on top).
ARC_HEADERS: Final = ("ARC-Authentication-Results", "ARC-Message-Signature", "ARC-Seal")
# Postfix stops after 1000 expansions; a forward chain of hosted addresses this deep is a
# loop in all but name, and its mail does not leave either.
MAX_DEPTH: Final = 20


@dataclass(frozen=True)
class Seal:
    """The key rspamd seals with: d=`domain`, s=`selector`; `private_key` as rspamd reads
    it from an HTTP header (the PEM body on one line, no armour)."""

    domain: str
    selector: str
    private_key: str = field(repr=False)  # never in a log line or a traceback's locals

    def request_headers(self) -> list[tuple[str, str]]:
        return [
            ("PerformDkimSign", "yes"),
            ("DkimDomain", self.domain),
            ("DkimSelector", self.selector),
            ("DkimPrivateKey", self.private_key),
        ]


class SealLookup(Protocol):
    def targets_of(self, address: str) -> list[str]:
        """Where Postfix's alias maps send `address` in one step ([] when nowhere)."""
        ...

    def is_hosted(self, domain: str) -> bool: ...

    def rsa_key_of(self, domain: str) -> tuple[str, str] | None:
        """(selector, PEM private key) of the domain's active RSA key, None without one."""
        ...


def leaves_here(
    address: str, targets_of: Callable[[str], list[str]], is_hosted: Callable[[str], bool]
) -> bool:
    """Whether mail to the hosted `address` reaches a target outside the hosted domains.

    An address that maps to itself (a mailbox keeping a copy) or to nothing ends there, as
    in Postfix."""
    seen = {address}
    current = [address]
    for _ in range(MAX_DEPTH):
        following: list[str] = []
        for name in current:
            for target in targets_of(name):
                if not is_hosted(target.rpartition("@")[2]):
                    return True
                if target not in seen:
                    seen.add(target)
                    following.append(target)
        if not following:
            return False
        current = following
    return False


def rspamd_key(pem: str) -> str:
    """The PEM key as one header line: its base64 body (rspamd decodes it as DER)."""
    return "".join(line.strip() for line in pem.splitlines() if not line.startswith("-----"))


def seal_for(lookups: SealLookup, address: str) -> Seal | None:
    """The seal mail to the canonical hosted `address` gets, None when it stays here or its
    domain has no RSA key; raises on a database error."""
    domain = address.rpartition("@")[2]
    if not lookups.is_hosted(domain):
        return None
    if not leaves_here(address, lookups.targets_of, lookups.is_hosted):
        return None
    key = lookups.rsa_key_of(domain)
    if key is None:
        return None
    selector, pem = key
    return Seal(domain=domain, selector=selector, private_key=rspamd_key(pem))


def admit_seal(transaction_seal: Seal | None, seal: Seal | None) -> bool:
    """Whether a recipient sealed with `seal` may join a transaction sealed with
    `transaction_seal`: one message carries one seal, and a recipient that needs none
    (mail that stays here) does not mind one."""
    return transaction_seal is None or seal is None or seal.domain == transaction_seal.domain


def arc_headers(add_headers: object) -> tuple[tuple[str, str], ...]:
    """The ARC set in rspamd's answer (`milter.add_headers`), in `ARC_HEADERS` order; empty
    unless all three are there."""
    if not isinstance(add_headers, dict):
        return ()
    found: list[tuple[str, str]] = []
    for name in ARC_HEADERS:
        value = _first_value(add_headers.get(name))
        if value is None:
            return ()
        found.append((name, value.replace("\r\n", "\n")))
    return tuple(found)


def _first_value(entry: object) -> str | None:
    # rspamd writes one header as {"value": ..., "order": ...}, several as a list of those.
    entries: Iterable[object] = entry if isinstance(entry, list) else [entry]
    for item in entries:
        if isinstance(item, dict) and isinstance(item.get("value"), str):
            return str(item["value"])
    return None


def on_top(headers: Sequence[tuple[str, str]]) -> list[tuple[int, str, str]]:
    """(index, name, value) to insert so that the headers end up on top in this order:
    inserting each at index 0, the last inserted is the first header."""
    return [(0, name, value) for name, value in headers]
