"""The Postmeister antispam milter: rspamd's verdict and each recipient's policy, at SMTP time.

Attached to the SMTP port (`smtpd_milters`), it hands every message to rspamd over rspamd's
HTTP scan protocol and applies the spam policy (`antispam`) of the addresses the sender
used, read from the contract view `dataplane_v1_recipient_policies` on every message, so a
changed policy counts for the next message.

The rule, in one place:
- **One policy per SMTP transaction.** The first recipient accepted fixes the transaction's
  policy; a further recipient with a different policy is answered
  `452 4.5.3` at RCPT time, which tells the sending server to deliver to it in a separate
  transaction (RFC 5321 4.5.3.1.10). So every recipient gets exactly its own policy, and a
  message to recipients of different policies is never half rejected, never silently
  dropped for some of them, and never rewritten for one because of another.
- **The verdict** is rspamd's action: `reject` is spam; `add header` and `rewrite subject`
  are likely spam; anything else (`no action`, `greylist`, `soft reject`) is not spam.
- **reject**: spam is refused at the end of DATA with 550 5.7.1, so the sender learns and
  nobody sends a bounce later; likely spam is delivered marked (`X-Spam: Yes`).
- **junk-folder**: spam and likely spam are delivered marked; the mailbox's Sieve script
  (`dataplane_v1_sieve_scripts`) files marked mail into `Junk`, creating it if needed.
- **subject-rewrite**: spam and likely spam are delivered marked, with `[SPAM] ` before the
  subject.
- **none**: the message passes untouched, whatever rspamd says.
- A sender's own `X-Spam` headers are removed (except under `none`), so nobody outside can
  push a message into a Junk folder or suppress an autoreply by forging the mark.
- rspamd or the database unreachable: 451 (the sender retries); mail never passes unscanned.

Recipients are looked up in the store's canonical form (`postmeister.canonical`), so an IDN
recipient (`anna@müller.example`, `ANNA@XN--MLLER-KVA.EXAMPLE`) finds its own policy; a
recipient without a canonical form gets the default (strictest) policy.

Policies belong to the address as sent: mail to a forward follows the forward's policy, and
a target mailbox with the junk-folder policy files it into Junk if it arrives marked.

Mail that a hosted forward sends on to another domain is ARC-sealed by rspamd in the same
scan, with the forwarding domain's key (the rules are in `postmeister.dataplane.milter.arc`).
"""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from postmeister.canonical import NotCanonical, canonical_address
from postmeister.dataplane.milter import metrics, protocol
from postmeister.dataplane.milter.arc import (
    Seal,
    SealLookup,
    admit_seal,
    arc_headers,
    on_top,
    seal_for,
)
from postmeister.dataplane.milter.protocol import Packet, Reply

log = logging.getLogger("postmeister.milter.antispam")

POLICIES: Final = ("reject", "junk-folder", "subject-rewrite", "none")
# What an address that the view does not know is treated as (Postfix refused it already).
DEFAULT_POLICY: Final = "reject"
SPAM_HEADER: Final = "X-Spam"
SCORE_HEADER: Final = "X-Spam-Score"
SUBJECT_TAG: Final = "[SPAM] "

REJECT_REPLY: Final = "550 5.7.1 Message rejected as spam"
OTHER_POLICY_REPLY: Final = (
    "452 4.5.3 Recipient has another spam policy; please send to it in a separate transaction"
)
OTHER_SEAL_REPLY: Final = (
    "452 4.5.3 Recipient is forwarded by another domain; please send to it in a separate"
    " transaction"
)
LOOKUP_FAILED_REPLY: Final = "451 4.3.0 Recipient policy temporarily unavailable"
SCAN_FAILED_REPLY: Final = "451 4.7.1 Spam check temporarily unavailable, try again later"

# Steps Postfix may skip: unknown commands and DATA. Everything else is needed.
SKIP: Final = protocol.SKIP_UNKNOWN | protocol.SKIP_DATA


# --------------------------------------------------------------------------- the decisions


@dataclass(frozen=True)
class Scan:
    """rspamd's verdict on one message."""

    action: str
    score: float
    # The ARC set rspamd made when asked to seal (`arc.ARC_HEADERS` order), else empty.
    arc: tuple[tuple[str, str], ...] = ()

    @property
    def spam(self) -> bool:
        return self.action == "reject"

    @property
    def likely_spam(self) -> bool:
        return self.action in ("add header", "rewrite subject")


