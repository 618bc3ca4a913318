"""TLS on the mail ports, with real clients (Python's ssl, imaplib, poplib, smtplib).

- imaps and submissions (implicit TLS) log in with the mailbox password and an application
  password, like their STARTTLS siblings;
- every TLS listener (IMAP STARTTLS, imaps, POP3 STLS, pop3s, submission STARTTLS,
  submissions) refuses a client that speaks at most TLS 1.1, and speaks TLS 1.2 and 1.3;
- a renewed certificate is presented to new connections after `dataplane reload`, while
  Postfix's and Dovecot's master processes keep running (no restart).
"""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import os
import poplib
import shutil
import smtplib
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from postmeister.dataplane.render.model import StackLayout
from tests.e2e import hosting
from tests.e2e.conftest import Stack, dataplane_cli, shared_tmp_dir, stack_pids
from tests.e2e.mail import (
    HOST,
    TLS,
    imap_login_works,
    pop3_login_works,
    submit,
    unique_subject,
    wait_for_subject,
)
from tests.support.tls import make_test_pki

pytestmark = pytest.mark.e2e

# Every listener that speaks TLS, and how a client starts it there.
LISTENERS = ("imap", "imaps", "pop3", "pop3s", "submission", "submissions")


def pinned(version: ssl.TLSVersion, base: ssl.SSLContext | None = None) -> ssl.SSLContext:
    """A client context that speaks exactly `version` (no certificate check unless `base`
    is given: then its trust anchors and hostname check).

    For TLS 1.1 the context also needs `@SECLEVEL=0`: OpenSSL 3 allows TLS 1.0 and 1.1 only
    at security level 0, and Debian's default is 2, so without it the client would refuse
    to offer TLS 1.1 and the test would prove nothing about the server.
    """
    context = base or ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if base is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        # Python deprecates TLS 1.1 itself; here it is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def handshake(stack: Stack, listener: str, context: ssl.SSLContext) -> tuple[str, bytes]:
    """Connect to `listener`, start TLS the way its clients do; the negotiated version and
    the server's certificate (DER). Raises ssl.SSLError when the server refuses."""
    port = stack.ports[listener]
    tls: ssl.SSLSocket
    if listener == "imap":
        imap = imaplib.IMAP4(HOST, port, timeout=15)
        try:
            imap.starttls(ssl_context=context)
            tls = imap.sock  # type: ignore[assignment]
            return _facts(tls)
        finally:
            with contextlib.suppress(OSError):  # the socket is gone after a failed handshake
                imap.shutdown()
    if listener == "imaps":
        imaps = imaplib.IMAP4_SSL(HOST, port, ssl_context=context, timeout=15)
        try:
            return _facts(imaps.sock)  # type: ignore[arg-type]
        finally:
            imaps.shutdown()
    if listener in ("pop3", "pop3s"):
        pop = (
            poplib.POP3_SSL(HOST, port, context=context, timeout=15)
            if listener == "pop3s"
            else poplib.POP3(HOST, port, timeout=15)
        )
        try:
            if listener == "pop3":
                pop.stls(context=context)
            return _facts(pop.sock)  # type: ignore[arg-type]
        finally:
            with contextlib.suppress(OSError):
                pop.close()
    smtp = (
        smtplib.SMTP_SSL(HOST, port, context=context, timeout=15)
        if listener == "submissions"
        else smtplib.SMTP(HOST, port, timeout=15)
    )
    try:
        if listener == "submission":
            smtp.starttls(context=context)
        return _facts(smtp.sock)  # type: ignore[arg-type]
    finally:
        with contextlib.suppress(OSError):
            smtp.close()


