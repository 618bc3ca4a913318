"""The difference between a sync document and the current state: a plan, computed purely.

The plan is a list of the bulk writer's `Change`s (`domain.addresses.schemas`).

`make_plan` compares what the document wants with what the database holds for the domains
the document covers and lists only real differences, so applying the plan writes only
changed rows and a document that matches the state produces no changes at all.

Comparison rules (what counts as a "real difference"):
- an account: its password hash, compared as an exact string; its spoofing whitelist as a
  set of entries and its subaddress switch, each only where the document gives it (left
  out, it is kept). A mailbox's own forwarding list (keep a copy and forward, set through
  the API) is not part of the document and is ignored; so are antispam, quota and
  autoresponder.
- an alias: its set of recipients. The same recipients in another order are no change, as
  delivery does not depend on the order.
- an address that changes kind (account <-> alias) becomes a delete followed by a create,
  not an update. The two kinds are different objects in the domain model (a mailbox has
  stored mail, app passwords, an autoresponder, a quota; a forward has none of that), so
  nothing of the old one should silently survive; and turning a mailbox into an alias loses
  the mailbox, which the mass-deletion guard must see as a deletion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Final

from postmeister.domain.addresses.schemas import Action, Change, CurrentAddress, Kind
from postmeister.sync.document import AccountEntry, SyncDocument

__all__ = ["Action", "Change", "CurrentAddress", "Kind", "Plan", "make_plan"]

# Deletes come first so that a delete + create of one address (a change of kind), and any
# unique constraint on addresses, work in plan order.
_ACTION_ORDER: Final[dict[str, int]] = {"delete": 0, "update": 1, "create": 2}


@dataclass(frozen=True)
class Plan:
    """The changes, sorted: deletes, then updates, then creates; each by domain, local part.

    `unchanged` counts the document's addresses that already match the state.
    """

    changes: tuple[Change, ...]
    unchanged: int

    @cached_property
    def created(self) -> int:
        return self._count("create")

    @cached_property
    def updated(self) -> int:
        return self._count("update")

    @cached_property
    def deleted(self) -> int:
        return self._count("delete")

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def deletion_share(self, total_managed: int) -> float:
        """Deleted addresses as a share (0.0..1.0) of the `total_managed` addresses there are.

        Includes the deletes of kind changes (see the module docstring). With nothing
        managed yet, nothing can be deleted, and the share is 0.0.
        """
        if total_managed <= 0:
            return 0.0
        return self.deleted / total_managed

    def _count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action == action)


def make_plan(
    document: SyncDocument, current: Mapping[str, CurrentAddress], *, unchanged: int = 0
) -> Plan:
    """The changes that make `current` equal to what `document` says.

    `current` maps canonical address (`local@a-label`) to its stored state and must hold the
    addresses of exactly the domains the document covers: every one of them that the
    document does not list is planned for deletion. An address of another domain is a
    caller bug and raises `ValueError` (rather than deleting it, or silently skipping it).
    `unchanged` counts addresses already known to match (of domains left out of `document`).
    """
    changes: list[Change] = []
    wanted: set[str] = set()
    for domain, entry in document.domains.items():
        suffix = "@" + domain
        for account in entry.accounts:
            address = account.local_part + suffix
            wanted.add(address)
            have = current.get(address)
            if have is not None and have.kind == "mailbox":
                change = _account_update(address, account, have)
                if change is None:
                    unchanged += 1
                else:
                    changes.append(change)
                continue
            if have is not None:
                changes.append(_deletion(address, have.kind))
            changes.append(
                Change(
                    "create",
                    address,
                    "mailbox",
                    account.password_hash,
                    (),
                    subaddress_extension=bool(account.subaddress_extension),
                    sender_patterns=account.spoofing_whitelist or (),
                )
            )
        for alias in entry.aliases:
            address = alias.local_part + suffix
            wanted.add(address)
            have = current.get(address)
            if have is not None and have.kind == "forward":
                if have.targets == alias.targets or set(have.targets) == set(alias.targets):
                    unchanged += 1
                    continue
                action: Action = "update"
            else:
                if have is not None:
                    changes.append(_deletion(address, have.kind))
                action = "create"
            changes.append(Change(action, address, "forward", None, alias.targets))
    for address, have in current.items():
        if address in wanted:
            continue
        if address.rpartition("@")[2] not in document.domains:
            raise ValueError(f"{address} is not in a domain the document covers")
        changes.append(_deletion(address, have.kind))
    changes.sort(key=_order)
    return Plan(tuple(changes), unchanged)


def _account_update(address: str, account: AccountEntry, have: CurrentAddress) -> Change | None:
    """The update that makes the stored mailbox `have` what `account` says, or None."""
    patterns = account.spoofing_whitelist
    if patterns is not None and set(patterns) == set(have.sender_patterns):
        patterns = None
    subaddress = account.subaddress_extension
    if subaddress is None:
        subaddress = have.subaddress_extension
    if (
        have.password_hash == account.password_hash
        and patterns is None
        and subaddress == have.subaddress_extension
    ):
        return None
    return Change(
        "update",
        address,
        "mailbox",
        account.password_hash,
        (),
        subaddress_extension=subaddress,
        sender_patterns=patterns,
    )


def _deletion(address: str, kind: Kind) -> Change:
    return Change("delete", address, kind, None, ())


def _order(change: Change) -> tuple[int, str, str]:
    local_part, _, domain = change.address.rpartition("@")
    return _ACTION_ORDER[change.action], domain, local_part
