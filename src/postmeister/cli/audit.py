"""`postmeister audit`: the audit trail on the command line, as the API's event objects.

Reading needs no transaction of its own beyond the one `session_for` opens; the filters are
those of `GET /audit-events`. Prints a JSON list, oldest first; `--after ID` pages on.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from postmeister.cli.common import print_json, session_for, settings_for
from postmeister.cli.lazy import lazy_module
from postmeister.domain.access import Actor
from postmeister.domain.audit import service
from postmeister.domain.audit.schemas import ACTOR_KINDS, EventFilter

if TYPE_CHECKING:
    from postmeister.api.hosting import audit as audit_api
    from postmeister.api.hosting import render as hosting_render
else:
    audit_api = lazy_module("postmeister.api.hosting.audit")
    hosting_render = lazy_module("postmeister.api.hosting.render")


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """click parses times without a zone: they are UTC here, as in every output."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


@click.command("audit")
@click.option("--resource", help="address, app_password, customer, package, domain, ...")
@click.option("--resource-id", help="The object's id.")
@click.option("--action", help="created, updated, deleted, revoked, held, ...")
@click.option("--actor-kind", type=click.Choice(ACTOR_KINDS))
@click.option("--actor-id", help="A token id, OS user, sync source id or job name.")
@click.option("--customer", "customer_id", type=int, help="Only this customer's events.")
@click.option("--since", type=click.DateTime(), help="From this UTC time on (inclusive).")
@click.option("--until", type=click.DateTime(), help="Before this UTC time.")
@click.option("--after", type=int, help="Only events after this event id (paging).")
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
def audit(
    resource: str | None,
    resource_id: str | None,
    action: str | None,
    actor_kind: str | None,
    actor_id: str | None,
    customer_id: int | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    after: int | None,
    limit: int,
) -> None:
    """Show audit events as JSON, oldest first."""
    wanted = EventFilter(
        resource=resource,
        resource_id=resource_id,
        action=action,
        actor_kind=actor_kind,
        actor_id=actor_id,
        customer_id=customer_id,
        since=_aware(since),
        until=_aware(until),
    )
    with session_for(settings_for()) as session:
        page = service.list_event_page(session, Actor.system(), wanted, size=limit, after=after)
        print_json([hosting_render.dump(audit_api.resource(event)) for event in page.items])
        if page.more_after and page.items:
            click.echo(f"(more: --after {page.items[-1].id})", err=True)
