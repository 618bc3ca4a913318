"""`postmeister node`: the mail-node registry (issue 17), the same service as `/mail-nodes`;
moving a mailbox to another node (`node move`, run on that node)."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from postmeister.cli.common import print_json, session_for, settings_for
from postmeister.dataplane.render.dovecot import (
    DOVEADM_INCLUDE,
    DOVEADM_PORT,
    doveadm_secret_setting,
)
from postmeister.db import make_engine
from postmeister.domain.access import Actor
from postmeister.domain.placement import move
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


# Where `dataplane install` puts Dovecot's files (its CONFIG_DIR), so where the installed
# postmeister.conf includes the doveadm secret from.
INSTALLED_SECRET = Path("/etc") / DOVEADM_INCLUDE


@node.command("secret")
@click.option(
    "--file", "path", type=click.Path(path_type=Path), default=INSTALLED_SECRET, show_default=True
)
def node_secret(path: Path) -> None:
    """Create the doveadm password the mail nodes share (mode 0600), unless it exists.

    Create it on one node, copy the file to the same path on every other node, then
    `doveadm reload` on each. The password is never printed: only the file's path is."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        click.echo(f"kept {path}", err=True)
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(doveadm_secret_setting(secrets.token_hex(32)))
    click.echo(f"created {path}", err=True)


def _progress(line: str) -> None:
    click.echo(f"node move: {line}", err=True)


# doveadm's exit code when the sync worked but the mailbox changed meanwhile (mail arrived):
# fine for a copy that is not the last, and for the last one a reason to run it again.
DSYNC_CHANGED = 2
DSYNC_ATTEMPTS = 10


def _dsync(address: str, old_host: str) -> Callable[[bool], None]:
    """A two-way dsync of the mailbox with the old node's doveadm server (the password
    comes from Dovecot's own configuration, which includes the shared secret file)."""
    command = ["doveadm", "sync", "-u", address, f"tcp:{old_host}:{DOVEADM_PORT}"]

    def sync(final: bool) -> None:
        for _ in range(DSYNC_ATTEMPTS):
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode == 0 or (result.returncode == DSYNC_CHANGED and not final):
                return
            if result.returncode != DSYNC_CHANGED:
                raise click.ClickException(
                    f"doveadm sync failed ({result.returncode}): {result.stderr.strip()}"
                )
            _progress("the mailbox changed during the copy: copying again")
        raise click.ClickException(f"doveadm sync: still changing after {DSYNC_ATTEMPTS} runs")

    return sync


@node.command("move")
@click.argument("address")
@click.option("--to", "to_node", required=True, help="This node's name: the new home.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=move.ROUTING_WINDOW_SECONDS,
    show_default=True,
    help="Seconds between the switch and the last copy (Postfix's 30 s lookup cache).",
)
def node_move(address: str, to_node: str, wait: float) -> None:
    """Move a mailbox here, to node TO: copy its mail from its home with dsync, switch
    its home, and copy again what arrived there meanwhile. Run it on node TO."""
    settings = settings_for()
    # dsync copies into this machine's mail store: only the new home may run the move.
    here = settings.dataplane.node_name or "not a named mail node"
    if here != to_node:
        raise click.ClickException(f"run the move on {to_node!r}: this is {here!r}")
    with session_for(settings) as session:
        plan = move.plan_move(session, Actor.system(), address, to_node)

    def switch() -> None:
        with session_for(settings) as session:
            placement.move_home(session, Actor.system(), plan.address_id, plan.new_node)

    steps = move.MoveSteps(
        sync=_dsync(plan.address, plan.old_address),
        switch=switch,
        wait=time.sleep,
        progress=_progress,
    )
    engine = make_engine(settings.resolved_database_url)
    try:
        with move.move_exclusion(engine, plan):
            move.run_move(plan, steps, window=wait)
    except move.MoveAlreadyRunning as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