def _facts(tls: ssl.SSLSocket) -> tuple[str, bytes]:
    version, der = tls.version(), tls.getpeercert(binary_form=True)
    assert version is not None and der is not None
    return version, der


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def test_implicit_tls_listeners_log_in_with_the_password_and_an_app_password(
    stack: Stack,
) -> None:
    box = hosting.mailbox(stack, prefix="tls")
    _, phone = hosting.app_password(stack, box, "Telefon")
    wrong = box.password + "x"

    for secret in (box.password, phone):
        assert imap_login_works(stack.ports["imaps"], box.address, secret, implicit_tls=True)
        subject = unique_subject("submissions")
        sent = submit(
            stack.ports["submissions"], login=box.address, password=secret,
            envelope_from=box.address, header_from=box.address, to=box.address,
            subject=subject, implicit_tls=True,
        )  # fmt: skip
        assert sent.sent, sent
        assert wait_for_subject(stack.ports["imap"], box.address, box.password, subject)
    assert not imap_login_works(stack.ports["imaps"], box.address, wrong, implicit_tls=True)
    refused = submit(
        stack.ports["submissions"], login=box.address, password=wrong,
        envelope_from=box.address, header_from=box.address, to=box.address, implicit_tls=True,
    )  # fmt: skip
    assert (refused.stage, refused.code) == ("auth", 535), refused


def test_submissions_applies_the_sender_rules_of_submission(stack: Stack) -> None:
    """The same restrictions and milter as port 587: another envelope sender is refused
    at RCPT (reject_sender_login_mismatch), another header From at DATA (sender milter)."""
    box, receiver = hosting.mailbox(stack, prefix="tlsspoof"), hosting.mailbox(stack)
    envelope = submit(
        stack.ports["submissions"], login=box.address, password=box.password,
        envelope_from=receiver.address, header_from=receiver.address, to=receiver.address,
        implicit_tls=True,
    )  # fmt: skip
    assert (envelope.stage, envelope.code) == ("rcpt", 553), envelope
    header = submit(
        stack.ports["submissions"], login=box.address, password=box.password,
        envelope_from=box.address, header_from="someone@partner.example", to=receiver.address,
        implicit_tls=True,
    )  # fmt: skip
    assert (header.stage, header.code) == ("data", 550), header


def test_submission_offers_auth_only_after_starttls(stack: Stack) -> None:
    with smtplib.SMTP(HOST, stack.ports["submission"], timeout=15) as smtp:
        smtp.ehlo("laptop.example")
        assert smtp.has_extn("starttls")
        assert not smtp.has_extn("auth")
        smtp.starttls(context=TLS)
        smtp.ehlo("laptop.example")
        assert smtp.has_extn("auth")


def _tls11_server(pki_dir: Path) -> tuple[socket.socket, list[str]]:
    """A local server that accepts TLS 1.1: proof that the TLS 1.1 client really offers it."""
    pki = make_test_pki(pki_dir)
    context = pki.server_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    listener = socket.create_server((HOST, 0))
    versions: list[str] = []

    def serve() -> None:
        connection, _ = listener.accept()
        with context.wrap_socket(connection, server_side=True) as tls:
            versions.append(str(tls.version()))

    threading.Thread(target=serve, daemon=True).start()
    return listener, versions


def test_a_tls_1_1_client_is_refused_on_every_tls_listener(stack: Stack, tmp_path: Path) -> None:
    tls11 = pinned(ssl.TLSVersion.TLSv1_1)
    listener, versions = _tls11_server(tmp_path / "pki")
    with (
        listener,
        socket.create_connection(listener.getsockname(), timeout=5) as raw,
        tls11.wrap_socket(raw) as tls,
    ):
        assert tls.version() == "TLSv1.1"
    assert versions == ["TLSv1.1"]

    dovecot_log = StackLayout(stack.root).log_dir / "dovecot.log"
    before = _refusals(dovecot_log)
    for name in LISTENERS:
        with pytest.raises(ssl.SSLError) as refused:
            handshake(stack, name, tls11)
        if name.startswith("submission"):
            # Postfix answers with a protocol_version alert.
            assert "TLSV1_ALERT_PROTOCOL_VERSION" in str(refused.value), refused.value
        else:
            # Dovecot closes the connection without an alert, and logs why.
            assert "UNEXPECTED_EOF" in str(refused.value), refused.value
    assert _wait_until(lambda: _refusals(dovecot_log) >= before + 4), "Dovecot logged why"


