"""Moving a mailbox to another mail node without losing a message (issue 17, placement).

The node the mailbox moves to copies the mail itself, with Dovecot's own replication
(dsync: `doveadm sync` against the old node's doveadm server); this module is the order
of the steps, which is what makes the move lose nothing:

1. Sync while the old home still receives. Mail keeps arriving there; the new node gets a
   copy of everything stored so far, so the last step has little left to copy.
2. Switch the home (`service.move_home`: the one UPDATE the admin API uses, audited the
   same way), committed on its own: from now on Dovecot proxies every new login to the
   new home and Postfix delivers there.
3. Wait out the window in which a Postfix process may still deliver to the old home:
   each keeps its last address lookup for 30 s (README "Several mail nodes"), so a
   message resolved just before the switch can still land on the old node.
4. Sync again. `doveadm sync` is two-way: what arrived at the old home during steps 1-3
   is merged into the new one (and nothing the new one received is dropped). This last
   copy counts only once dsync reports no change during it (doveadm's exit code 0, not
   2); the first may end with changes left over, which the last one copies.

The old node's copy is left where it is: it is no longer shown to anyone (logins are
proxied to the new home), and removing it is the operator's decision once satisfied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from postmeister.db import advisory_key
from postmeister.domain.access import Actor
from postmeister.domain.addresses.syntax import parse_address
from postmeister.domain.placement import service
from postmeister.errors import Conflict, InvalidInput, NotFound
from postmeister.models import Address

# Postfix's address lookup cache (30 s) plus a margin for a delivery already under way.
ROUTING_WINDOW_SECONDS = 35.0


@dataclass(frozen=True)
class MovePlan:
    """What a move needs to know before it starts: the mailbox and where its mail is."""

    address_id: int
    address: str
    old_node: str
    old_address: str
    new_node: str


def plan_move(session: Session, actor: Actor, address: str, new_node: str) -> MovePlan:
    """Check that `address` is a mailbox homed on another active node than `new_node`."""
    try:
        canonical = parse_address(address).address  # any case, U-label or A-label domain
    except InvalidInput as exc:
        raise NotFound(service.PLACEMENT, address) from exc
    address_id = session.scalar(
        select(Address.id).where(Address.address == canonical, Address.kind == "mailbox")
    )
    if address_id is None:
        raise NotFound(service.PLACEMENT, address)
    current = service.find_placement(session, actor, address_id)
    target = service.find_node(session, actor, new_node)
    if target.state != "active":
        raise InvalidInput.single("home_node", f"node {target.name!r} is {target.state}", "state")
    if current.home_node is None:
        raise InvalidInput.single("home_node", "the mailbox has no home node yet", "unplaced")
    if current.home_node == target.name:
        raise InvalidInput.single("home_node", f"already homed on {target.name!r}", "same")
    old = service.find_node(session, actor, current.home_node)
    return MovePlan(address_id, current.address, old.name, old.address, target.name)


@dataclass(frozen=True)
class MoveSteps:
    """How each step is carried out (the CLI: doveadm subprocesses, its own transaction)."""

    sync: Callable[[bool], None]  # a two-way dsync between the two nodes; True: the last
    switch: Callable[[], None]  # `service.move_home`, committed
    wait: Callable[[float], None]
    progress: Callable[[str], None]


def run_move(plan: MovePlan, steps: MoveSteps, *, window: float = ROUTING_WINDOW_SECONDS) -> None:
    """The move in the order the module docstring explains; a failing step stops it. Before
    the switch nothing has changed (run the move again); after it the home is the new node
    already, and what is left is a last `doveadm sync` from the old one."""
    steps.progress(f"copying {plan.address} from {plan.old_node} (it still receives there)")
    steps.sync(False)
    steps.progress(f"switching the home of {plan.address} to {plan.new_node}")
    steps.switch()
    steps.progress(f"waiting {window:g} s for deliveries still routed to {plan.old_node}")
    steps.wait(window)
    steps.progress(f"copying what arrived at {plan.old_node} meanwhile")
    steps.sync(True)
    steps.progress(f"moved {plan.address} to {plan.new_node}; its copy on {plan.old_node} is kept")


class MoveAlreadyRunning(Conflict):
    """Another move of the same mailbox holds its exclusion."""

    def __init__(self, address: str) -> None:
        super().__init__(f"a move of {address} is already running")
        self.address = address


def move_lock_key(address_id: int) -> int:
    """The advisory lock key of one mailbox's move: its own namespace ("move"), so it
    cannot meet a scheduler job's key (`scheduler.runner.advisory_lock_key`, "job")."""
    return advisory_key("move", address_id)


@contextmanager
def move_exclusion(engine: Engine, plan: MovePlan) -> Iterator[None]:
    """Held for the whole move, so two moves of one mailbox never interleave their
    switches and syncs. PostgreSQL: a session-level advisory lock on a connection kept open
    (not a transaction's: the move commits its switch on its own in between). SQLite: no
    lock; its database is on one machine, so there is no second node to run a move from."""
    if engine.dialect.name != "postgresql":
        yield
        return
    key = move_lock_key(plan.address_id)
    with engine.connect() as connection:
        got = connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        connection.commit()  # the lock outlives this transaction; no transaction held open
        if not got:
            raise MoveAlreadyRunning(plan.address)
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()