@dataclass(frozen=True)
class Edits:
    """What happens to a message at the end of DATA: refused with `reply`, or delivered
    with these header changes (`change` with an empty value deletes that header)."""

    reply: str | None = None
    change: tuple[tuple[str, int, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()


def admit(transaction_policy: str | None, policy: str) -> bool:
    """Whether a recipient with `policy` may join a transaction whose accepted recipients
    have `transaction_policy` (None: it is the first)."""
    return transaction_policy is None or transaction_policy == policy


def edits_for(policy: str, scan: Scan, headers: Sequence[tuple[str, str]]) -> Edits:
    """The outcome for a transaction with `policy`, `scan`'s verdict and these headers."""
    if policy == "none":
        return Edits()
    if policy == "reject" and scan.spam:
        return Edits(reply=REJECT_REPLY)
    forged = _occurrences(headers, SPAM_HEADER)
    change = [(SPAM_HEADER, index, "") for index in reversed(range(1, forged + 1))]
    if not (scan.spam or scan.likely_spam):
        return Edits(change=tuple(change))
    add = [(SPAM_HEADER, "Yes"), (SCORE_HEADER, f"{scan.score:.2f}")]
    if policy == "subject-rewrite":
        subject = next((v for n, v in headers if n.lower() == "subject"), None)
        if subject is None:
            add.append(("Subject", SUBJECT_TAG.strip()))
        else:
            change.append(("Subject", 1, SUBJECT_TAG + subject.lstrip(" \t")))
    return Edits(change=tuple(change), add=tuple(add))


def _occurrences(headers: Sequence[tuple[str, str]], name: str) -> int:
    return sum(1 for n, _ in headers if n.lower() == name.lower())


def normalise_recipient(argument: str) -> str | None:
    """The canonical form of an RCPT TO address as the contract views store addresses, or
    None when it has none (it then cannot be a hosted address)."""
    address = argument.strip().strip("<>").strip()
    try:
        return canonical_address(address)
    except NotCanonical:
        return None


# --------------------------------------------------------------------------- the outside


class PolicyLookup(Protocol):
    def policy_of(self, address: str) -> str | None:
        """The address's policy, None when unknown; raises on a database error."""
        ...


class Scanner(Protocol):
    def scan(self, message: bytes, envelope: Envelope) -> Scan:
        """rspamd's verdict; raises when rspamd cannot be asked."""
        ...


def lookup_policy(lookup: Callable[[str], str | None], address: str) -> str:
    """The policy of `address`, falling back to the address without a `+detail`."""
    found = lookup(address)
    local, _, domain = address.rpartition("@")
    if found is None and "+" in local:
        found = lookup(f"{local.split('+', 1)[0]}@{domain}")
    return found if found in POLICIES else DEFAULT_POLICY


@dataclass
class Envelope:
    client_address: str = ""
    helo: str = ""
    sender: str = ""
    recipients: list[str] = field(default_factory=list)
    queue_id: str = ""
    seal: Seal | None = None


class RspamdScanner:
    """Asks an rspamd normal worker (`POST /checkv2`, rspamd's scan protocol)."""

    def __init__(self, host: str, port: int, timeout: float = 20.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    def scan(self, message: bytes, envelope: Envelope) -> Scan:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.putrequest("POST", "/checkv2", skip_accept_encoding=True)
            connection.putheader("Content-Length", str(len(message)))
            for name, value in _scan_headers(envelope):
                connection.putheader(name, value)
            connection.endheaders(message)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"rspamd answered {response.status}: {body[:200]!r}")
        verdict = json.loads(body)
        milter = verdict.get("milter")
        return Scan(
            action=str(verdict.get("action", "no action")),
            score=float(verdict["score"]),
            arc=arc_headers(milter.get("add_headers") if isinstance(milter, dict) else None),
        )


def _scan_headers(envelope: Envelope) -> list[tuple[str, str]]:
    headers = [("From", envelope.sender), ("Helo", envelope.helo or "unknown")]
    if envelope.client_address:
        headers.append(("IP", envelope.client_address))
    if envelope.queue_id:
        headers.append(("Queue-Id", envelope.queue_id))
    headers.extend(("Rcpt", r) for r in envelope.recipients)
    if envelope.seal is not None:
        headers.extend(envelope.seal.request_headers())
    # Header values must be one line of printable text.
    return [(n, "".join(c if " " <= c <= "~" else "?" for c in v)) for n, v in headers]


# --------------------------------------------------------------------------- the protocol


@dataclass
class Transaction:
    envelope: Envelope = field(default_factory=Envelope)
    policy: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)

    def message(self) -> bytes:
        lines = []
        for name, value in self.headers:
            value = value.replace("\r\n", "\n").replace("\n", "\r\n")
            lines.append(f"{name}: {value.lstrip(' ')}\r\n".encode("utf-8", "surrogateescape"))
        return b"".join(lines) + b"\r\n" + bytes(self.body)


@dataclass
class AntispamMilter:
    """One SMTP connection: the client, its HELO, and the current transaction."""

    policies: PolicyLookup
    scanner: Scanner
    # None: nothing is ARC-sealed.
    seals: SealLookup | None = None
    client: str = ""
    helo: str = ""
    txn: Transaction = field(default_factory=Transaction)
    actions: int = protocol.ACTION_ADDHDRS | protocol.ACTION_CHGHDRS
    skip: int = SKIP

    def macros(self, command: int, macros: dict[str, str]) -> None:
        queue_id = macros.get("i")
        if queue_id:
            self.txn.envelope.queue_id = queue_id

    def handle(self, packet: Packet) -> Sequence[Reply]:
        command, payload = packet.command, packet.payload
        if command == protocol.CMD_CONNECT:
            self.client = protocol.decode_connect(payload).address
        elif command == protocol.CMD_HELO:
            self.helo = protocol.decode_argument(payload)
        elif command == protocol.CMD_MAIL:
            sender = protocol.decode_argument(payload).strip("<>")
            self.txn = Transaction(
                Envelope(client_address=self.client, helo=self.helo, sender=sender)
            )
        elif command == protocol.CMD_RCPT:
            return self._recipient(protocol.decode_argument(payload))
        elif command == protocol.CMD_HEADER:
            self.txn.headers.append(protocol.decode_header(payload))
        elif command == protocol.CMD_BODY:
            self.txn.body += payload
        elif command == protocol.CMD_BODYEOB:
            replies = self._end_of_message()
            self.txn = Transaction()
            return replies
        return []

    def abort(self) -> None:
        self.txn = Transaction()

    def reset(self) -> None:
        self.client, self.helo, self.txn = "", "", Transaction()

    def _recipient(self, argument: str) -> Sequence[Reply]:
        address = normalise_recipient(argument)
        try:
            policy = (
                DEFAULT_POLICY
                if address is None
                else lookup_policy(self.policies.policy_of, address)
            )
            seal = None if address is None or self.seals is None else seal_for(self.seals, address)
        except Exception:
            log.exception("policy lookup failed for %s", address)
            metrics.decided("antispam", "tempfail")
            return [protocol.reply_code(LOOKUP_FAILED_REPLY)]
        if not admit(self.txn.policy, policy):
            log.info("deferred %s (%s) in a %s transaction", address, policy, self.txn.policy)
            metrics.decided("antispam", "deferred")
            return [protocol.reply_code(OTHER_POLICY_REPLY)]
        if not admit_seal(self.txn.envelope.seal, seal):
            log.info("deferred %s (sealed by %s)", address, seal.domain if seal else "-")
            metrics.decided("antispam", "deferred")
            return [protocol.reply_code(OTHER_SEAL_REPLY)]
        self.txn.policy = policy
        self.txn.envelope.seal = self.txn.envelope.seal or seal
        self.txn.envelope.recipients.append(address or argument.strip("<>"))
        return []

    def _end_of_message(self) -> Sequence[Reply]:
        txn = self.txn
        policy = txn.policy or DEFAULT_POLICY
        if policy == "none" and txn.envelope.seal is None:
            metrics.decided("antispam", "passed")
            return []
        try:
            scan = self.scanner.scan(txn.message(), txn.envelope)
        except Exception:
            log.exception("rspamd scan failed")
            if policy == "none":  # rspamd was asked only for the seal: pass unsealed
                metrics.decided("antispam", "passed")
                return []
            metrics.decided("antispam", "tempfail")
            return [protocol.reply_code(SCAN_FAILED_REPLY)]
        edits = edits_for(policy, scan, txn.headers)
        log.info(
            "%s policy=%s action=%s score=%.2f -> %s",
            txn.envelope.queue_id or "-",
            policy,
            scan.action,
            scan.score,
            edits.reply or "deliver",
        )
        if edits.reply is not None:
            metrics.decided("antispam", "rejected")
            return [protocol.reply_code(edits.reply)]
        metrics.decided("antispam", "marked" if edits.add else "clean")
        # Only a message that leaves unchanged is sealed (see `arc`): never one marked as
        # spam, never one whose Subject (covered by the seal's signature) is rewritten.
        sealed = on_top(scan.arc) if txn.envelope.seal is not None and not edits.add else []
        return [
            *(protocol.change_header(name, index, value) for name, index, value in edits.change),
            *(protocol.add_header(name, value) for name, value in edits.add),
            *(protocol.insert_header(index, name, value) for index, name, value in sealed),
            protocol.CONTINUE,
        ]
