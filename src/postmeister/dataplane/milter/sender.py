"""The sender policy: submitted mail may carry only a header From the login may use.

Postfix checks the envelope sender against the login (`reject_sender_login_mismatch`) but has
no per-login check of the header From, which is what the recipient sees. This milter, attached
only to the submission service, reads the SASL login (`{auth_authen}` macro) and every From
header, and rejects the message at end of headers unless the login may use every address in
every From header, by the same statement as the envelope check
(`postmeister.dataplane.contract.SENDER_LOOKUP`: own address, whitelisted address,
whitelisted domain, or `*`; never an address of a domain another customer hosts).

Decisions, so that they are documented in one place:
- every address is brought into the store's canonical form (`postmeister.canonical`:
  UTS #46 A-label, lowercase ASCII local part) before it is looked up, so `CEO@STRAßE.example`,
  `ceo@xn--strae-oqa.example` and decomposed or uppercase spellings meet the same row, and
  `straße` never becomes `strasse`;
- an address that has no canonical form (a non-ASCII or quoted local part, an invalid
  domain, a domain literal) is refused, never mapped to something else;
- the header is read by two parsers (the standard library's strict header parser and the
  lenient `getaddresses`), and every address either of them finds must be allowed, so a
  header that mail programs might read differently cannot slip one address past the check;
  a header the strict parser finds invalid is refused;
- no From header, or a From without any address: rejected (550 5.7.1), there is nothing the
  login could be allowed to send as, and such mail is refused by most receivers anyway;
- no SASL login (never on a correctly configured submission port): rejected;
- the database cannot be read: temporary failure (451 4.3.0), the client retries;
- a message whose From passed is then counted against the login's sending limits
  (`postmeister.dataplane.milter.limits`, with the recipients Postfix accepted) and
  deferred when a limit is reached.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import errors as email_errors
from email.policy import default as default_policy
from email.utils import getaddresses
from typing import Final, Protocol

from postmeister.canonical import NotCanonical, canonical_address
from postmeister.dataplane.milter import metrics, protocol
from postmeister.dataplane.milter.limits import SendingLimiter
from postmeister.dataplane.milter.protocol import Packet, Reply

log = logging.getLogger("postmeister.milter.sender")

NEEDS_LOGIN: Final = "550 5.7.1 Authentication required"
NEEDS_FROM: Final = "550 5.7.1 The message needs a From header with an address"
UNREADABLE_FROM: Final = "550 5.7.1 The From header cannot be read unambiguously"
LOOKUP_FAILED: Final = "451 4.3.0 Sender check temporarily unavailable, try again later"

# Steps Postfix may skip: the sender milter needs only macros, MAIL, RCPT (counted for the
# sending limits), headers and EOH.
SKIP: Final = (
    protocol.SKIP_CONNECT
    | protocol.SKIP_HELO
    | protocol.SKIP_BODY
    | protocol.SKIP_UNKNOWN
    | protocol.SKIP_DATA
)


class SenderPolicy(Protocol):
    def may_send_as(self, login: str, address: str) -> bool:
        """True when `login` may use the canonical `address`; raises on a database error."""
        ...


@dataclass(frozen=True)
class Verdict:
    accept: bool
    reply: str = ""


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]", " ", value)


def header_addresses(values: Sequence[str]) -> list[str] | None:
    """Every address of these From header values as written, or None when a header is
    invalid. Both parsers are asked; the union is returned (duplicates removed)."""
    found: list[str] = []
    for value in map(_unfold, values):
        try:
            header = default_policy.header_factory("From", value)
            if any(isinstance(d, email_errors.InvalidHeaderDefect) for d in header.defects):
                return None
            strict = [a.addr_spec for a in getattr(header, "addresses", ())]
            lenient = [a for _name, a in getaddresses([value]) if a]
        except Exception:  # the parsers fail on some garbage (IndexError, AttributeError)
            return None
        for address in [*strict, *lenient]:
            if address not in found:
                found.append(address)
    return found


def decide(login: str | None, from_headers: Sequence[str], policy: SenderPolicy) -> Verdict:
    """Whether a message with these From header values may be sent by `login`."""
    if not login:
        return Verdict(False, NEEDS_LOGIN)
    addresses = header_addresses(from_headers)
    if addresses is None:
        return Verdict(False, UNREADABLE_FROM)
    if not addresses:
        return Verdict(False, NEEDS_FROM)
    canonical_login = login.strip().lower()
    try:
        for address in addresses:
            refused = Verdict(
                False,
                f"550 5.7.1 Header From <{protocol.printable(address)}> is not permitted "
                f"for login {protocol.printable(login)}",
            )
            try:
                canonical = canonical_address(address)
            except NotCanonical:
                return refused
            if not policy.may_send_as(canonical_login, canonical):
                return refused
    except Exception:
        log.exception("sender check failed")
        return Verdict(False, LOOKUP_FAILED)
    return Verdict(True)


@dataclass
class SenderMilter:
    """One submission connection: the login (from the macros) and the current From headers."""

    policy: SenderPolicy
    limiter: SendingLimiter | None = None
    login: str | None = None
    from_headers: list[str] = field(default_factory=list)
    recipients: int = 0
    actions: int = 0
    skip: int = SKIP

    def macros(self, command: int, macros: dict[str, str]) -> None:
        login = macros.get("auth_authen")
        if login:
            self.login = login

    def handle(self, packet: Packet) -> Sequence[Reply]:
        if packet.command == protocol.CMD_MAIL:
            self.from_headers = []
            self.recipients = 0
        elif packet.command == protocol.CMD_RCPT:
            self.recipients += 1
        elif packet.command == protocol.CMD_HEADER:
            name, value = protocol.decode_header(packet.payload)
            if name.lower() == "from":
                self.from_headers.append(
                    value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                )
        elif packet.command == protocol.CMD_EOH:
            verdict = decide(self.login, self.from_headers, self.policy)
            if verdict.accept and self.limiter is not None and self.login:
                admission = self.limiter.admit(self.login.strip().lower(), self.recipients)
                verdict = Verdict(admission.accept, admission.reply)
            if verdict.accept:
                metrics.decided("sender", "accept")
                return [protocol.ACCEPT]
            metrics.decided("sender", "tempfail" if verdict.reply.startswith("4") else "reject")
            log.info("rejected for %s: %s", self.login, verdict.reply)
            return [protocol.reply_code(verdict.reply)]
        return []

    def abort(self) -> None:
        self.from_headers = []
        self.recipients = 0

    def reset(self) -> None:
        self.login = None
        self.from_headers = []
        self.recipients = 0
