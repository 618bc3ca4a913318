"""Imported password hashes: every real format is accepted and logs in; broken ones are refused.

The hashes are made here, at run time, by the tools customers use (`doveadm pw`,
`openssl passwd`, `mkpasswd`, argon2-cffi), and "logs in" is checked by the data plane's
own verifier, `doveadm pw -t`, with the Dovecot field that the production passdb builds:
`{password_scheme}password_hash` from the contract view `dataplane_v1_logins`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable

import pytest
from argon2 import PasswordHasher

from postmeister.dataplane.contract import LOGINS
from postmeister.domain.passwords.hash_formats import identify_crypt_hash, normalise_crypt_hash
from postmeister.errors import InvalidInput

PASSWORD = "Tundra-Mosaic-Lichen-2077"


def dovecot_password_field(hashed: str) -> str:
    """What Dovecot's passdb sees for an accepted hash: the scheme comes from the contract
    view's own SQL (one row in scratch `customers`, `domains` and `addresses` tables, no `mail_nodes`), never from a copy in Python."""
    identify_crypt_hash(hashed)  # only accepted hashes reach the data plane
    with sqlite3.connect(":memory:") as db:
        db.execute("CREATE TABLE customers (id INTEGER, suspended_at TEXT)")
        db.execute("CREATE TABLE domains (id INTEGER, customer_id INTEGER)")
        db.execute(
            "CREATE TABLE addresses (address TEXT, domain_id INTEGER, kind TEXT,"
            " password_hash TEXT, submission_disabled BOOLEAN, home_node_id INTEGER)"
        )
        db.execute("CREATE TABLE mail_nodes (id INTEGER, name TEXT, address TEXT)")
        db.execute("INSERT INTO customers VALUES (1, NULL)")
        db.execute("INSERT INTO domains VALUES (1, 1)")
        db.execute(
            "INSERT INTO addresses VALUES ('x@example.com', 1, 'mailbox', ?, 0, NULL)", (hashed,)
        )
        (scheme,) = db.execute(
            f"SELECT password_scheme FROM ({LOGINS.sql_for('sqlite')})"  # noqa: S608 - our SQL
        ).fetchone()
    return "{" + str(scheme) + "}" + hashed


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: scripts/install-dataplane-packages installs it")
    return path


def _run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


def doveadm_hash(scheme: str) -> str:
    """A hash made by Dovecot itself, without its `{SCHEME}` prefix."""
    out = _run(_tool("doveadm"), "pw", "-s", scheme, "-p", PASSWORD)
    prefix = "{" + scheme + "}"
    assert out.startswith(prefix)
    return out.removeprefix(prefix)


def openssl_hash(*options: str) -> str:
    return _run(_tool("openssl"), "passwd", *options, PASSWORD)


def _libxcrypt() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib


def libxcrypt_hash(prefix: str, count: int = 0, password: str = PASSWORD) -> str:
    """A hash made by the system's libxcrypt, the library behind Dovecot's {CRYPT}."""
    lib = _libxcrypt()
    setting = lib.crypt_gensalt(prefix.encode(), count, os.urandom(32), 32)
    hashed: bytes = lib.crypt(password.encode(), setting)
    return hashed.decode()


def mkpasswd_hash(method: str, libxcrypt_prefix: str) -> str:
    """`mkpasswd -m METHOD` (package whois) where installed, else the same via libxcrypt."""
    mkpasswd = shutil.which("mkpasswd")
    if mkpasswd is None:
        return libxcrypt_hash(libxcrypt_prefix)
    return _run(mkpasswd, "-m", method, PASSWORD)


