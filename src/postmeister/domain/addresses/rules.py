"""Every rule an address must meet, as pure checks: no session, no SQL.

The per-address service (`service.py`, behind both API dialects and the CLI), the sync
document parser and the sync bulk writer (`bulk.py`) all call these functions, so a rule
and its `rule` code exist once: the same input is refused with the same code whichever
way it arrives. What only the database can answer (is this domain another customer's, how
many addresses does the package hold) is asked by the callers, through `access.py`, and
judged here.

Each check returns the problems it found (`FieldProblem`, with the caller's field name)
rather than raising, so that a request breaking several rules is reported in full.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

from postmeister.domain.addresses.schemas import ANTISPAM_POLICIES, KINDS
from postmeister.domain.addresses.syntax import MAX_ADDRESS_OCTETS, parse_address
from postmeister.errors import AlreadyExists, FieldProblem, InvalidInput

MAX_DESCRIPTION: Final = 1000
MAX_FORWARD_TARGETS: Final = 100
MAX_AUTORESPONDER_TEXT: Final = 65536
MAX_QUOTA_BYTES: Final = 2**50  # 1 PiB: far above any mailbox, far below the BIGINT range


class Rule:
    """The `rule` codes of `FieldProblem`: the hosting dialect shows them as error `code`s,
    the controller dialect as `rule`, sync in its run record."""

    ANTISPAM: Final = "antispam"
    CHARSET: Final = "charset"
    DUPLICATE: Final = "duplicate"
    EXISTS: Final = "exists"
    FOREIGN_SENDER: Final = "foreign_sender"
    KIND: Final = "kind"
    LENGTH: Final = "length"
    LOOP: Final = "loop"
    MAILBOX_ONLY: Final = "mailbox_only"
    MAX_ADDRESSES: Final = "max_addresses"
    MAX_APP_PASSWORDS: Final = "max_app_passwords"
    MAX_MAILBOXES: Final = "max_mailboxes"
    MAX_QUOTA_BYTES: Final = "max_quota_bytes"
    MAX_STORAGE_BYTES: Final = "max_storage_bytes"
    QUOTA_LIMIT: Final = "quota_limit"
    RANGE: Final = "range"
    REQUIRED: Final = "required"


class AddressExists(AlreadyExists):
    """The address exists already (possibly as the other kind)."""

    rule: ClassVar[str] = Rule.EXISTS

    def __init__(self, address: str, kind: str | None = None) -> None:
        super().__init__("address", address, exists_detail(address, kind) if kind else None)


def exists_detail(address: str, kind: str) -> str:
    what = "a mailbox (account)" if kind == "mailbox" else "a forward (alias)"
    return f"{address} already exists as {what}"


# ---------------------------------------------------------------------------- package limits


@dataclass(frozen=True)
class PackageLimits:
    """A package's limits; None is no limit (`models.Package`)."""

    max_addresses: int | None = None
    max_mailboxes: int | None = None
    max_storage_bytes: int | None = None  # the sum of its mailboxes' quotas
    max_quota_bytes: int | None = None  # of one mailbox
    max_app_passwords: int | None = None  # of one mailbox


@dataclass(frozen=True)
class PackageUsage:
    """What a package holds, as its limits count it. A mailbox without a quota may fill any
    storage, so it is counted apart (`unlimited_mailboxes`) and breaks a storage limit."""

    addresses: int = 0
    mailboxes: int = 0
    storage_bytes: int = 0
    unlimited_mailboxes: int = 0

    def __add__(self, other: PackageUsage) -> PackageUsage:
        return PackageUsage(
            self.addresses + other.addresses,
            self.mailboxes + other.mailboxes,
            self.storage_bytes + other.storage_bytes,
            self.unlimited_mailboxes + other.unlimited_mailboxes,
        )

    def __neg__(self) -> PackageUsage:
        return PackageUsage(
            -self.addresses, -self.mailboxes, -self.storage_bytes, -self.unlimited_mailboxes
        )


def usage_of(kind: str, quota_bytes: int | None) -> PackageUsage:
    """What one address counts against its package."""
    if kind != "mailbox":
        return PackageUsage(addresses=1)
    if quota_bytes is None:
        return PackageUsage(addresses=1, mailboxes=1, unlimited_mailboxes=1)
    return PackageUsage(addresses=1, mailboxes=1, storage_bytes=quota_bytes)