def _refusals(dovecot_log: Path) -> int:
    return dovecot_log.read_text().count("SSL routines::unsupported protocol")


def test_port_25_stays_opportunistic_and_offers_no_auth(stack: Stack) -> None:
    """A chosen difference (see the README): on the MX port a failed handshake does not
    refuse the mail, the sending server retries in cleartext, so an old sender's TLS 1.1
    is still better than none; no password is ever sent there (no AUTH)."""
    with smtplib.SMTP(HOST, stack.ports["smtp"], timeout=15) as mx:
        mx.ehlo("mx.sender.example")
        assert not mx.has_extn("auth")
        mx.starttls(context=pinned(ssl.TLSVersion.TLSv1_1))
        assert mx.sock.version() == "TLSv1.1"  # type: ignore[union-attr]
        mx.ehlo("mx.sender.example")
        assert not mx.has_extn("auth")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_are_spoken_on_every_tls_listener(
    stack: Stack, version: ssl.TLSVersion
) -> None:
    expected = {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    context = pinned(version)
    for name in LISTENERS:
        negotiated, _ = handshake(stack, name, context)
        assert negotiated == expected, name


def _wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def _replace(target: Path, source: Path) -> None:
    """Put `source`'s bytes at `target` in one rename, keeping `target`'s mode (as a renewal
    tool does: a daemon never reads half a file)."""
    mode = target.stat().st_mode & 0o777
    temporary = target.with_name(target.name + ".new")
    shutil.copyfile(source, temporary)
    os.chmod(temporary, mode)
    os.replace(temporary, target)


def test_a_renewed_certificate_is_used_after_reload_without_a_restart(stack: Stack) -> None:
    layout = StackLayout(stack.root)
    masters = stack_pids(stack.root)
    context = pinned(ssl.TLSVersion.TLSv1_3)
    old = {name: fingerprint(handshake(stack, name, context)[1]) for name in LISTENERS}
    assert len(set(old.values())) == 1, "one certificate for every listener"

    pki = make_test_pki(shared_tmp_dir("pm-e2e-tls-") / "pki", hosts=(HOST,), name="Renewed")
    try:
        new = fingerprint(ssl.PEM_cert_to_DER_cert(pki.server_cert.read_text()))
        assert new not in old.values()
        _replace(layout.tls.key_file, pki.server_key)
        _replace(layout.tls.cert_file, pki.server_cert)
        # Dovecot read the files when it loaded its configuration: not yet the new ones.
        for name in ("imap", "imaps", "pop3", "pop3s"):
            assert fingerprint(handshake(stack, name, context)[1]) == old[name], name

        result = dataplane_cli("reload", "--dir", str(stack.root), env=stack.env)
        assert result.returncode == 0, result.stderr

        # A client that trusts only the new CA (and checks the name 127.0.0.1) gets through.
        trusting = pinned(ssl.TLSVersion.TLSv1_3, pki.client_context())
        for name in LISTENERS:
            # Postfix's master handles the reload signal asynchronously: an smtpd that
            # was idle a moment ago may still take one more connection.
            assert _wait_until(
                lambda name=name: fingerprint(handshake(stack, name, context)[1]) == new  # type: ignore[misc]
            ), name
            assert fingerprint(handshake(stack, name, trusting)[1]) == new, name
    finally:
        shutil.rmtree(pki.ca_cert.parent.parent, ignore_errors=True)

    assert stack_pids(stack.root) == masters, "reload must not restart the daemons"
    box = hosting.mailbox(stack, prefix="renewed")
    assert imap_login_works(stack.ports["imaps"], box.address, box.password, implicit_tls=True)
    assert pop3_login_works(stack.ports["pop3s"], box.address, box.password, implicit_tls=True)


def test_reload_without_a_running_stack_says_so(tmp_path: Path) -> None:
    result = dataplane_cli("reload", "--dir", str(tmp_path / "nothing"), env={**os.environ})
    assert result.returncode == 1
    assert "no running stack" in result.stderr
