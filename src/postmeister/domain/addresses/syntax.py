"""Address and domain syntax: the one place where user-typed names become canonical keys.

Canonical forms are defined once, in `postmeister.canonical` (which the milters share): a
domain is its IDNA 2008 A-label (UTS #46 mapping), lowercase; an address is `local@domain`
with the local part lowercased (addresses are unique case-insensitively). This module adds
the validation rules around them and turns failures into `InvalidInput`.
Lengths are counted in octets of the canonical form: local part <= 64, address <= 254
(RFC 5321 section 4.5.3.1). Local parts are restricted to ASCII dot-atoms: the mail servers
do not enable SMTPUTF8, so an internationalised local part could not receive mail.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from postmeister.canonical import NotCanonical, canonical_domain, canonical_local_part
from postmeister.errors import InvalidInput

MAX_LOCAL_OCTETS = 64
MAX_ADDRESS_OCTETS = 254
MAX_DOMAIN_OCTETS = 253

# The local parts almost every mailbox has: letters and digits, single dots, hyphens,
# underscores or pluses between them. Every such string is a dot-atom that the full
# validator below accepts unchanged (tests/unit/test_address_fast_path.py checks the two
# agree), so it skips email_validator, the slowest step of parsing a large sync document.
_PLAIN_LOCAL_PART = re.compile(r"[A-Za-z0-9]+(?:[._+-][A-Za-z0-9]+)*")
# Distinct domain spellings kept with their A-label: a sync document names the same few
# domains in thousands of targets, and UTS #46 processing costs ~60 µs a name.
DOMAIN_CACHE_SIZE = 4096


@dataclass(frozen=True)
class ParsedAddress:
    local_part: str  # lowercase ASCII
    domain: str  # A-label, lowercase

    @property
    def address(self) -> str:
        return f"{self.local_part}@{self.domain}"


def normalise_domain(value: str, *, field: str = "domain") -> str:
    """Return the lowercase A-label of a domain name, or raise `InvalidInput`."""
    try:
        return _alabel(value)
    except _BadDomain as exc:
        raise InvalidInput.single(field, exc.message) from exc


class _BadDomain(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@functools.lru_cache(maxsize=DOMAIN_CACHE_SIZE)
def _alabel(value: str) -> str:
    """`normalise_domain` without the field: a pure function of the text, so its answers
    can be kept (`lru_cache` keeps no exceptions, so refusals are worked out every time)."""
    text = value.strip().rstrip(".")
    if not text:
        raise _BadDomain("a domain name is required")
    try:
        alabel = canonical_domain(text)
    except NotCanonical as exc:
        raise _BadDomain(f"{value!r} is not a valid domain name ({exc})") from exc
    if len(alabel) > MAX_DOMAIN_OCTETS:
        raise _BadDomain(f"domain name longer than {MAX_DOMAIN_OCTETS} octets")
    if "." not in alabel:
        raise _BadDomain(f"{value!r} is not a fully qualified domain name")
    if alabel.rsplit(".", 1)[1].isdigit():
        raise _BadDomain(f"{value!r} is not a domain name")
    return alabel


def parse_local_part(value: str, *, field: str = "name") -> str:
    """Validate a local part on its own (as the controller API's `name` field is)."""
    local = value.strip()
    if len(local) <= MAX_LOCAL_OCTETS and _PLAIN_LOCAL_PART.fullmatch(local):
        return local.lower()
    return _validated_local_part(value, local, field)


def _validated_local_part(value: str, local: str, field: str) -> str:
    """Every rule for a local part (`local` is `value` stripped), by the full validator."""
    if not local:
        raise InvalidInput.single(field, "the part before the @ is required")
    if "@" in local:
        raise InvalidInput.single(field, "must be only the part before the @")
    if "/" in local:
        # Valid in an address, but a local part names a directory of the mail store
        # (Dovecot's mail_home is <domain>/<local part>): "a/b" would live inside a's home.
        raise InvalidInput.single(
            field, "may not contain '/' (it would be a path on the mail store)"
        )
    # Reuse the full-address validator with a placeholder domain so the dot-atom rules
    # live in one maintained library rather than in a regex of ours.
    try:
        validate_email(
            f"{local}@example.com",
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
        )
    except EmailNotValidError as exc:
        raise InvalidInput.single(field, f"{value!r} is not a valid local part: {exc}") from exc
    try:
        lowered = canonical_local_part(local)
    except NotCanonical as exc:
        raise InvalidInput.single(field, f"{value!r} is not a valid local part: {exc}") from exc
    if len(lowered.encode()) > MAX_LOCAL_OCTETS:
        raise InvalidInput.single(field, f"longer than {MAX_LOCAL_OCTETS} octets")
    return lowered


def parse_address(value: str, *, field: str = "address") -> ParsedAddress:
    """Validate a full address and return its canonical parts."""
    local_part, domain, _ = _address_parts(value, field)
    return ParsedAddress(local_part, domain)


def parse_address_text(value: str, *, field: str = "address") -> str:
    """`parse_address(value).address` without building the parts: a sync document's
    recipients are parsed by the hundred thousand, and only their canonical text is kept."""
    return _address_parts(value, field)[2]


def _address_parts(value: str, field: str) -> tuple[str, str, str]:
    """The canonical local part, domain and address of `value`, by every address rule."""
    text = value.strip()
    if text.count("@") != 1:
        raise InvalidInput.single(field, f"{value!r} is not an email address")
    local, _, domain_text = text.partition("@")
    local_part = parse_local_part(local, field=field)
    domain = normalise_domain(domain_text, field=field)
    address = f"{local_part}@{domain}"
    if len(address.encode()) > MAX_ADDRESS_OCTETS:
        raise InvalidInput.single(field, f"address longer than {MAX_ADDRESS_OCTETS} octets")
    return local_part, domain, address


def parse_address_list(values: list[str], *, field: str) -> list[str]:
    """Validate a list of addresses; reject duplicates; return canonical addresses in order.

    Every problem is reported, each with its position (`to[2]`).
    """
    canonical: list[str] = []
    problems = []
    for index, item in enumerate(values):
        try:
            address = parse_address(item, field=f"{field}[{index}]").address
        except InvalidInput as exc:
            problems.extend(exc.problems)
            continue
        if address in canonical:
            problems.extend(
                InvalidInput.single(f"{field}[{index}]", f"{item!r} is listed twice").problems
            )
            continue
        canonical.append(address)
    if problems:
        raise InvalidInput(problems)
    return canonical


def split_comma_list(value: str) -> list[str]:
    """Split the controller API's comma-separated strings; blanks around commas are ignored."""
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_sender_pattern(value: str, *, field: str) -> str:
    """One spoofing-whitelist entry: `*`, a domain (any address in it) or one address."""
    text = value.strip()
    if text == "*":
        return "*"
    if "@" in text:
        return parse_address(text, field=field).address
    return normalise_domain(text, field=field)


def parse_sender_patterns(values: list[str], *, field: str) -> list[str]:
    """Validate a whole spoofing whitelist, reporting every bad entry; duplicates rejected."""
    patterns: list[str] = []
    problems = []
    for index, item in enumerate(values):
        entry_field = f"{field}[{index}]"
        try:
            pattern = parse_sender_pattern(item, field=entry_field)
        except InvalidInput as exc:
            problems.extend(exc.problems)
            continue
        if pattern in patterns:
            problems.extend(InvalidInput.single(entry_field, f"{item!r} is listed twice").problems)
            continue
        patterns.append(pattern)
    if problems:
        raise InvalidInput(problems)
    return patterns
