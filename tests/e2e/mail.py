"""Real SMTP, IMAP and POP3 clients, as a remote mail server and as a mail program would use them."""

from __future__ import annotations

import email
import email.message
import email.policy
import imaplib
import poplib
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

HOST = "127.0.0.1"
# The private stack has a self-signed certificate.
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


def unique_subject(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:12]}"


def message(*, header_from: str, to: str, subject: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = header_from
    mail["To"] = to
    mail["Subject"] = subject
    mail.set_content("Hello from the Postmeister end-to-end tests.\n")
    return mail.as_bytes()


def deliver(port: int, *, sender: str, recipients: list[str], subject: str) -> dict[str, int]:
    """Send like a remote MTA on the SMTP port; returns the RCPT reply code per recipient.

    The message is sent (DATA) when at least one recipient was accepted.
    """
    codes: dict[str, int] = {}
    with smtplib.SMTP(HOST, port, timeout=15) as smtp:
        smtp.ehlo("mx.sender.example")
        code, text = smtp.mail(sender)
        assert code == 250, text
        for rcpt in recipients:
            codes[rcpt] = smtp.rcpt(rcpt)[0]
        if any(c == 250 for c in codes.values()):
            body = message(header_from=sender, to=", ".join(recipients), subject=subject)
            code, text = smtp.data(body)
            assert code == 250, text
    return codes


def _text(reply: bytes | str) -> str:
    return reply.decode() if isinstance(reply, bytes) else reply


@dataclass(frozen=True)
class Submission:
    """How far a submission got: `stage` is auth, mail, rcpt, data, or sent."""

    stage: str
    code: int
    text: str

    @property
    def sent(self) -> bool:
        return self.stage == "sent"


def submit(
    port: int,
    *,
    login: str | None,
    password: str,
    envelope_from: str,
    header_from: str,
    to: str,
    subject: str = "submitted",
    implicit_tls: bool = False,
) -> Submission:
    """Send like a mail program: STARTTLS (or, with `implicit_tls`, TLS from the start on
    the submissions port), AUTH, then one message."""
    smtp = (
        smtplib.SMTP_SSL(HOST, port, timeout=15, context=TLS)
        if implicit_tls
        else smtplib.SMTP(HOST, port, timeout=15)
    )
    with smtp:
        if not implicit_tls:
            smtp.starttls(context=TLS)
        smtp.ehlo("laptop.example")
        if login is not None:
            # PLAIN only: smtplib's login() would try LOGIN after a failed PLAIN, and each
            # failure costs Dovecot's two-second delay.
            smtp.user, smtp.password = login, password
            try:
                smtp.auth("PLAIN", smtp.auth_plain)
            except smtplib.SMTPAuthenticationError as error:
                return Submission("auth", error.smtp_code, _text(error.smtp_error))
        code, text = smtp.mail(envelope_from)
        if code != 250:
            return Submission("mail", code, text.decode())
        code, text = smtp.rcpt(to)
        if code != 250:
            return Submission("rcpt", code, text.decode())
        body = message(header_from=header_from, to=to, subject=subject)
        code, text = smtp.data(body)
        if code != 250:
            return Submission("data", code, text.decode())
        return Submission("sent", code, text.decode())


def imap_login_works(port: int, user: str, password: str, *, implicit_tls: bool = False) -> bool:
    """Whether `password` logs in: after STARTTLS, or on the imaps port with `implicit_tls`."""
    imap = (
        imaplib.IMAP4_SSL(HOST, port, ssl_context=TLS, timeout=15)
        if implicit_tls
        else imaplib.IMAP4(HOST, port, timeout=15)
    )
    with imap:
        if not implicit_tls:
            imap.starttls(ssl_context=TLS)
        try:
            imap.login(user, password)
        except imaplib.IMAP4.error:
            return False
        return True


def imap_subjects(port: int, user: str, password: str, mailbox: str = "INBOX") -> list[str]:
    with imaplib.IMAP4(HOST, port, timeout=15) as imap:
        imap.starttls(ssl_context=TLS)
        imap.login(user, password)
        return subjects_in(imap, mailbox)


def subjects_in(session: imaplib.IMAP4, mailbox: str = "INBOX") -> list[str]:
    """The subjects of every message in `mailbox` of a logged-in session (none marked seen)."""
    session.select(mailbox, readonly=True)
    _, data = session.search(None, "ALL")
    subjects = []
    for number in data[0].split():
        _, parts = session.fetch(number, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        raw = parts[0][1] if isinstance(parts[0], tuple) else b""
        subjects.append(raw.decode().partition(":")[2].strip())
    return subjects


def wait_for_subject(
    port: int, user: str, password: str, subject: str, *, timeout: float = 15.0
) -> bool:
    """True once a message with `subject` is in the INBOX (delivery is asynchronous)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subject in imap_subjects(port, user, password):
            return True
        time.sleep(0.1)
    return False


def send_raw(
    port: int, *, sender: str, recipients: list[str], raw: bytes, size: int | None = None
) -> tuple[dict[str, int], tuple[int, str] | None]:
    """Send `raw` like a remote MTA: the RCPT code per recipient, and the reply to DATA
    (None when no recipient was accepted). `size` is announced with MAIL FROM SIZE=."""
    codes: dict[str, int] = {}
    with smtplib.SMTP(HOST, port, timeout=30) as smtp:
        smtp.ehlo("mx.sender.example")
        options = [f"SIZE={size}"] if size is not None else []
        code, text = smtp.mail(sender, options)
        assert code == 250, text
        for rcpt in recipients:
            codes[rcpt] = smtp.rcpt(rcpt)[0]
        if not any(c == 250 for c in codes.values()):
            return codes, None
        code, reply = smtp.data(raw)
        return codes, (code, _text(reply))


def compose(
    *,
    header_from: str,
    to: str,
    subject: str,
    body: str = "Hello from the Postmeister end-to-end tests.\n",
    extra: dict[str, str] | None = None,
) -> bytes:
    mail = EmailMessage()
    mail["From"] = header_from
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@sender.example>"
    for name, value in (extra or {}).items():
        mail[name] = value
    mail.set_content(body)
    return mail.as_bytes()


def fetch_messages(
    port: int, user: str, password: str, mailbox: str = "INBOX"
) -> list[email.message.EmailMessage]:
    """Every message of `mailbox` (an empty list when the folder does not exist)."""
    with imaplib.IMAP4(HOST, port, timeout=15) as imap:
        imap.starttls(ssl_context=TLS)
        imap.login(user, password)
        status, _ = imap.select(f'"{mailbox}"', readonly=True)
        if status != "OK":
            return []
        _, data = imap.search(None, "ALL")
        found = []
        for number in data[0].split():
            _, parts = imap.fetch(number, "(BODY.PEEK[])")
            raw = parts[0][1] if isinstance(parts[0], tuple) else b""
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, email.message.EmailMessage)
            found.append(parsed)
        return found


def wait_for_messages(
    port: int,
    user: str,
    password: str,
    predicate: Callable[[email.message.EmailMessage], bool],
    *,
    mailbox: str = "INBOX",
    count: int = 1,
    timeout: float = 15.0,
) -> list[email.message.EmailMessage]:
    """The messages of `mailbox` that match, once at least `count` of them are there
    (whatever matched when `timeout` ran out, otherwise)."""
    deadline = time.monotonic() + timeout
    while True:
        matching = [m for m in fetch_messages(port, user, password, mailbox) if predicate(m)]
        if len(matching) >= count or time.monotonic() > deadline:
            return matching
        time.sleep(0.1)


def subject_is(subject: str) -> Callable[[email.message.EmailMessage], bool]:
    return lambda message: str(message["Subject"]) == subject


def subject_contains(text: str) -> Callable[[email.message.EmailMessage], bool]:
    return lambda message: text in str(message["Subject"])


class _Pop3From(poplib.POP3):
    """A POP3 client whose connection comes from `source` (another loopback address is
    another client to Dovecot: neither local nor trusted)."""

    def __init__(self, host: str, port: int, *, source: str, timeout: float) -> None:
        self._source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float) -> socket.socket:
        return socket.create_connection(
            (self.host, self.port), timeout, source_address=(self._source, 0)
        )


def pop3_connect(
    port: int, *, implicit_tls: bool = False, source: str | None = None
) -> poplib.POP3:
    """A POP3 session, in TLS: implicit on the POP3S port, else STARTTLS (STLS) first.

    With `source`, the connection comes from that address and STLS is left to the caller.
    """
    if implicit_tls:
        return poplib.POP3_SSL(HOST, port, timeout=15, context=TLS)
    if source is not None:
        return _Pop3From(HOST, port, source=source, timeout=15)
    pop = poplib.POP3(HOST, port, timeout=15)
    pop.stls(context=TLS)
    return pop


def pop3_login_works(port: int, user: str, password: str, *, implicit_tls: bool = False) -> bool:
    pop = pop3_connect(port, implicit_tls=implicit_tls)
    try:
        pop.user(user)
        pop.pass_(password)
    except poplib.error_proto:
        return False
    finally:
        pop.close()
    return True


def pop3_subjects(port: int, user: str, password: str, *, implicit_tls: bool = False) -> list[str]:
    """The subject of every message, in POP3's order, left on the server."""
    pop = pop3_connect(port, implicit_tls=implicit_tls)
    try:
        pop.user(user)
        pop.pass_(password)
        count, _ = pop.stat()
        subjects = []
        for number in range(1, count + 1):
            _, lines, _ = pop.top(number, 0)
            parsed = email.message_from_bytes(b"\r\n".join(lines), policy=email.policy.default)
            subjects.append(str(parsed["Subject"]))
        pop.quit()
        return subjects
    finally:
        pop.close()


def pop3_delete(port: int, user: str, password: str, subject: str) -> bool:
    """RETR every message, DELE the one with `subject`, QUIT (which expunges); True if found."""
    pop = pop3_connect(port)
    try:
        pop.user(user)
        pop.pass_(password)
        count, _ = pop.stat()
        found = False
        for number in range(1, count + 1):
            _, lines, _ = pop.retr(number)
            parsed = email.message_from_bytes(b"\r\n".join(lines), policy=email.policy.default)
            if str(parsed["Subject"]) == subject:
                pop.dele(number)
                found = True
        pop.quit()
        return found
    finally:
        pop.close()
