"""What the address services take and give: plain dataclasses, no rules, no SQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, Literal, NamedTuple, TypeAlias, TypeVar, Union

from postmeister.models import Address

Kind = Literal["mailbox", "forward"]
KINDS: Final = ("mailbox", "forward")
ANTISPAM_POLICIES: Final = ("reject", "junk-folder", "subject-rewrite", "none")


class _Unset(Enum):
    UNSET = "unset"


UNSET: Final = _Unset.UNSET
T = TypeVar("T")
Maybe: TypeAlias = Union[T, _Unset]  # noqa: UP007 - the | form cannot make a generic alias


@dataclass(frozen=True)
class AutoresponderChanges:
    text: Maybe[str] = UNSET
    active: Maybe[bool] = UNSET
    activates: Maybe[dt.date | None] = UNSET
    expires: Maybe[dt.date | None] = UNSET


@dataclass(frozen=True)
class AddressChanges:
    """A partial update: UNSET fields stay as they are."""

    description: Maybe[str | None] = UNSET
    antispam: Maybe[str] = UNSET
    forward_to: Maybe[list[str]] = UNSET
    password: Maybe[str] = UNSET  # plain text, checked against the policy
    spoofing_whitelist: Maybe[list[str]] = UNSET
    submission_disabled: Maybe[bool] = UNSET
    subaddress_extension: Maybe[bool] = UNSET
    quota_bytes: Maybe[int | None] = UNSET
    autoresponder: Maybe[AutoresponderChanges] = UNSET


@dataclass(frozen=True)
class NewAddress:
    local_part: str
    domain: str
    kind: Kind
    description: str | None = None
    antispam: str = "reject"
    forward_to: list[str] = field(default_factory=list)
    # Plain text; None on a mailbox means "generate one" (returned once in `Created`).
    password: str | None = None
    spoofing_whitelist: list[str] = field(default_factory=list)
    submission_disabled: bool = False
    subaddress_extension: bool = False
    # None: unlimited when an admin creates the mailbox; for a customer, the configured
    # default maximum (see `rules.quota_problems`).
    quota_bytes: int | None = None


@dataclass(frozen=True)
class Created:
    address: Address
    generated_password: str | None


@dataclass(frozen=True)
class AddressPage:
    """One keyset page of addresses in id order, and whether more lie on either side."""

    addresses: list[Address]
    more_before: bool
    more_after: bool


class CurrentAddress(NamedTuple):
    """An address as stored, as the bulk writer reads it. `password_hash`,
    `subaddress_extension` and `sender_patterns` (the spoofing whitelist, in order) are for
    mailboxes; `targets` are recipients. A named tuple: a sync reads one per stored address
    (a frozen dataclass took three times as long to build)."""

    address: str
    kind: Kind
    password_hash: str | None
    targets: tuple[str, ...]
    subaddress_extension: bool = False
    sender_patterns: tuple[str, ...] = ()


Action = Literal["create", "update", "delete"]


@dataclass(frozen=True, slots=True)
class Change:
    """One address for the bulk writer to create, update or delete.

    For a mailbox, `password_hash` and `subaddress_extension` are the values to store,
    `sender_patterns` the complete new spoofing whitelist or None to leave it as it is, and
    `targets` is always empty: the bulk writer never touches a mailbox's own forwarding. For a
    forward, `targets` is the complete new recipient list (in order) and `password_hash` is
    None. A delete carries only `address` and the `kind` being deleted.
    """

    action: Action
    address: str
    kind: Kind
    password_hash: str | None
    targets: tuple[str, ...]
    subaddress_extension: bool = False
    sender_patterns: tuple[str, ...] | None = None

    @property
    def local_part(self) -> str:
        return self.address.rpartition("@")[0]

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]
