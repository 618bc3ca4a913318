"""Hashes imported through the Basic JSON sync log in over real IMAP (Dovecot verifies them).

The hashes are made here by the tools customers use: `doveadm pw`, `openssl passwd` and
`mkpasswd`, plus argon2-cffi for the controller's own scheme; and the same behind every
Dovecot `{SCHEME}` prefix that migration sources (PostfixAdmin, mailcow) store them with.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import subprocess
from collections.abc import Callable

import pytest
from argon2 import PasswordHasher

from postmeister.db import unit_of_work
from postmeister.domain.domains.service import add_domain
from postmeister.sync.service import sync_document
from tests.e2e.conftest import Stack, unique
from tests.e2e.mail import imap_login_works

pytestmark = pytest.mark.e2e

PASSWORD = "Imported-Hash-Login-4711"


def _run(*command: str) -> str:
    return subprocess.run(
        command, check=True, capture_output=True, text=True, timeout=60
    ).stdout.strip()


def _doveadm(scheme: str) -> str:
    return _run("doveadm", "pw", "-s", scheme, "-p", PASSWORD).split("}", 1)[1]


HASHERS: dict[str, Callable[[], str]] = {
    "md5-crypt (openssl -1)": lambda: _run("openssl", "passwd", "-1", PASSWORD),
    "sha256-crypt (openssl -5)": lambda: _run("openssl", "passwd", "-5", PASSWORD),
    "sha512-crypt (openssl -6)": lambda: _run("openssl", "passwd", "-6", PASSWORD),
    "sha512-crypt rounds (doveadm)": lambda: _doveadm("SHA512-CRYPT"),
    "sha512-crypt rounds=100000 (mkpasswd)": lambda: _run(
        "mkpasswd", "-m", "sha-512", "-R", "100000", PASSWORD
    ),
    "bcrypt (doveadm BLF-CRYPT)": lambda: _doveadm("BLF-CRYPT"),
    "yescrypt (mkpasswd)": lambda: _run("mkpasswd", "-m", "yescrypt", PASSWORD),
    "argon2id (doveadm)": lambda: _doveadm("ARGON2ID"),
    "argon2id (argon2-cffi)": lambda: PasswordHasher().hash(PASSWORD),
}


def _doveadm_prefixed(scheme: str) -> str:
    """As `doveadm pw` prints it, prefix included: what PostfixAdmin and mailcow store."""
    return _run("doveadm", "pw", "-s", scheme, "-p", PASSWORD)


def _libxcrypt(prefix: str, count: int = 0) -> str:
    """A hash made by libxcrypt, for the settings no command-line tool here writes."""
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    setting = lib.crypt_gensalt(prefix.encode(), count, os.urandom(32), 32)
    hashed: bytes = lib.crypt(PASSWORD.encode(), setting)
    return hashed.decode()


# Every accepted Dovecot prefix, with a real hash of the kind it holds (issue 11, item 5).
PREFIXED: dict[str, Callable[[], str]] = {
    "{SHA512-CRYPT} (doveadm)": lambda: _doveadm_prefixed("SHA512-CRYPT"),
    "{SHA256-CRYPT} (doveadm)": lambda: _doveadm_prefixed("SHA256-CRYPT"),
    "{MD5-CRYPT} (doveadm)": lambda: _doveadm_prefixed("MD5-CRYPT"),
    "{BLF-CRYPT} $2y$ (doveadm)": lambda: _doveadm_prefixed("BLF-CRYPT"),
    "{BLF-CRYPT} $2a$ (mkpasswd)": lambda: (
        "{BLF-CRYPT}" + _run("mkpasswd", "-m", "bcrypt-a", PASSWORD)
    ),
    "{BLF-CRYPT} $2b$ (mkpasswd)": lambda: (
        "{BLF-CRYPT}" + _run("mkpasswd", "-m", "bcrypt", PASSWORD)
    ),
    "{ARGON2ID} (doveadm)": lambda: _doveadm_prefixed("ARGON2ID"),
    "{CRYPT} $2y$ (doveadm)": lambda: _doveadm_prefixed("CRYPT"),
    "{CRYPT} $1$ (openssl -1)": lambda: "{CRYPT}" + _run("openssl", "passwd", "-1", PASSWORD),
    "{CRYPT} $5$ (openssl -5)": lambda: "{CRYPT}" + _run("openssl", "passwd", "-5", PASSWORD),
    "{CRYPT} $6$ (openssl -6)": lambda: "{CRYPT}" + _run("openssl", "passwd", "-6", PASSWORD),
    "{CRYPT} $y$ (mkpasswd)": lambda: "{CRYPT}" + _run("mkpasswd", "-m", "yescrypt", PASSWORD),
    "{crypt} lower case": lambda: "{crypt}" + _run("openssl", "passwd", "-6", PASSWORD),
    "{SHA512-CRYPT} passlib default rounds=656000": lambda: (
        "{SHA512-CRYPT}" + _libxcrypt("$6$", 656_000)
    ),
    "passlib default rounds=656000, bare": lambda: _libxcrypt("$6$", 656_000),
}


def test_every_supported_hash_format_logs_in_after_import(stack: Stack) -> None:
    for tool in ("doveadm", "openssl", "mkpasswd"):
        assert shutil.which(tool), (
            f"{tool} is missing: scripts/install-dataplane-packages installs it"
        )
    domain = f"{unique('hashes')}.{stack.domain}"
    with unit_of_work(stack.sessions) as session:
        add_domain(session, customer_id=stack.tenant.customer_id, name=domain)
    accounts = {f"user{i}": make() for i, make in enumerate(HASHERS.values())}
    document = {domain: {"account": [{"name": n, "password": h} for n, h in accounts.items()]}}
    with unit_of_work(stack.sessions) as session:
        outcome = sync_document(
            session,
            customer_id=stack.tenant.customer_id,
            raw=json.dumps(document).encode(),
            settings=stack.settings.sync,
        )
    assert outcome.result == "applied"
    port = stack.ports["imap"]
    results = {
        label: imap_login_works(port, f"user{i}@{domain}", PASSWORD)
        for i, label in enumerate(HASHERS)
    }
    assert results == dict.fromkeys(HASHERS, True)
    assert not imap_login_works(port, f"user0@{domain}", PASSWORD + "x")


def test_every_accepted_prefixed_hash_logs_in_after_import_and_resync_is_a_no_op(
    stack: Stack,
) -> None:
    for tool in ("doveadm", "openssl", "mkpasswd"):
        assert shutil.which(tool), (
            f"{tool} is missing: scripts/install-dataplane-packages installs it"
        )
    domain = f"{unique('prefixed')}.{stack.domain}"
    with unit_of_work(stack.sessions) as session:
        add_domain(session, customer_id=stack.tenant.customer_id, name=domain)
    accounts = {f"user{i}": make() for i, make in enumerate(PREFIXED.values())}
    document = {domain: {"account": [{"name": n, "password": h} for n, h in accounts.items()]}}

    def sync() -> str:
        with unit_of_work(stack.sessions) as session:
            return sync_document(
                session,
                customer_id=stack.tenant.customer_id,
                raw=json.dumps(document).encode(),
                settings=stack.settings.sync,
            ).result

    assert sync() == "applied"
    port = stack.ports["imap"]
    results = {
        label: imap_login_works(port, f"user{i}@{domain}", PASSWORD)
        for i, label in enumerate(PREFIXED)
    }
    assert results == dict.fromkeys(PREFIXED, True)
    assert not imap_login_works(port, f"user0@{domain}", PASSWORD + "x")
    # Stored bare, so the same prefixed document again plans nothing.
    assert sync() == "unchanged"
