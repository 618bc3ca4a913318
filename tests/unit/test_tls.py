"""The one self-signed certificate writer (issue 10: the second copy wrote the key before
restricting its mode)."""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from postmeister.tls import ensure_self_signed, write_self_signed


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_key_is_created_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        created = write_self_signed(
            tmp_path / "cert.pem", tmp_path / "key.pem", ["mail.example.org", "127.0.0.1"]
        )
    finally:
        os.umask(old)
    assert created
    assert mode(tmp_path / "key.pem") == 0o600
    cert = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mail.example.org"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    # A client can load the pair and trust the certificate as its own anchor.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))


def test_a_leftover_world_readable_key_is_replaced_by_a_private_one(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("old key\n")
    key.chmod(0o644)
    assert write_self_signed(tmp_path / "cert.pem", key, ["localhost"])
    assert mode(key) == 0o600
    assert "PRIVATE KEY" in key.read_text()


def test_an_existing_pair_is_kept(tmp_path: Path) -> None:
    cert, key, created = ensure_self_signed(tmp_path / "tls")
    assert created
    assert mode(tmp_path / "tls") == 0o700
    before = key.read_bytes()
    assert ensure_self_signed(tmp_path / "tls") == (cert, key, False)
    assert not write_self_signed(cert, key, ["localhost"])
    assert key.read_bytes() == before


def test_the_key_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("not a key\n")
    (tmp_path / "key.pem").symlink_to(target)
    write_self_signed(tmp_path / "cert.pem", tmp_path / "key.pem", ["localhost"])
    assert target.read_text() == "not a key\n"  # the link was replaced, not followed
    assert not (tmp_path / "key.pem").is_symlink()


def test_a_certificate_needs_a_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="host name"):
        write_self_signed(tmp_path / "cert.pem", tmp_path / "key.pem", [])
