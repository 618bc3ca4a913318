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

Policies belong to the address as sent: mail to a forward follows the forward's policy, and
a target mailbox with the junk-folder policy files it into Junk if it arrives marked.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import sqlite3
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from postmeister.dataplane.milter import (
    CMD_ABORT,
    CMD_BODYEOB,
    CMD_EOH,
    CMD_HEADER,
    CMD_MACRO,
    CMD_MAIL,
    CMD_OPTNEG,
    CMD_QUIT,
    CMD_QUIT_NC,
    PROTOCOL_VERSION,
    REPLY_CODE,
    REPLY_CONTINUE,
    REPLY_OPTNEG,
    MilterServer,
    packets,
    parse_endpoint,
    parse_macros,
    send_packet,
)

log = logging.getLogger("postmeister.antispam")

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
LOOKUP_FAILED_REPLY: Final = "451 4.3.0 Recipient policy temporarily unavailable"
SCAN_FAILED_REPLY: Final = "451 4.7.1 Spam check temporarily unavailable, try again later"

# Milter commands and replies this milter uses beyond the sender milter's.
CMD_CONNECT: Final = ord("C")
CMD_RCPT: Final = ord("R")
CMD_BODY: Final = ord("B")
CMDS_CONTINUE: Final = frozenset(ord(c) for c in "HTU")
REPLY_ADDHEADER: Final = b"h"
REPLY_CHGHEADER: Final = b"m"
ACTION_ADDHDRS: Final = 0x01
ACTION_CHGHDRS: Final = 0x10
# Steps Postfix may skip: unknown commands and DATA. Everything else is needed.
SKIP_STEPS: Final = 0x100 | 0x200


# --------------------------------------------------------------------------- the decisions


@dataclass(frozen=True)
class Scan:
    """rspamd's verdict on one message."""

    action: str
    score: float

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


def normalise_recipient(argument: str) -> str:
    """The canonical form of an RCPT TO address as the contract views store addresses."""
    address = argument.strip().strip("<>").strip()
    local, _, domain = address.rpartition("@")
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}".lower()


# --------------------------------------------------------------------------- the outside


class PolicyLookup(Protocol):
    def policy_of(self, address: str) -> str | None:
        """The address's policy, None when unknown; raises on a database error."""
        ...


class Scanner(Protocol):
    def scan(self, message: bytes, envelope: Envelope) -> Scan:
        """rspamd's verdict; raises when rspamd cannot be asked."""
        ...


POLICY_QUERY: Final = "SELECT antispam FROM dataplane_v1_recipient_policies WHERE address = {p}"


def lookup_policy(lookup: Callable[[str], str | None], address: str) -> str:
    """The policy of `address`, falling back to the address without a `+detail`."""
    found = lookup(address)
    local, _, domain = address.rpartition("@")
    if found is None and "+" in local:
        found = lookup(f"{local.split('+', 1)[0]}@{domain}")
    return found if found in POLICIES else DEFAULT_POLICY


class SqlitePolicies:
    def __init__(self, path: str) -> None:
        self.path = path

    def policy_of(self, address: str) -> str | None:
        connection = sqlite3.connect(self.path, timeout=2)
        try:
            connection.execute("PRAGMA query_only = 1")
            row = connection.execute(POLICY_QUERY.format(p="?"), (address,)).fetchone()
        finally:
            connection.close()
        return None if row is None else str(row[0])


class PostgresPolicies:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = {k: v for k, v in params.items() if v is not None}

    def policy_of(self, address: str) -> str | None:
        import psycopg

        with psycopg.connect(**self.params, connect_timeout=2, autocommit=True) as connection:
            row = connection.execute(POLICY_QUERY.format(p="%s"), (address,)).fetchone()
        return None if row is None else str(row[0])


@dataclass
class Envelope:
    client_address: str = ""
    helo: str = ""
    sender: str = ""
    recipients: list[str] = field(default_factory=list)
    queue_id: str = ""


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
        return Scan(action=str(verdict.get("action", "no action")), score=float(verdict["score"]))


def _scan_headers(envelope: Envelope) -> list[tuple[str, str]]:
    headers = [("From", envelope.sender), ("Helo", envelope.helo or "unknown")]
    if envelope.client_address:
        headers.append(("IP", envelope.client_address))
    if envelope.queue_id:
        headers.append(("Queue-Id", envelope.queue_id))
    headers.extend(("Rcpt", r) for r in envelope.recipients)
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


def _reply(sock: socket.socket, text: str) -> None:
    send_packet(sock, REPLY_CODE, text.encode("utf-8") + b"\0")


