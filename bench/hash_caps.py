"""How long one login costs at each import cap (issue 10, finding 6), next to the old caps.

    .venv/bin/python -m bench.hash_caps [--repeat N]

Each figure is one verification by the library Dovecot itself uses for the scheme:
libxcrypt's `crypt()` for `{CRYPT}` hashes ($5$, $6$, $2b$, $y$) and libsodium's
`crypto_pwhash_str_verify` for `{ARGON2ID}`. Best and median of N runs, in milliseconds;
the caps in `postmeister.domain.passwords.hash_formats` are chosen so that every hash
Postmeister accepts stays well under a second. Nothing is asserted: a benchmark reports.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import statistics
import time
from collections.abc import Callable

from argon2 import PasswordHasher

from postmeister.domain.passwords.hash_formats import identify_crypt_hash
from postmeister.errors import InvalidInput

PASSWORD = "correct horse battery staple"


def _libxcrypt() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib


def _crypt_hash(prefix: str, count: int) -> str:
    lib = _libxcrypt()
    setting = lib.crypt_gensalt(prefix.encode(), count, os.urandom(32), 32)
    hashed: bytes = lib.crypt(PASSWORD.encode(), setting)
    return hashed.decode()


def _argon2(memory_kib: int, time_cost: int, lanes: int = 1) -> str:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=lanes).hash(
        PASSWORD
    )


def verification_seconds(hashed: str) -> float:
    if hashed.startswith("$argon2id$"):
        sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
        if sodium.sodium_init() < 0:
            raise RuntimeError("libsodium did not initialise")
        sodium.crypto_pwhash_str_verify.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulonglong,
        ]
        start = time.perf_counter()
        ok = sodium.crypto_pwhash_str_verify(hashed.encode(), PASSWORD.encode(), len(PASSWORD))
        elapsed = time.perf_counter() - start
        if ok != 0:
            raise RuntimeError("libsodium did not verify the hash")
        return elapsed
    lib = _libxcrypt()
    start = time.perf_counter()
    recomputed: bytes = lib.crypt(PASSWORD.encode(), hashed.encode())
    elapsed = time.perf_counter() - start
    if recomputed.decode() != hashed:
        raise RuntimeError("libxcrypt did not verify the hash")
    return elapsed


# (label, how to make it)
CASES: list[tuple[str, Callable[[], str]]] = [
    ("sha512-crypt default (5000 rounds)", lambda: _crypt_hash("$6$", 5000)),
    ("sha512-crypt passlib default (656000)", lambda: _crypt_hash("$6$", 656_000)),
    ("sha256-crypt at the cap (700000)", lambda: _crypt_hash("$5$", 700_000)),
    ("sha512-crypt at the cap (700000)", lambda: _crypt_hash("$6$", 700_000)),
    ("sha512-crypt old cap (1000000)", lambda: _crypt_hash("$6$", 1_000_000)),
    ("bcrypt at the cap (cost 12)", lambda: _crypt_hash("$2b$", 12)),
    ("bcrypt old cap (cost 14)", lambda: _crypt_hash("$2b$", 14)),
    ("yescrypt default (j9T, 16 MiB)", lambda: _crypt_hash("$y$", 5)),
    ("yescrypt at the cap (jBT, 64 MiB)", lambda: _crypt_hash("$y$", 7)),
    ("argon2id at the cap (64 MiB, t=8)", lambda: _argon2(65_536, 8)),
    ("argon2id old cap (1 GiB, t=16)", lambda: _argon2(1_048_576, 16)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("| hash | accepted | best ms | median ms |")
    print("|---|---|---|---|")
    for label, make in CASES:
        hashed = make()
        try:
            identify_crypt_hash(hashed)
            accepted = True
        except InvalidInput:
            accepted = False
        runs = [verification_seconds(hashed) * 1000 for _ in range(args.repeat)]
        print(
            f"| {label} | {'yes' if accepted else 'no'} | {min(runs):.0f} | "
            f"{statistics.median(runs):.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
