"""Self-signed TLS certificates: the controller's own (in the data folder) and the private
data-plane stack's. One writer, so the private key is never readable by others, not even
for the moment between writing it and restricting its mode."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Long enough that an unattended install does not break within a year, short enough for
# clients that cap certificate lifetimes (825 days is the CA/Browser Forum's old maximum).
VALID_DAYS = 825


def ensure_self_signed(directory: Path) -> tuple[Path, Path, bool]:
    """(certificate, key, created?) — an existing pair is reused untouched."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path, False
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    hostname = socket.gethostname()
    write_self_signed(
        cert_path,
        key_path,
        ["localhost", hostname, "127.0.0.1", "::1"],
        common_name=f"postmeister {hostname}",
    )
    return cert_path, key_path, True


def write_self_signed(
    cert_path: Path,
    key_path: Path,
    hostnames: Sequence[str],
    *,
    common_name: str | None = None,
    days: int = VALID_DAYS,
) -> bool:
    """Create a self-signed certificate for `hostnames` (DNS names or IP addresses) and its
    EC P-256 key, unless both files exist already; True when it created them.

    The key file is created anew with mode 0600 before a byte is written (a leftover one is
    removed first), never through a symbolic link. The certificate is its own trust anchor
    (CA, path length 0), so a client can pin it with e.g. `curl --cacert cert.pem`.
    """
    if cert_path.exists() and key_path.exists():
        return False
    if not hostnames:
        raise ValueError("a certificate needs at least one host name")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or hostnames[0])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([_general_name(name) for name in hostnames]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True


def _write_private(path: Path, data: bytes) -> None:
    # A new file, created 0600 (O_EXCL): a leftover key file keeps its old mode on open, and
    # whoever already has it open could read what is written next. Never through a symlink.
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def fingerprint(cert_path: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":")