def _cstring(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape") + b"\0"


def _cstrings(payload: bytes) -> list[str]:
    return [p.decode("utf-8", "surrogateescape") for p in payload.split(b"\0")]


def serve_antispam(sock: socket.socket, policies: PolicyLookup, scanner: Scanner) -> None:
    """Run the milter protocol on one MTA connection until it quits."""
    client = ""
    helo = ""
    txn = Transaction()
    for command, payload in packets(sock):
        if command == CMD_OPTNEG:
            _version, _actions, offered = struct.unpack(">III", payload[:12])
            actions = ACTION_ADDHDRS | ACTION_CHGHDRS
            send_packet(
                sock,
                REPLY_OPTNEG,
                struct.pack(">III", PROTOCOL_VERSION, actions, SKIP_STEPS & offered),
            )
        elif command == CMD_MACRO:
            queue_id = parse_macros(payload).get("i")
            if queue_id:
                txn.envelope.queue_id = queue_id
        elif command == CMD_CONNECT:
            parts = payload.split(b"\0", 1)
            rest = parts[1] if len(parts) > 1 else b""
            # family (1 byte), port (2 bytes), address (C string); 'U' (unknown) has none.
            client = rest[3:].split(b"\0", 1)[0].decode("ascii", "replace") if rest else ""
            send_packet(sock, REPLY_CONTINUE)
        elif command == ord("H"):
            helo = _cstrings(payload)[0]
            send_packet(sock, REPLY_CONTINUE)
        elif command == CMD_MAIL:
            txn = Transaction()
            txn.envelope = Envelope(
                client_address=client, helo=helo, sender=_cstrings(payload)[0].strip("<>")
            )
            send_packet(sock, REPLY_CONTINUE)
        elif command == CMD_RCPT:
            _recipient(sock, txn, _cstrings(payload)[0], policies)
        elif command == CMD_HEADER:
            name, value = [*_cstrings(payload), "", ""][:2]
            txn.headers.append((name, value))
            send_packet(sock, REPLY_CONTINUE)
        elif command == CMD_BODY:
            txn.body += payload
            send_packet(sock, REPLY_CONTINUE)
        elif command == CMD_EOH or command in CMDS_CONTINUE:
            send_packet(sock, REPLY_CONTINUE)
        elif command == CMD_BODYEOB:
            _end_of_message(sock, txn, scanner)
            txn = Transaction()
        elif command == CMD_ABORT:
            txn = Transaction()
        elif command == CMD_QUIT_NC:
            client, helo, txn = "", "", Transaction()
        elif command == CMD_QUIT:
            return


def _recipient(
    sock: socket.socket, txn: Transaction, argument: str, policies: PolicyLookup
) -> None:
    address = normalise_recipient(argument)
    try:
        policy = lookup_policy(policies.policy_of, address)
    except Exception:
        log.exception("policy lookup failed for %s", address)
        _reply(sock, LOOKUP_FAILED_REPLY)
        return
    if not admit(txn.policy, policy):
        log.info("deferred %s (%s) in a %s transaction", address, policy, txn.policy)
        _reply(sock, OTHER_POLICY_REPLY)
        return
    txn.policy = policy
    txn.envelope.recipients.append(address)
    send_packet(sock, REPLY_CONTINUE)


def _end_of_message(sock: socket.socket, txn: Transaction, scanner: Scanner) -> None:
    policy = txn.policy or DEFAULT_POLICY
    if policy == "none":
        send_packet(sock, REPLY_CONTINUE)
        return
    try:
        scan = scanner.scan(txn.message(), txn.envelope)
    except Exception:
        log.exception("rspamd scan failed")
        _reply(sock, SCAN_FAILED_REPLY)
        return
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
        _reply(sock, edits.reply)
        return
    for name, index, value in edits.change:
        payload = struct.pack(">I", index) + _cstring(name) + _cstring(value)
        send_packet(sock, REPLY_CHGHEADER, payload)
    for name, value in edits.add:
        send_packet(sock, REPLY_ADDHEADER, _cstring(name) + _cstring(value))
    send_packet(sock, REPLY_CONTINUE)


def server_from_config(antispam: dict[str, Any], database: dict[str, Any]) -> MilterServer:
    """The antispam milter server for the `antispam` and `database` parts of milter.json."""
    policies: PolicyLookup
    if database["dialect"] == "sqlite":
        policies = SqlitePolicies(str(database["path"]))
    else:
        keys = ("host", "port", "dbname", "user", "password")
        policies = PostgresPolicies({k: database.get(k) for k in keys})
    scanner = RspamdScanner(*parse_endpoint(str(antispam["rspamd"])))
    return MilterServer(
        parse_endpoint(str(antispam["listen"])),
        lambda sock: serve_antispam(sock, policies, scanner),
    )
