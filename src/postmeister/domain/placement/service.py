"""Mail nodes and where each mailbox lives (issue 17, placement).

Admins only: to a customer every node and every placement is `NotFound`, exactly like a
missing one (the customers' convention, `domain.customers.service`): which machines hold
whose mail is the operator's business.

Every write path that creates a mailbox homes it here: the address service through
`home_for_new_mailbox` (an SQL expression inside the INSERT, so a single-node installation
pays no extra statement) and the sync writer through `homes_for_new_mailboxes` (one query
per batch). Both apply `rules.least_used`'s order. Changing a home is the switch only: one
UPDATE in the caller's transaction, audited; moving the mail with it is `placement.move`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postmeister.domain.access import Actor
from postmeister.domain.audit import service as audit
from postmeister.domain.placement import rules
from postmeister.errors import AlreadyExists, InvalidInput, NotFound
from postmeister.models import Address, Domain, MailNode

NODE = "mail node"
PLACEMENT = "mailbox placement"


def _mailboxes_on(node: Any) -> Any:
    # Only mailboxes ever get a home (forwards are created without one and an address never
    # changes kind in place), so counting `home_node_id` alone is the count of mailboxes, and
    # it is answered from the index on that column without reading a row. Still a count:
    # with 100,000 mailboxes on two nodes a placement takes 7 ms on SQLite and 9 ms on a
    # vacuumed PostgreSQL (108 ms and 38 ms with `kind` in the filter).
    return (
        select(func.count())
        .select_from(Address)
        .where(Address.home_node_id == node.id)
        .correlate(node)
        .scalar_subquery()
    )


def home_for_new_mailbox() -> Any:
    """The id of the node a new mailbox goes to, as a scalar subquery for its INSERT: the
    least used active node, ties by name (`rules.least_used`); NULL when none is active."""
    return (
        select(MailNode.id)
        .where(MailNode.state == "active")
        .order_by(_mailboxes_on(MailNode), MailNode.name)
        .limit(1)
        .scalar_subquery()
    )


def active_loads(session: Session) -> list[rules.NodeLoad]:
    rows = session.execute(
        select(MailNode.id, MailNode.name, _mailboxes_on(MailNode)).where(
            MailNode.state == "active"
        )
    )
    return [rules.NodeLoad(node_id, name, count) for node_id, name, count in rows]


def homes_for_new_mailboxes(session: Session, count: int) -> list[int | None]:
    """The home node of each of `count` new mailboxes (the sync writer's batches)."""
    if count == 0:
        return []
    return rules.least_used(active_loads(session), count)


# ------------------------------------------------------------------------------ as an actor


def _require_admin(actor: Actor, kind: str, key: str) -> None:
    if not actor.is_admin:
        raise NotFound(kind, key)


@dataclass(frozen=True)
class NodeUsage:
    node: MailNode
    mailboxes: int


def list_nodes(session: Session, actor: Actor) -> list[NodeUsage]:
    _require_admin(actor, NODE, "*")
    rows = session.execute(select(MailNode, _mailboxes_on(MailNode)).order_by(MailNode.name))
    return [NodeUsage(node, count) for node, count in rows]


def find_node(session: Session, actor: Actor, name: str) -> MailNode:
    _require_admin(actor, NODE, name)
    node = session.scalar(select(MailNode).where(MailNode.name == name))
    if node is None:
        raise NotFound(NODE, name)
    return node


def describe(node: MailNode) -> dict[str, Any]:
    """The node as the audit trail and the CLI show it."""
    return {
        "name": node.name,
        "address": node.address,
        "lmtp_port": node.lmtp_port,
        "state": node.state,
    }


def _audit_node(
    session: Session, node: MailNode, action: str, before: dict[str, Any] | None
) -> None:
    # No customer: the event is the operator's, never in a customer's trail or webhooks.
    audit.record(
        session,
        audit.event(
            resource="mail_node",
            resource_id=node.id,
            action=action,
            customer_id=None,
            name=node.name,
            before=before,
            after=describe(node),
        ),
    )


def register_node(
    session: Session,
    actor: Actor,
    *,
    name: str,
    address: str,
    lmtp_port: int = 24,
    state: str = "active",
) -> MailNode:
    _require_admin(actor, NODE, name)
    actor.require_write()
    problems = rules.node_problems(name=name, address=address, lmtp_port=lmtp_port, state=state)
    if problems:
        raise InvalidInput(problems)
    if session.scalar(select(MailNode.id).where(MailNode.name == name)) is not None:
        raise AlreadyExists(NODE, name)
    node = MailNode(name=name, address=address, lmtp_port=lmtp_port, state=state)
    session.add(node)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same name
        raise AlreadyExists(NODE, name) from exc
    _audit_node(session, node, "created", None)
    return node


def set_node_state(session: Session, actor: Actor, node: MailNode, state: str) -> MailNode:
    """`draining`: the node keeps serving its mailboxes but takes no new ones."""
    actor.require_write()
    problems = rules.state_problems(state)
    if problems:
        raise InvalidInput(problems)
    before = describe(node)
    node.state = state
    session.flush()
    _audit_node(session, node, "updated", before)
    return node


@dataclass(frozen=True)
class Placement:
    address_id: int
    address: str
    customer_id: int
    home_node: str | None


def find_placement(session: Session, actor: Actor, address_id: int) -> Placement:
    """Where a mailbox lives; forwards have no home (NotFound, like a missing mailbox)."""
    _require_admin(actor, PLACEMENT, str(address_id))
    row = session.execute(
        select(Address.id, Address.address, Domain.customer_id, MailNode.name)
        .join(Domain, Domain.id == Address.domain_id)
        .outerjoin(MailNode, MailNode.id == Address.home_node_id)
        .where(Address.id == address_id, Address.kind == "mailbox")
    ).one_or_none()
    if row is None:
        raise NotFound(PLACEMENT, str(address_id))
    return Placement(*row)


def move_home(session: Session, actor: Actor, address_id: int, node_name: str) -> Placement:
    """Switch a mailbox's home to `node_name` (an active node): from the next SMTP delivery
    and IMAP/POP3 login on, every node sends it there. The mail already stored on the old
    home is NOT copied here: `placement.move` copies it around this switch."""
    actor.require_write()
    current = find_placement(session, actor, address_id)
    node = find_node(session, actor, node_name)
    if node.state != "active":
        raise InvalidInput.single("home_node", f"node {node.name!r} is {node.state}", "state")
    if current.home_node == node.name:
        return current
    # One UPDATE: the data plane sees the old home or the new one, never a mix.
    session.execute(
        update(Address)
        .where(Address.id == address_id, Address.kind == "mailbox")
        .values(home_node_id=node.id),
        execution_options={"synchronize_session": "fetch"},
    )
    audit.record(
        session,
        audit.event(
            resource="mailbox_placement",
            resource_id=address_id,
            action="updated",
            customer_id=None,
            name=current.address,
            before={"home_node": current.home_node},
            after={"home_node": node.name},
        ),
    )
    return Placement(current.address_id, current.address, current.customer_id, node.name)