def package_problems(
    limits: PackageLimits, before: PackageUsage, after: PackageUsage, *, field: str
) -> list[FieldProblem]:
    """The limits that going from `before` to `after` breaks, one problem each, its `rule`
    the limit's name. Only growth is refused: a package already over a lowered limit can
    still change or delete what it has, as long as it does not grow past the limit."""
    problems: list[FieldProblem] = []

    def grows_past(limit: int | None, old: int, new: int) -> bool:
        return limit is not None and new > old and new > limit

    if grows_past(limits.max_addresses, before.addresses, after.addresses):
        message = f"the package allows at most {limits.max_addresses} addresses"
        problems.append(
            FieldProblem(field, f"{message}; it would hold {after.addresses}", Rule.MAX_ADDRESSES)
        )
    if grows_past(limits.max_mailboxes, before.mailboxes, after.mailboxes):
        message = f"the package allows at most {limits.max_mailboxes} mailboxes"
        problems.append(
            FieldProblem(field, f"{message}; it would hold {after.mailboxes}", Rule.MAX_MAILBOXES)
        )
    storage = limits.max_storage_bytes
    if storage is not None:
        if after.unlimited_mailboxes > 0 and after.unlimited_mailboxes > before.unlimited_mailboxes:
            problems.append(
                FieldProblem(
                    field,
                    f"the package's storage is {storage} bytes ({_gib(storage)}) for all its "
                    "mailboxes together, so each needs a quota",
                    Rule.MAX_STORAGE_BYTES,
                )
            )
        elif grows_past(storage, before.storage_bytes, after.storage_bytes):
            problems.append(
                FieldProblem(
                    field,
                    f"the package's storage is {storage} bytes ({_gib(storage)}) for all its "
                    f"mailboxes' quotas together; they would need {after.storage_bytes}",
                    Rule.MAX_STORAGE_BYTES,
                )
            )
    return problems


def package_quota_problems(value: int | None, limits: PackageLimits) -> list[FieldProblem]:
    """One mailbox's quota against the package's `max_quota_bytes` (for admins too)."""
    limit = limits.max_quota_bytes
    if limit is None or (value is not None and value <= limit):
        return []
    asked = "no quota (unlimited)" if value is None else f"{value} bytes"
    message = f"the package allows a mailbox at most {limit} bytes ({_gib(limit)}), not {asked}"
    return [FieldProblem("quota", message, Rule.MAX_QUOTA_BYTES)]


def default_quota(actor_limit: int | None, limits: PackageLimits) -> int | None:
    """The quota of a new mailbox created without one: the smaller of what the caller may
    set (`quota_problems`' limit; None for admins) and the package's per-mailbox limit."""
    bounds = [b for b in (actor_limit, limits.max_quota_bytes) if b is not None]
    return min(bounds) if bounds else None


def app_password_problems(count_after: int, limits: PackageLimits) -> list[FieldProblem]:
    limit = limits.max_app_passwords
    if limit is None or count_after <= limit:
        return []
    message = f"the package allows at most {limit} application passwords per mailbox"
    return [FieldProblem("application_password", message, Rule.MAX_APP_PASSWORDS)]


@dataclass(frozen=True)
class DomainUsage:
    """What a domain holds, as the limits of a package it moves into judge it."""

    usage: PackageUsage
    largest_quota_bytes: int | None  # of its mailboxes with a quota; None: none has one
    most_app_passwords: int  # of one of its mailboxes


def move_problems(
    limits: PackageLimits, target: PackageUsage, domain: DomainUsage
) -> list[FieldProblem]:
    """The limits of the target package (holding `target` now) that taking in the domain
    would break: the same judgements as for each address written into it."""
    problems = package_problems(limits, target, target + domain.usage, field="package_id")
    if domain.usage.unlimited_mailboxes:
        problems.extend(package_quota_problems(None, limits))
    elif domain.largest_quota_bytes is not None:
        problems.extend(package_quota_problems(domain.largest_quota_bytes, limits))
    problems.extend(app_password_problems(domain.most_app_passwords, limits))
    return [FieldProblem("package_id", p.message, p.rule) for p in problems]


def check_text(value: str, field: str, *, multiline: bool) -> list[FieldProblem]:
    """Free text must be storable and displayable: no control characters (line breaks and
    tabs allowed in `multiline` text) and no lone UTF-16 surrogates, which JSON can carry
    but neither UTF-8 nor the databases can."""
    allowed = "\t\n\r" if multiline else ""
    if any(
        (ord(c) < 0x20 and c not in allowed) or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000
        for c in value
    ):
        what = "control characters other than line breaks" if multiline else "control characters"
        return [
            FieldProblem(field, f"must not contain {what} or unpaired surrogates", Rule.CHARSET)
        ]
    return []


def kind_problems(kind: str) -> list[FieldProblem]:
    if kind in KINDS:
        return []
    return [FieldProblem("address_type", "must be mailbox or forward", Rule.KIND)]


def address_problems(address: str, *, field: str = "address") -> list[FieldProblem]:
    """The whole canonical address must fit SMTP's limit (RFC 5321 section 4.5.3.1)."""
    if len(address.encode()) > MAX_ADDRESS_OCTETS:
        return [
            FieldProblem(field, f"address longer than {MAX_ADDRESS_OCTETS} octets", Rule.LENGTH)
        ]
    return []


