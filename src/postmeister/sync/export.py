"""A customer's current state as a Basic JSON document (`postmeister export`).

Export then sync of the result is a no-op: mailboxes become accounts with their stored
hash, spoofing whitelist and subaddress switch (both always written, as the hosting panel
writes them), forwards become aliases with their recipients. What the format cannot carry
(a mailbox's own forwarding, antispam, quota, autoresponder) is not exported and, because a
sync keeps those fields on update, not lost either.

Hashes are exported bare (`$6$…`), the only form stored: a document that gave them behind a
Dovecot prefix (`{SHA512-CRYPT}$6$…`) is stored without it, so syncing that document again,
or its export, plans no change.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from postmeister.domain.access import Actor, visible_domains
from postmeister.domain.addresses.bulk import load_current
from postmeister.sync.document import AccountEntry, AliasEntry, DomainEntry, SyncDocument


def export_customer(session: Session, customer_id: int) -> SyncDocument:
    actor = Actor.for_customer(customer_id)
    domains = list(session.scalars(visible_domains(actor)))
    accounts: dict[str, list[AccountEntry]] = {d.name: [] for d in domains}
    aliases: dict[str, list[AliasEntry]] = {d.name: [] for d in domains}
    for address, state in load_current(session, actor, [d.id for d in domains]).items():
        local, _, domain = address.rpartition("@")
        if state.kind == "mailbox" and state.password_hash:
            accounts[domain].append(
                AccountEntry(
                    local, state.password_hash, state.sender_patterns, state.subaddress_extension
                )
            )
        elif state.kind == "forward":
            aliases[domain].append(AliasEntry(local, state.targets))
    return SyncDocument(
        {
            d.name: DomainEntry(d.name, tuple(accounts[d.name]), tuple(aliases[d.name]))
            for d in domains
        }
    )
