"""Hashes imported through the Basic JSON sync log in over real IMAP (Dovecot verifies them).

The hashes are made here by the tools customers use: `doveadm pw`, `openssl passwd` and
`mkpasswd`, plus argon2-cffi for the controller's own scheme.
"""

from __future__ import annotations

import json
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
