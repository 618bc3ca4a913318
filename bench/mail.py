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


def rcpt_code(port: int, recipient: str) -> int:
    """The reply code a remote MTA gets for RCPT TO:<recipient> (no message is sent)."""
    with smtplib.SMTP(HOST, port, timeout=TIMEOUT) as smtp:
        smtp.ehlo("mx.sender.example")
        smtp.mail("bench@sender.example")
        code: int = smtp.rcpt(recipient)[0]
        smtp.rset()
        return code


def send(port: int, recipient: str, subject: str) -> int:
    """Send one message like a remote MTA; returns the RCPT code (DATA only after a 250)."""
    with smtplib.SMTP(HOST, port, timeout=TIMEOUT) as smtp:
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


def submission_code(port: int, login: str, password: str) -> int:
    """Like a mail program: STARTTLS, AUTH, MAIL FROM and RCPT TO its own address.

    Returns the first refusal code (535 for a failed AUTH), or 250 when RCPT was accepted.
    """
    with smtplib.SMTP(HOST, port, timeout=TIMEOUT) as smtp:
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


def imap_login(port: int, user: str, password: str) -> bool:
    """STARTTLS, LOGIN, LOGOUT; True when the login was accepted."""
    with imaplib.IMAP4(HOST, port, timeout=TIMEOUT) as imap:
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
