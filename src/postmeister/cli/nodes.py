"""`postmeister node`: the mail-node registry (issue 17), the same service as `/mail-nodes`."""

from __future__ import annotations

from typing import Any

import click

from postmeister.cli.common import print_json, session_for, settings_for
from postmeister.domain.access import Actor
from postmeister.domain.placement import service as placement
from postmeister.domain.placement.rules import STATES


def _shown(usage: placement.NodeUsage) -> dict[str, Any]:
    return {**placement.describe(usage.node), "mailboxes": usage.mailboxes}


@click.group()
def node() -> None:
    """Manage the mail nodes mailboxes are homed on."""


@node.command("add")
@click.argument("name")
@click.option("--address", required=True, help="Where the other nodes reach it (LMTP, IMAP).")
@click.option("--lmtp-port", type=int, default=24, show_default=True)
@click.option("--state", type=click.Choice(STATES), default="active", show_default=True)
def node_add(name: str, address: str, lmtp_port: int, state: str) -> None:
    """Register a node; new mailboxes go to the least used active node. Prints it as JSON."""
    with session_for(settings_for()) as session:
        added = placement.register_node(
            session, Actor.system(), name=name, address=address, lmtp_port=lmtp_port, state=state
        )
        print_json(_shown(placement.NodeUsage(added, 0)))


@node.command("list")
def node_list() -> None:
    """Every node with its number of mailboxes, as a JSON array."""
    with session_for(settings_for()) as session:
        print_json([_shown(usage) for usage in placement.list_nodes(session, Actor.system())])