def doveadm_verifies(stored: str, password: str = PASSWORD) -> bool:
    result = subprocess.run(
        [_tool("doveadm"), "pw", "-t", stored, "-p", password],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0 and "(verified)" in result.stdout


# (how it is made, expected scheme): every way a customer is likely to produce a hash.
GENERATED: dict[str, tuple[Callable[[], str], str]] = {
    "doveadm SHA512-CRYPT": (lambda: doveadm_hash("SHA512-CRYPT"), "sha512-crypt"),
    "doveadm SHA256-CRYPT": (lambda: doveadm_hash("SHA256-CRYPT"), "sha256-crypt"),
    "doveadm MD5-CRYPT": (lambda: doveadm_hash("MD5-CRYPT"), "md5-crypt"),
    "doveadm BLF-CRYPT": (lambda: doveadm_hash("BLF-CRYPT"), "bcrypt"),
    "doveadm ARGON2ID": (lambda: doveadm_hash("ARGON2ID"), "argon2id"),
    "openssl passwd -1": (lambda: openssl_hash("-1"), "md5-crypt"),
    "openssl passwd -5": (lambda: openssl_hash("-5"), "sha256-crypt"),
    "openssl passwd -6": (lambda: openssl_hash("-6"), "sha512-crypt"),
    # openssl has no -rounds option; it takes rounds=N inside the salt.
    "openssl passwd -5 rounds": (
        lambda: openssl_hash("-5", "-salt", "rounds=12000$Q9xLk2mPz"),
        "sha256-crypt",
    ),
    "openssl passwd -6 rounds": (
        lambda: openssl_hash("-6", "-salt", "rounds=1000$abcdefghijklmnop"),
        "sha512-crypt",
    ),
    "mkpasswd yescrypt": (lambda: mkpasswd_hash("yescrypt", "$y$"), "yescrypt"),
    "mkpasswd bcrypt ($2b$)": (lambda: mkpasswd_hash("bcrypt", "$2b$"), "bcrypt"),
    "mkpasswd bcrypt-a ($2a$)": (lambda: mkpasswd_hash("bcrypt-a", "$2a$"), "bcrypt"),
    "argon2-cffi defaults": (lambda: PasswordHasher().hash(PASSWORD), "argon2id"),
    "argon2-cffi 4 lanes, long salt and hash": (
        lambda: PasswordHasher(
            time_cost=1, memory_cost=256, parallelism=4, hash_len=64, salt_len=32
        ).hash(PASSWORD),
        "argon2id",
    ),
}


@pytest.mark.parametrize("maker", GENERATED.values(), ids=GENERATED.keys())
def test_real_hash_is_recognised_and_logs_in_through_dovecot(
    maker: tuple[Callable[[], str], str],
) -> None:
    make, scheme = maker
    hashed = make()
    assert identify_crypt_hash(hashed) == scheme
    field = dovecot_password_field(hashed)
    assert doveadm_verifies(field)
    assert not doveadm_verifies(field, PASSWORD + "!")


def test_yescrypt_with_custom_cost_and_2y_bcrypt_log_in() -> None:
    for hashed, scheme in [
        (libxcrypt_hash("$y$", 7), "yescrypt"),
        (libxcrypt_hash("$2y$", 4), "bcrypt"),
        (libxcrypt_hash("$6$", 700_000), "sha512-crypt"),  # the rounds cap itself
    ]:
        assert identify_crypt_hash(hashed) == scheme
        assert doveadm_verifies(dovecot_password_field(hashed))


def test_the_spec_examples_are_accepted() -> None:
    assert identify_crypt_hash("$1$9hW1N3SC$J6vfo890zc50GC1jYHP211") == "md5-crypt"
    spec_sha512 = (
        "$6$rounds=100000$vE8/iTZi9/cC/RCk$lkjkaN9LY3KAiF0lxmd/dfvkxKm9WDnyG.onOaXCJ64htjzkp"
        "zxRCNLZFDbi5ggwTf4Z3vbo3pPATJzgtytU//"
    )
    assert identify_crypt_hash(spec_sha512) == "sha512-crypt"


def test_dovecot_field_uses_argon2id_scheme_only_for_argon2id() -> None:
    argon = PasswordHasher(time_cost=1, memory_cost=64).hash(PASSWORD)
    assert dovecot_password_field(argon) == "{ARGON2ID}" + argon
    md5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"
    assert dovecot_password_field(md5) == "{CRYPT}" + md5


def test_hundreds_of_libxcrypt_hashes_are_all_accepted() -> None:
    # Salts and hashes are random; each format's last-character rule must hold for all.
    for prefix, count, scheme in [
        ("$1$", 0, "md5-crypt"),
        ("$5$", 1000, "sha256-crypt"),
        ("$6$", 1000, "sha512-crypt"),
        ("$2b$", 4, "bcrypt"),
        ("$y$", 1, "yescrypt"),
    ]:
        for _ in range(100):
            hashed = libxcrypt_hash(prefix, count, password=os.urandom(6).hex())
            assert identify_crypt_hash(hashed) == scheme, hashed


MD5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"
SHA256 = "$5$rounds=1000$abcdefgh$XIppta5rT8zJUu4vAOKQXrwq9uY4Ijlz6VjyOmkx5i4"
SHA512 = (
    "$6$de./1IjHu2W9RYRW$7XpZE6uGtoy5N/QMH.81elvXM6rzpI4NmlfmfUdqNjY/ynHHD2hqcJLTbbMTUOXS4"
    "32arBM8O4fDsJxXxMtPJ0"
)
BCRYPT = "$2b$04$CUMmtnK/ifeT2WBOfQyEFex5hUFvllKvTb/3JVJ8ZEt6iFJNCZ/3."
YESCRYPT = "$y$j9T$MLHQ0Kehujkfz8pi3iktq/$ofV//IxV89CvcPWXoW/.JSf61O8aFd.GOtFdxD1on29"
ARGON2ID = "$argon2id$v=19$m=8,t=1,p=1$eJXJen1BFVg$in7ArKnwUkn0AKKd2vyKEA"

# (broken value, words the reason must contain)
BROKEN = {
    "empty": ("", "required"),
    "plain text": ("hunter2hunter2", "plain-text passwords are not accepted"),
    "Dovecot prefix left on": ("{CRYPT}" + MD5, "Dovecot scheme prefix"),
    "trailing newline": (MD5 + "\n", "spaces, control or non-ASCII"),
    "inner space": (MD5[:10] + " " + MD5[11:], "spaces, control or non-ASCII"),
    "non-ASCII": (MD5[:-1] + "é", "non-ASCII"),
    "unknown prefix": ("$9$abc$def", "unknown hash prefix"),
    "argon2i": ("$argon2i$v=19$m=8,t=1,p=1$eJXJen1BFVg$in7ArKnwUkn0AKKd2vyKEA", "argon2id"),
    "2x bcrypt": ("$2x$" + BCRYPT[4:], "known bug"),
    "over-long": ("$6$" + "a" * 600, "longer than 512"),
    "md5 truncated": (MD5[:-1], "must be 22 characters, found 21"),
    "md5 one too many": (MD5 + "a", "must be 22 characters, found 23"),
    "md5 salt too long": ("$1$123456789$J6vfo890zc50GC1jYHP211", "at most 8"),
    "md5 wrong alphabet": (MD5[:-5] + "+" + MD5[-4:], "character 18 outside the crypt alphabet"),
    "md5 last char not canonical": (MD5[:-1] + "2", "last character that is not canonical"),
    "md5 missing salt part": ("$1$J6vfo890zc50GC1jYHP211", "form $1$salt$hash"),
    "sha256 truncated": (SHA256[:-1], "must be 43 characters, found 42"),
    "sha256 last char not canonical": (SHA256[:-1] + "G", "not canonical"),
    "sha256 rounds too low": (SHA256.replace("rounds=1000", "rounds=999"), "between 1000"),
    "sha256 rounds too high": (
        SHA256.replace("rounds=1000", "rounds=1000000000"),
        "between 1000 and 999999999",
    ),
    # Login-cost caps (finding 6 of issue 10): each message names the parameter and its cap.
    "sha256 rounds above the login-cost cap": (
        SHA256.replace("rounds=1000", "rounds=700001"),
        "costs more to verify than Postmeister accepts (rounds at most 700000)",
    ),
    "sha512 rounds at the old cap": (
        "$6$rounds=999999$" + SHA512[3:],
        "costs more to verify than Postmeister accepts (rounds at most 700000)",
    ),
    "bcrypt cost above the login-cost cap": (
        BCRYPT.replace("$04$", "$13$"),
        "costs more to verify than Postmeister accepts (cost at most 12)",
    ),
    "argon2id memory above the login-cost cap": (
        "$argon2id$v=19$m=65537,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "costs more to verify than Postmeister accepts (m at most 65536 KiB)",
    ),
    "argon2id at the old cap (1 GiB, t=16, about 7 s)": (
        "$argon2id$v=19$m=1048576,t=16,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "costs more to verify than Postmeister accepts (m at most 65536 KiB)",
    ),
    "argon2id memory times iterations above the cap": (
        "$argon2id$v=19$m=65536,t=9,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "costs more to verify than Postmeister accepts (m × t at most 524288, e.g. t at most 8",
    ),
    "argon2id lanes above the cap": (
        "$argon2id$v=19$m=1024,t=1,p=17$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "costs more to verify than Postmeister accepts (p at most 16)",
    ),
    "yescrypt 16 GiB (jJT)": (
        YESCRYPT.replace("$j9T$", "$jJT$"),
        "costs more to verify than Postmeister accepts (memory 128·N·r at most 64 MiB",
    ),
    "yescrypt 128 MiB (jCT)": (
        YESCRYPT.replace("$j9T$", "$jCT$"),
        "(memory 128·N·r at most 64 MiB",
    ),
    "yescrypt block size in two characters over the cap": (
        YESCRYPT.replace("$j9T$", "$jBkn$"),  # N = 2**14, r = 100: 200 MiB
        "(memory 128·N·r at most 64 MiB",
    ),
    "yescrypt with extra parameters": (
        YESCRYPT.replace("$j9T$", "$j9T5$"),
        "extra parameters after the block size r (p, t, g) are not accepted",
    ),
    "yescrypt cost N cut short": (YESCRYPT.replace("$j9T$", "$jkT$"), "middle of the block size"),
    "sha256 rounds leading zero": (SHA256.replace("rounds=1000", "rounds=01000"), "leading"),
    "sha256 rounds not a number": (SHA256.replace("rounds=1000", "rounds=1e4"), "decimal"),
    "sha256 rounds without salt": ("$5$rounds=5000$" + SHA256[-43:], "salt is missing"),
    "sha512 salt too long": ("$6$" + "a" * 17 + SHA512[19:], "at most 16"),
    "sha512 hash too short": (SHA512[:-2], "must be 86 characters, found 84"),
    "sha512 salt wrong alphabet": ("$6$de.!1IjH" + SHA512[11:], "salt has character 4"),
    "bcrypt cost too low": (BCRYPT.replace("$04$", "$03$"), "between 04 and 31"),
    "bcrypt cost too high": (BCRYPT.replace("$04$", "$32$"), "between 04 and 31"),
    "bcrypt cost one digit": (BCRYPT.replace("$04$", "$4$"), "two digits"),
    "bcrypt truncated": (BCRYPT[:-1], "53 characters together"),
    "bcrypt wrong alphabet": (BCRYPT[:-2] + "+.", "outside bcrypt's base64"),
    "bcrypt salt not canonical": (BCRYPT[:28] + "f" + BCRYPT[29:], "salt has a last character"),
    "bcrypt hash not canonical": (BCRYPT[:-1] + "/", "hash has a last character"),
    "argon2id wrong version": (ARGON2ID.replace("v=19", "v=16"), "version 19"),
    "argon2id without version": (ARGON2ID.replace("v=19$", ""), "form"),
    "argon2id params out of order": (ARGON2ID.replace("m=8,t=1", "t=1,m=8"), "in this order"),
    "argon2id memory below 8 per lane": (ARGON2ID.replace("p=1", "p=2"), "at least 8 per lane"),
    "argon2id zero iterations": (ARGON2ID.replace("t=1", "t=0"), "t (iterations)"),
    "argon2id leading zero": (ARGON2ID.replace("m=8", "m=08"), "leading zeros"),
    "argon2id padding": (ARGON2ID.replace("BFVg$", "BFVg=$"), "without = padding"),
    "argon2id salt too short": (ARGON2ID.replace("eJXJen1BFVg", "eJXJen0"), "at least 8 bytes"),
    "argon2id hash too short": (ARGON2ID[:-6], "at least 16 bytes"),
    "argon2id salt not canonical": (ARGON2ID.replace("BFVg$", "BFVh$"), "not canonical"),
    "argon2id wrong alphabet": (ARGON2ID.replace("BFVg$", "BF.g$"), "outside the base64"),
    "yescrypt truncated": (YESCRYPT[:-1], "must be 43 characters, found 42"),
    "yescrypt hash not canonical": (YESCRYPT[:-1] + "z", "not canonical"),
    "yescrypt salt bad length": (YESCRYPT.replace("iktq/$", "iktq$"), "no byte string"),
    "yescrypt salt not canonical": (YESCRYPT.replace("iktq/$", "iktqz$"), "salt has a last"),
    "yescrypt unknown flavour": (YESCRYPT.replace("$j9T$", "$z9T$"), "flavour"),
    "yescrypt params cut short": (YESCRYPT.replace("$j9T$", "$j9k$"), "middle of the block"),
    "yescrypt missing part": ("$y$j9T$" + YESCRYPT[-43:], "form $y$params$salt$hash"),
}


@pytest.mark.parametrize(("value", "reason"), BROKEN.values(), ids=BROKEN.keys())
def test_broken_hash_is_refused_with_a_precise_reason(value: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        identify_crypt_hash(value, field="/example.com/account/3/password")
    (problem,) = caught.value.problems
    assert problem.field == "/example.com/account/3/password"
    assert reason in problem.message


def test_refusal_never_repeats_the_value() -> None:
    # A "hash" that is really a typed password must not end up in logs or sync results.
    secret = "MyRealPassword-123"
    for value in (secret, "$6$" + secret, "$1$" + secret + "$x"):
        with pytest.raises(InvalidInput) as caught:
            identify_crypt_hash(value)
        assert secret not in str(caught.value)


CORRUPTIONS: dict[str, Callable[[str], str]] = {
    "a character mangled": lambda h: h[:-5] + "!" + h[-4:],
    "cut in half": lambda h: h[: len(h) // 2],
    "last character dropped": lambda h: h[:-1],
    "character appended": lambda h: h + "A",
}
# argon2id hashes have no fixed length: one character more or less can be another valid
# hash (of a different length), which no format check can tell from the original.
CORRUPTED = [
    pytest.param(scheme, corruption, id=f"{scheme}-{corruption}")
    for scheme in ["SHA512-CRYPT", "SHA256-CRYPT", "MD5-CRYPT", "BLF-CRYPT", "ARGON2ID"]
    for corruption in CORRUPTIONS
    if scheme != "ARGON2ID" or corruption in ("a character mangled", "cut in half")
]


@pytest.mark.parametrize(("scheme", "corruption"), CORRUPTED)
def test_corrupted_real_hash_would_lock_the_user_out_and_is_refused(
    scheme: str, corruption: str
) -> None:
    good = doveadm_hash(scheme)
    bad = CORRUPTIONS[corruption](good)
    prefix = "{ARGON2ID}" if scheme == "ARGON2ID" else "{CRYPT}"  # what the view would say
    # The data plane could never log this user in with the right password...
    assert not doveadm_verifies(prefix + bad)
    # ...which is why the import refuses the hash instead of storing it.
    with pytest.raises(InvalidInput):
        identify_crypt_hash(bad)


# --- the login-cost caps (finding 6 of issue 10) -----------------------------------------

# One hash exactly at each cap, made by the verifier's own library.
AT_THE_CAP: dict[str, Callable[[], str]] = {
    "sha256-crypt rounds=700000": lambda: libxcrypt_hash("$5$", 700_000),
    "sha512-crypt rounds=700000": lambda: libxcrypt_hash("$6$", 700_000),
    "sha512-crypt passlib default": lambda: libxcrypt_hash("$6$", 656_000),
    "bcrypt cost 12": lambda: libxcrypt_hash("$2b$", 12),
    "yescrypt jBT (64 MiB)": lambda: libxcrypt_hash("$y$", 7),
    "argon2id m=65536,t=8,p=1": lambda: PasswordHasher(
        time_cost=8, memory_cost=65_536, parallelism=1
    ).hash(PASSWORD),
    "argon2id m=65536,t=8,p=16": lambda: PasswordHasher(
        time_cost=8, memory_cost=65_536, parallelism=16
    ).hash(PASSWORD),
}


@pytest.mark.parametrize("make", AT_THE_CAP.values(), ids=AT_THE_CAP.keys())
def test_a_hash_at_the_cap_is_accepted_and_logs_in(make: Callable[[], str]) -> None:
    """What a verification at each cap costs is measured by `bench.hash_caps`, not here."""
    hashed = make()
    field = dovecot_password_field(hashed)  # accepted
    assert doveadm_verifies(field)


# --- Dovecot {SCHEME} prefixes, as migration sources store hashes (issue 11, item 5) -------


def doveadm_prefixed(scheme: str) -> str:
    """`doveadm pw -s SCHEME` as it prints: the form PostfixAdmin and mailcow store."""
    return _run(_tool("doveadm"), "pw", "-s", scheme, "-p", PASSWORD)


# (how it is made, bare hash expected inside): every prefix with a real hash in it.
PREFIXED: dict[str, tuple[Callable[[], str], str]] = {
    "{SHA512-CRYPT} doveadm": (lambda: doveadm_prefixed("SHA512-CRYPT"), "$6$"),
    "{SHA256-CRYPT} doveadm": (lambda: doveadm_prefixed("SHA256-CRYPT"), "$5$"),
    "{MD5-CRYPT} doveadm": (lambda: doveadm_prefixed("MD5-CRYPT"), "$1$"),
    "{BLF-CRYPT} doveadm ($2y$)": (lambda: doveadm_prefixed("BLF-CRYPT"), "$2y$"),
    "{BLF-CRYPT} $2a$": (lambda: "{BLF-CRYPT}" + libxcrypt_hash("$2a$", 4), "$2a$"),
    "{BLF-CRYPT} $2b$": (lambda: "{BLF-CRYPT}" + libxcrypt_hash("$2b$", 4), "$2b$"),
    "{ARGON2ID} doveadm": (lambda: doveadm_prefixed("ARGON2ID"), "$argon2id$"),
    "{CRYPT} doveadm": (lambda: doveadm_prefixed("CRYPT"), "$2y$"),
    "{CRYPT} $1$": (lambda: "{CRYPT}" + libxcrypt_hash("$1$"), "$1$"),
    "{CRYPT} $5$": (lambda: "{CRYPT}" + libxcrypt_hash("$5$", 5000), "$5$"),
    "{CRYPT} $6$": (lambda: "{CRYPT}" + libxcrypt_hash("$6$", 5000), "$6$"),
    "{CRYPT} $y$": (lambda: "{CRYPT}" + libxcrypt_hash("$y$"), "$y$"),
    "{SHA512-CRYPT} passlib default rounds=656000": (
        lambda: "{SHA512-CRYPT}" + libxcrypt_hash("$6$", 656_000),
        "$6$rounds=656000$",
    ),
}


@pytest.mark.parametrize("maker", PREFIXED.values(), ids=PREFIXED.keys())
def test_a_prefixed_hash_is_stored_bare_and_logs_in_through_dovecot(
    maker: tuple[Callable[[], str], str],
) -> None:
    make, start = maker
    prefixed = make()
    assert prefixed.startswith("{")
    bare = normalise_crypt_hash(prefixed)
    assert bare == prefixed.partition("}")[2]
    assert bare.startswith(start)
    # The source's Dovecot verified the prefixed string; ours verifies the stored bare one.
    assert doveadm_verifies(prefixed)
    assert doveadm_verifies(dovecot_password_field(bare))


def test_passlib_default_rounds_are_accepted_bare_too() -> None:
    hashed = libxcrypt_hash("$6$", 656_000)
    assert hashed.startswith("$6$rounds=656000$")
    assert normalise_crypt_hash(hashed) == hashed
    assert identify_crypt_hash(hashed) == "sha512-crypt"


def test_a_bare_hash_is_returned_as_it_is() -> None:
    for hashed in (MD5, SHA256, SHA512, BCRYPT, YESCRYPT, ARGON2ID):
        assert normalise_crypt_hash(hashed) == hashed


def test_the_prefix_is_matched_ignoring_case_as_dovecot_does() -> None:
    for prefix in ("{sha512-crypt}", "{Sha512-Crypt}", "{crypt}", "{SHA512-CRYPT}"):
        assert normalise_crypt_hash(prefix + SHA512) == SHA512
    assert normalise_crypt_hash("{blf-crypt}" + BCRYPT) == BCRYPT
    assert normalise_crypt_hash("{argon2id}" + ARGON2ID) == ARGON2ID


# (prefixed value, words the reason must contain)
BROKEN_PREFIXED = {
    "{MD5-CRYPT} around sha512-crypt": (
        "{MD5-CRYPT}" + SHA512,
        "the prefix {MD5-CRYPT} does not match the sha512-crypt hash inside it; "
        "sha512-crypt hashes take {SHA512-CRYPT} or {CRYPT}",
    ),
    "{SHA512-CRYPT} around sha256-crypt": (
        "{SHA512-CRYPT}" + SHA256,
        "{SHA512-CRYPT} does not match the sha256-crypt hash",
    ),
    "{SHA256-CRYPT} around md5-crypt": ("{sha256-crypt}" + MD5, "{SHA256-CRYPT} does not match"),
    "{BLF-CRYPT} around yescrypt": (
        "{BLF-CRYPT}" + YESCRYPT,
        "does not match the yescrypt hash inside it; yescrypt hashes take {CRYPT}",
    ),
    "{ARGON2ID} around bcrypt": ("{ARGON2ID}" + BCRYPT, "{ARGON2ID} does not match the bcrypt"),
    # libxcrypt, behind {CRYPT}, has no argon2: a working Dovecot never stored this.
    "{CRYPT} around argon2id": (
        "{CRYPT}" + ARGON2ID,
        "does not match the argon2id hash inside it; argon2id hashes take {ARGON2ID}",
    ),
    "{PLAIN}": (
        "{PLAIN}Hunter2",
        "the Dovecot scheme {PLAIN} is not accepted; accepted are {CRYPT}, {MD5-CRYPT}, "
        "{SHA256-CRYPT}, {SHA512-CRYPT}, {BLF-CRYPT}, {ARGON2ID} and bare crypt hashes; "
        "plain-text passwords are not accepted",
    ),
    "{SHA512}": ("{SHA512}c2hhNTEyc2hhNTEy", "the Dovecot scheme {SHA512} is not accepted"),
    "{SSHA}": ("{ssha}c3NoYXNzaGE=", "the Dovecot scheme {SSHA} is not accepted; accepted are"),
    "{ARGON2I}": ("{ARGON2I}$argon2i$v=19$m=8,t=1,p=1$x$y", "{ARGON2I} is not accepted"),
    "{DES-CRYPT}": ("{DES-CRYPT}abJnggxhB/yWI", "{DES-CRYPT} is not accepted"),
    "not a Dovecot scheme": ("{NOPE}" + MD5, "not a Dovecot crypt scheme; accepted are {CRYPT}"),
    "non-ASCII scheme that upper-cases to one": ("{ſha512-crypt}" + SHA512, "not a Dovecot"),
    "no closing brace": ("{SHA512-CRYPT" + SHA512, "no Dovecot scheme prefix"),
    "two prefixes": ("{CRYPT}{CRYPT}" + MD5, "two Dovecot scheme prefixes"),
    "empty after the prefix": ("{CRYPT}", "a password hash is required"),
    "space after the prefix": ("{CRYPT} " + MD5, "spaces, control or non-ASCII"),
    "broken hash inside": ("{MD5-CRYPT}" + MD5[:-1], "must be 22 characters, found 21"),
    "over the cost cap inside": (
        "{BLF-CRYPT}" + BCRYPT.replace("$04$", "$13$"),
        "(cost at most 12)",
    ),
}


@pytest.mark.parametrize(("value", "reason"), BROKEN_PREFIXED.values(), ids=BROKEN_PREFIXED.keys())
def test_a_wrong_or_unknown_prefix_is_refused_with_a_precise_reason(
    value: str, reason: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_crypt_hash(value, field="/example.com/account/3/password")
    (problem,) = caught.value.problems
    assert problem.field == "/example.com/account/3/password"
    assert problem.rule == "password-hash"
    assert reason in problem.message


def test_a_prefix_refusal_never_repeats_a_secret() -> None:
    secret = "MyRealPassword-123"
    for value in ("{" + secret + "}x", "{PLAIN}" + secret, "{" + secret, "{CRYPT}" + secret):
        with pytest.raises(InvalidInput) as caught:
            normalise_crypt_hash(value)
        assert secret not in str(caught.value)


def test_a_mismatch_names_every_prefix_that_would_fit() -> None:
    def message(value: str) -> str:
        with pytest.raises(InvalidInput) as caught:
            normalise_crypt_hash(value)
        return caught.value.problems[0].message

    fits = "does not match the {} hash inside it; {} hashes take {}"
    assert message("{MD5-CRYPT}" + SHA512).endswith(
        fits.format("sha512-crypt", "sha512-crypt", "{SHA512-CRYPT} or {CRYPT}")
    )
    assert message("{MD5-CRYPT}" + YESCRYPT).endswith(
        fits.format("yescrypt", "yescrypt", "{CRYPT}")
    )
    assert message("{CRYPT}" + ARGON2ID).endswith(fits.format("argon2id", "argon2id", "{ARGON2ID}"))
