"""The canonical form of domains and addresses: the one definition the store, the API, sync
and both milters share, so that a name typed, synced or sent in a header always meets the
same key.

- A domain is its IDNA 2008 A-label after UTS #46 mapping (non-transitional), lowercase,
  without a trailing dot: `STRAßE.example`, `straße.example` and `xn--strae-oqa.example` are
  all `xn--strae-oqa.example`; `strasse.example` is another domain. Python's built-in `idna`
  codec is IDNA 2003 (it maps ß to ss and ς to σ) and must never be used for this: it would
  make one customer's domain another's.
- A local part is an ASCII dot-atom, lowercased. Mail servers here do not speak SMTPUTF8,
  so a non-ASCII local part cannot name a hosted address; it is refused rather than case
  folded (`str.lower` maps the Kelvin sign to `k`, which would turn an unknown name into a
  hosted one).
- An address is `local@domain` from the two above.

Whatever cannot be brought into this form raises `NotCanonical`; callers refuse it (the API
with a validation error, the sender milter with 550) instead of guessing. This module has no
dependency besides `idna`, so that the milters can use it without the store.
"""

from __future__ import annotations

import re

import idna

# RFC 5322 atext; a dot-atom is atext runs joined by single dots.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")


class NotCanonical(ValueError):
    """A name that has no canonical form; `reason` says why, for an error message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def canonical_domain(text: str) -> str:
    """The lowercase UTS #46 / IDNA 2008 A-label of `text` (no trailing dot)."""
    name = text.strip().rstrip(".")
    if not name:
        raise NotCanonical("a domain name is required")
    try:
        return idna.encode(name, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise NotCanonical(str(exc) or "not a valid domain name") from exc


def canonical_local_part(text: str) -> str:
    """The lowercase form of an ASCII dot-atom local part."""
    if not text:
        raise NotCanonical("the part before the @ is required")
    if not text.isascii() or _DOT_ATOM.fullmatch(text) is None:
        raise NotCanonical(f"{text!r} is not an ASCII dot-atom local part")
    return text.lower()


def split_address(text: str) -> tuple[str, str]:
    """The canonical local part and domain of `local@domain`."""
    address = text.strip()
    local, at, domain = address.rpartition("@")
    if not at:
        raise NotCanonical(f"{text!r} is not an email address")
    return canonical_local_part(local), canonical_domain(domain)


def canonical_address(text: str) -> str:
    """`local@domain` in canonical form."""
    local, domain = split_address(text)
    return f"{local}@{domain}"
