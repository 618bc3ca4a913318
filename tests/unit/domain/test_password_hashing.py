"""Hashes written by the API must verify in the real data plane (Dovecot's doveadm)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from postmeister.config import PasswordSettings
from postmeister.domain.passwords.hashing import PasswordHashing

PLAIN = "Fjord-Lantern-Quasar-Velvet-83"


def doveadm_verifies(hashed: str, plain: str) -> bool:
    doveadm = shutil.which("doveadm")
    if doveadm is None:
        pytest.fail("doveadm is missing: scripts/test installs dovecot-core")
    result = subprocess.run(
        [doveadm, "pw", "-t", "{ARGON2ID}" + hashed, "-p", plain],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.returncode == 0 and "(verified)" in result.stdout


def test_default_scheme_is_owasp_argon2id_and_dovecot_verifies_it() -> None:
    hashed = PasswordHashing(PasswordSettings()).hash(PLAIN)
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert doveadm_verifies(hashed, PLAIN)
    assert not doveadm_verifies(hashed, PLAIN + "x")


def test_same_password_hashes_differently_each_time() -> None:
    hashing = PasswordHashing(PasswordSettings())
    first, second = hashing.hash(PLAIN), hashing.hash(PLAIN)
    assert first != second
    assert hashing.verify(first, PLAIN)
    assert hashing.verify(second, PLAIN)
    assert not hashing.verify(first, "wrong")
    assert not hashing.verify("$1$not-argon$", PLAIN)
