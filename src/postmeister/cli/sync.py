"""`postmeister sync …` and `postmeister export`: the Basic JSON API from the command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy.orm import Session

from postmeister.cli.common import print_json, session_for, settings_for
from postmeister.cli.lazy import lazy_module
from postmeister.domain.access import Actor
from postmeister.domain.customers.service import get_customer
from postmeister.errors import InvalidInput
from postmeister.models import SyncSource

if TYPE_CHECKING:
    from postmeister.api.controller import render
    from postmeister.domain.sync_sources import service as sources
    from postmeister.sync import document, fetch
    from postmeister.sync import export as export_
    from postmeister.sync import service as sync_service
    from postmeister.sync.plan import Plan
else:
    render = lazy_module("postmeister.api.controller.render")
    sources = lazy_module("postmeister.domain.sync_sources.service")
    document = lazy_module("postmeister.sync.document")
    export_ = lazy_module("postmeister.sync.export")
    fetch = lazy_module("postmeister.sync.fetch")
    sync_service = lazy_module("postmeister.sync.service")

PROGRESS_THRESHOLD = 2000  # changes; below this a progress bar is only noise
SYMBOLS = {"create": "+", "update": "~", "delete": "-"}


@click.group()
def sync() -> None:
    """Basic JSON sync: apply documents, manage sources."""


def _read_document(url: str | None, file: Path | None) -> bytes:
    settings = settings_for().sync
    if file is not None:
        size = file.stat().st_size
        if size > settings.max_document_bytes:
            raise click.ClickException(
                f"{file} has {size} bytes, more than the limit of {settings.max_document_bytes}"
            )
        return file.read_bytes()
    assert url is not None
    try:
        return fetch.fetch_document(
            url,
            etag=None,
            last_modified=None,
            ca_bundle=settings.ca_bundle,
            timeout=settings.timeout_seconds,
            max_bytes=settings.max_document_bytes,
        ).body
    except fetch.FetchFailed as exc:
        raise click.ClickException(f"fetching the document failed: {exc.reason}") from exc


def _print_plan(plan: Plan) -> None:
    for change in plan.changes:
        what = "mailbox" if change.kind == "mailbox" else "alias"
        detail = (
            f" → {','.join(change.targets)}" if change.kind == "forward" and change.targets else ""
        )
        click.echo(f"{SYMBOLS[change.action]} {change.action} {what} {change.address}{detail}")


@sync.command("run")
@click.option("--url", help="HTTPS URL of the document.")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--customer", "customer_id", type=int, required=True)
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option(
    "--allow-mass-deletion",
    is_flag=True,
    help="Apply even if the document deletes more than the configured share of addresses.",
)
def run(
    url: str | None, file: Path | None, customer_id: int, dry_run: bool, allow_mass_deletion: bool
) -> None:
    """Apply one document to a customer's domains (all or nothing)."""
    if (url is None) == (file is None):
        raise click.UsageError("give exactly one of --url and --file")
    raw = _read_document(url, file)
    settings = settings_for()
    bars: list[Any] = []

    def start_progress(plan: Plan) -> Callable[[int], None] | None:
        if len(plan.changes) < PROGRESS_THRESHOLD:
            return None
        bar = click.progressbar(length=len(plan.changes), label="applying", file=sys.stderr)
        bars.append(bar)
        return bar.update

    try:
        with session_for(settings) as session:
            get_customer(session, customer_id)
            try:
                outcome = sync_service.sync_document(
                    session,
                    customer_id=customer_id,
                    raw=raw,
                    settings=settings.sync,
                    max_quota_bytes=settings.addresses.max_quota_bytes,
                    dry_run=dry_run,
                    allow_mass_deletion=allow_mass_deletion,
                    on_plan=start_progress,
                )
            except InvalidInput as exc:
                lines = "".join(f"\n  {p.field or '/'}: {p.message}" for p in exc.problems)
                raise click.ClickException(
                    f"the document was rejected; nothing changed:{lines}"
                ) from exc
    finally:
        for bar in bars:
            bar.render_finish()
    plan = outcome.plan
    assert plan is not None
    if dry_run:
        _print_plan(plan)
    summary = {
        "result": outcome.result,
        "created": plan.created,
        "updated": plan.updated,
        "deleted": plan.deleted,
        "unchanged": plan.unchanged,
    }
    click.echo(json.dumps(summary), err=dry_run)
    if outcome.result == "held":
        raise click.ClickException(
            outcome.errors[0] + "; nothing changed (use --allow-mass-deletion to apply it)"
        )


@sync.group("source")
def source() -> None:
    """Manage a customer's polled sync sources."""


def _source_json(session: Session, item: SyncSource) -> dict[str, Any]:
    """The same document the API shows for a source (domains and recent runs included)."""
    return render.sync_source(
        item, sources.managed_domains(session, item), sources.recent_runs(session, item)
    )


@source.command("add")
@click.option("--customer", "customer_id", type=int, required=True)
@click.option("--url", required=True, help="HTTPS URL of the customer's document.")
@click.option("--interval", "interval_seconds", type=int, help="Seconds between polls.")
def source_add(customer_id: int, url: str, interval_seconds: int | None) -> None:
    """Add a source; the scheduler polls it from now on."""
    settings = settings_for()
    with session_for(settings) as session:
        created = sources.create_source(
            session,
            Actor.system(),
            customer_id=customer_id,
            url=url,
            interval_seconds=interval_seconds,
            settings=settings.sync,
        )
        print_json(_source_json(session, created))


@source.command("list")
def source_list() -> None:
    """All sources, with the domains each manages."""
    with session_for(settings_for()) as session:
        print_json(
            [_source_json(session, s) for s in sources.list_sources(session, Actor.system())]
        )


@source.command("remove")
@click.argument("source_id", type=int)
def source_remove(source_id: int) -> None:
    """Remove a source; its domains become API-managed again (addresses stay)."""
    with session_for(settings_for()) as session:
        found = sources.get_source(session, Actor.system(), source_id)
        sources.delete_source(session, Actor.system(), found)


@source.command("confirm")
@click.argument("source_id", type=int)
def source_confirm(source_id: int) -> None:
    """Allow a held document (mass deletion) to be applied at the next poll, which is now."""
    with session_for(settings_for()) as session:
        found = sources.get_source(session, Actor.system(), source_id)
        print_json(
            _source_json(session, sources.confirm_held_document(session, Actor.system(), found))
        )


@click.command("export")
@click.option("--customer", "customer_id", type=int, required=True)
def export(customer_id: int) -> None:
    """Write the customer's current state as a Basic JSON document to stdout."""
    with session_for(settings_for()) as session:
        get_customer(session, customer_id)
        sys.stdout.buffer.write(
            document.render_document(export_.export_customer(session, customer_id))
        )
