"""A software WebAuthn authenticator for the service and HTTP tests: it answers the options
the server sends with what a browser would post after a real ES256 key (P-256) signed them,
in the JSON form the page's script builds. Attestation "none", as the server asks for.

The browser test uses Chromium's own virtual authenticator instead; this one lets the
faster tests change what a real key never would (its counter, the origin, the challenge).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

_USER_PRESENT = 0x01
_USER_VERIFIED = 0x04
_ATTESTED = 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class SoftAuthenticator:
    """One credential on one authenticator; `counter` is its sign count."""

    origin: str
    counter: int = 0
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
             -3: numbers.y.to_bytes(32, "big")}
        )  # fmt: skip

    def _client_data(self, kind: str, options: dict[str, Any]) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": options["challenge"], "origin": self.origin,
             "crossOrigin": False}
        ).encode()  # fmt: skip

    def create(self, options_json: str, *, rp_id: str | None = None) -> str:
        """The answer to `navigator.credentials.create()` with these options."""
        options = json.loads(options_json)
        rp_hash = hashlib.sha256((rp_id or options["rp"]["id"]).encode()).digest()
        auth_data = (
            rp_hash
            + bytes([_USER_PRESENT | _USER_VERIFIED | _ATTESTED])
            + struct.pack(">I", self.counter)
            + bytes(16)  # AAGUID: none
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + self._cose_key()
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps({
            "id": self.id, "rawId": self.id, "type": "public-key", "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(self._client_data("webauthn.create", options)),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
        })  # fmt: skip

    def get(self, options_json: str, *, rp_id: str | None = None) -> str:
        """The answer to `navigator.credentials.get()`; the counter goes up first (unless
        the test set it back, as a cloned key would). It answers even when the server did
        not list its credential: so does a client that means harm."""
        options = json.loads(options_json)
        self.counter += 1
        rp_hash = hashlib.sha256((rp_id or options["rpId"]).encode()).digest()
        auth_data = (
            rp_hash + bytes([_USER_PRESENT | _USER_VERIFIED]) + struct.pack(">I", self.counter)
        )
        client_data = self._client_data("webauthn.get", options)
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return json.dumps({
            "id": self.id, "rawId": self.id, "type": "public-key", "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": None,
            },
        })  # fmt: skip