def antispam_problems(value: str, kind: str) -> list[FieldProblem]:
    if value not in ANTISPAM_POLICIES:
        message = f"must be one of {', '.join(ANTISPAM_POLICIES)}"
        return [FieldProblem("antispam", message, Rule.ANTISPAM)]
    if value == "junk-folder" and kind != "mailbox":
        message = "junk-folder is only possible for mailboxes"
        return [FieldProblem("antispam", message, Rule.ANTISPAM)]
    return []


def description_problems(value: str | None) -> list[FieldProblem]:
    if value is None:
        return []
    problems = []
    if len(value) > MAX_DESCRIPTION:
        problems.append(
            FieldProblem("description", f"longer than {MAX_DESCRIPTION} characters", Rule.LENGTH)
        )
    problems.extend(check_text(value, "description", multiline=True))
    return problems


def mailbox_only(name: str, kind: str) -> list[FieldProblem]:
    if kind == "mailbox":
        return []
    return [FieldProblem(name, "only mailboxes have this setting", Rule.MAILBOX_ONLY)]


def _canonical_address(value: str, field: str) -> str:
    return parse_address(value, field=field).address


def check_targets(
    values: Sequence[str],
    *,
    own: str | None,
    kind: str,
    field: str = "forward_to",
    per_item: bool = True,
    parse: Callable[[str, str], str] = _canonical_address,
) -> tuple[list[str], list[FieldProblem]]:
    """The canonical forward targets, in order, and every rule they break.

    Rules: at most `MAX_FORWARD_TARGETS` (a longer list is not looked at further, so ten
    thousand targets cost one problem, not ten thousand parses); each a valid address
    (`parse(value, field)` returns its canonical form or raises `InvalidInput`); none
    twice; not the address itself (`own`); at least one for a forward.
    Problems about one entry are reported at `field[i]`, or at `field` when not `per_item`
    (the Basic JSON `to` is one string); problems about the list at `field`.
    """
    if len(values) > MAX_FORWARD_TARGETS:
        message = f"more than {MAX_FORWARD_TARGETS} targets ({len(values)})"
        return [], [FieldProblem(field, message, Rule.LENGTH)]
    targets: list[str] = []
    problems: list[FieldProblem] = []
    for index, value in enumerate(values):
        item_field = f"{field}[{index}]" if per_item else field
        try:
            target = parse(value, item_field)
        except InvalidInput as exc:
            problems.extend(exc.problems)
            continue
        if target in targets:
            problems.append(FieldProblem(item_field, f"{value!r} is listed twice", Rule.DUPLICATE))
            continue
        targets.append(target)
    if own is not None and own in targets:
        problems.append(FieldProblem(field, "an address cannot forward to itself", Rule.LOOP))
    if kind == "forward" and not values:
        problems.append(FieldProblem(field, "a forward needs at least one target", Rule.REQUIRED))
    return targets, problems


def quota_problems(value: int | None, *, limit: int | None) -> list[FieldProblem]:
    """A quota in bytes (None: unlimited). `limit` is the most this caller may set (None for
    admins): until packages carry quota limits, only an admin may go above the configured
    default maximum or remove the limit."""
    if value is not None and not 0 <= value <= MAX_QUOTA_BYTES:
        message = f"must be between 0 and {MAX_QUOTA_BYTES} bytes"
        return [FieldProblem("quota", message, Rule.RANGE)]
    if limit is not None and (value is None or value > limit):
        asked = "an unlimited quota" if value is None else f"a quota above {limit} bytes"
        message = f"{asked} needs an administrator; at most {limit} bytes ({_gib(limit)})"
        return [FieldProblem("quota", message, Rule.QUOTA_LIMIT)]
    return []


def _gib(value: int) -> str:
    return f"{value / 2**30:g} GiB"


def sender_domain(pattern: str) -> str | None:
    """The domain a canonical whitelist entry names: its own for `name@domain` or `domain`;
    None for `*`."""
    if pattern == "*":
        return None
    return pattern.rpartition("@")[2]


def foreign_sender_problems(
    patterns: Sequence[str], foreign_domains: Collection[str], *, field: str = "spoofing_whitelist"
) -> list[FieldProblem]:
    """Whitelist entries naming an address or domain that another customer hosts here.

    `foreign_domains` comes from `access.hosted_elsewhere`; `*` is allowed (the data plane
    excludes other customers' addresses when it looks `*` up). Which customer hosts it is
    not said.
    """
    problems = []
    for index, pattern in enumerate(patterns):
        if sender_domain(pattern) in foreign_domains:
            problems.append(
                FieldProblem(
                    f"{field}[{index}]",
                    f"{pattern} is hosted here by another customer; "
                    "only this customer's own addresses and domains (or *) may be listed",
                    Rule.FOREIGN_SENDER,
                )
            )
    return problems
