"""Minimal SMTP and IMAP clients, each attempt on a fresh connection as real clients make them."""

from __future__ import annotations

import imaplib
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

HOST = "127.0.0.1"
TIMEOUT = 15
# The private data plane has a self-signed certificate.
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


def _smtp(host: str, port: int, source: str | None) -> smtplib.SMTP:
    """A fresh SMTP connection, from `source` (an address of this machine) when given."""
    return smtplib.SMTP(host, port, timeout=TIMEOUT, source_address=(source, 0) if source else None)


def rcpt_code(port: int, recipient: str, *, host: str = HOST, source: str | None = None) -> int:
    """The reply code a remote MTA gets for RCPT TO:<recipient> (no message is sent)."""
    with _smtp(host, port, source) as smtp:
        smtp.ehlo("mx.sender.example")
        smtp.mail("bench@sender.example")
        code: int = smtp.rcpt(recipient)[0]
        smtp.rset()
        return code


def send(
    port: int, recipient: str, subject: str, *, host: str = HOST, source: str | None = None
) -> int:
    """Send one message like a remote MTA; returns the RCPT code (DATA only after a 250)."""
    with _smtp(host, port, source) as smtp:
        smtp.ehlo("mx.sender.example")
        smtp.mail("bench@sender.example")
        code: int = smtp.rcpt(recipient)[0]
        if code == 250:
            mail = EmailMessage()
            mail["From"] = "bench@sender.example"
            mail["To"] = recipient
            mail["Subject"] = subject
            mail.set_content("Postmeister benchmark message.\n")
            smtp.data(mail.as_bytes())
        return code


def submission_code(
    port: int, login: str, password: str, *, host: str = HOST, source: str | None = None
) -> int:
    """Like a mail program: STARTTLS, AUTH, MAIL FROM and RCPT TO its own address.

    Returns the first refusal code (535 for a failed AUTH), or 250 when RCPT was accepted.
    """
    with _smtp(host, port, source) as smtp:
        smtp.starttls(context=TLS)
        smtp.ehlo("laptop.example")
        try:
            smtp.login(login, password)
        except smtplib.SMTPAuthenticationError as error:
            return error.smtp_code
        code: int = smtp.mail(login)[0]
        if code == 250:
            code = smtp.rcpt(login)[0]
        smtp.rset()
        return code


def imap_login(port: int, user: str, password: str, *, host: str = HOST) -> bool:
    """STARTTLS, LOGIN, LOGOUT; True when the login was accepted."""
    with imaplib.IMAP4(host, port, timeout=TIMEOUT) as imap:
        imap.starttls(ssl_context=TLS)
        try:
            imap.login(user, password)
        except imaplib.IMAP4.error:
            return False
        return True


def maildir_has(mail_root: Path, address: str, token: str) -> bool:
    """True when a message containing `token` is in the mailbox's Maildir (new/ or cur/)."""
    local, _, domain = address.partition("@")
    maildir = mail_root / domain / local / "Maildir"
    for folder in ("new", "cur"):
        try:
            entries = list((maildir / folder).iterdir())
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                if token.encode() in entry.read_bytes():
                    return True
            except FileNotFoundError:  # moved from new/ to cur/ meanwhile
                continue
    return False
