"""Pure DKIM rules: key generation, selector names, the TXT record to publish, key states.

No database here: `service.py` stores what these functions produce.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from itertools import count, product
from typing import Final, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

Algorithm = Literal["rsa", "ed25519"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = ("rsa", "ed25519")
# The label that holds every selector (RFC 6376 3.6.2.1).
DOMAINKEY: Final = "_domainkey"


@dataclass(frozen=True)
class KeyPair:
    algorithm: Algorithm
    private_pem: str  # PKCS #8, unencrypted: the signer reads it from the database
    public: str  # the TXT record's `p=` value


@dataclass(frozen=True)
class PublishedKey:
    """One TXT record a domain must publish: `name` (A-label) IN TXT `value`."""

    selector: str
    name: str
    value: str


def generate(algorithm: Algorithm, *, rsa_bits: int = 2048) -> KeyPair:
    """A new key pair. RSA 2048 costs about 50-100 ms of CPU (see README); Ed25519 nothing."""
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        # p= of an RSA key is the DER SubjectPublicKeyInfo (RFC 6376 3.6.1).
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        private = ed25519.Ed25519PrivateKey.generate()
        # p= of an Ed25519 key is the bare 32-byte public key (RFC 8463 4).
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return KeyPair(algorithm=algorithm, private_pem=pem, public=base64.b64encode(public).decode())


def _letters() -> Iterator[str]:
    """a, b, ..., z, aa, ab, ..., zz, aaa, ...: the rotations of a year."""
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    for length in count(1):
        for letters in product(alphabet, repeat=length):
            yield "".join(letters)


def next_selector(*, prefix: str, year: int, algorithm: Algorithm, taken: Collection[str]) -> str:
    """The first free selector `<prefix><year><letter>` of a domain (`-ed` for Ed25519).

    A selector is never used twice for one domain: a verifier (or a DNS cache) may still
    hold the old record under that name. One letter per rotation, the same letter for the
    RSA and the Ed25519 key made together.
    """
    for letter in _letters():  # pragma: no branch - the generator never ends
        base = f"{prefix}{year}{letter}"
        if base not in taken and f"{base}-ed" not in taken:
            return base if algorithm == "rsa" else f"{base}-ed"
    raise AssertionError("unreachable")


def txt_value(algorithm: str, public: str) -> str:
    return f"v=DKIM1; k={algorithm}; p={public}"


def record_name(selector: str, domain: str) -> str:
    """Where the TXT record lives; `domain` is the A-label."""
    return f"{selector}.{DOMAINKEY}.{domain}"


def published_key(*, selector: str, domain: str, algorithm: str, public: str) -> PublishedKey:
    return PublishedKey(
        selector=selector, name=record_name(selector, domain), value=txt_value(algorithm, public)
    )


def state(
    *, retired_at: dt.datetime | None, published_until: dt.datetime | None, now: dt.datetime
) -> Literal["active", "overlap", "expired"]:
    """`active`: signs and is published; `overlap`: retired by a rotation, still published
    so that mail signed before verifies; `expired`: no longer published (removed soon)."""
    if retired_at is None:
        return "active"
    if published_until is not None and published_until > now:
        return "overlap"
    return "expired"
