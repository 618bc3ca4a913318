"""The `postmeister` command. Each sub-command opens one unit of work and calls services."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from postmeister.cli.audit import audit
from postmeister.cli.backup import backup, restore
from postmeister.cli.common import prepare, print_json, session_for, settings_for
from postmeister.cli.dataplane import dataplane
from postmeister.cli.lazy import lazy_module
from postmeister.cli.nodes import node
from postmeister.cli.provisioning import register, register_domain_dns
from postmeister.cli.sync import export, sync
from postmeister.cli.users import user
from postmeister.config import Settings
from postmeister.domain.access import Actor
from postmeister.domain.customers import service as customers
from postmeister.domain.domains import service as domains
from postmeister.domain.tokens import service as tokens
from postmeister.models import Domain
from postmeister.ops.logs import configure_logging

if TYPE_CHECKING:
    from postmeister.api.hosting import domains as domain_api
else:
    domain_api = lazy_module("postmeister.api.hosting.domains")


@click.group()
@click.version_option(package_name="postmeister")
def main() -> None:
    """Postmeister: control plane for email hosting (Postfix + Dovecot)."""
    # The commands' own output is on stdout; what the services log goes where the
    # controller's log goes (POSTMEISTER_LOGGING__*).
    configure_logging(Settings().logging)


@main.command()
@click.option(
    "--data-dir", type=click.Path(path_type=Path), help="Data folder (POSTMEISTER_DATA_DIR)."
)
def migrate(data_dir: Path | None) -> None:
    """Bring the database schema up to date."""
    settings = settings_for(data_dir)
    prepare(settings)
    click.echo("database schema is up to date", err=True)


@main.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8443).")
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    help="Worker processes (POSTMEISTER_HTTP__WORKERS; default one per core).",
)
@click.option(
    "--data-dir", type=click.Path(path_type=Path), help="Data folder (POSTMEISTER_DATA_DIR)."
)
def serve(host: str | None, port: int | None, workers: int | None, data_dir: Path | None) -> None:
    """Run the controller: both API dialects over HTTPS."""
    from postmeister.server import run

    settings = settings_for(data_dir)
    overrides = {"host": host, "port": port, "workers": workers}
    http = settings.http.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    run(settings.model_copy(update={"http": http}))


@main.group()
def customer() -> None:
    """Manage customers (tenants)."""


@customer.command("create")
@click.argument("name")
def customer_create(name: str) -> None:
    """Create a customer; prints it as JSON."""
    with session_for(settings_for()) as session:
        created = customers.create_customer(session, name=name)
        print_json({"id": created.id, "name": created.name})


@main.group()
def domain() -> None:
    """Manage mail domains."""


@domain.command("add")
@click.argument("name")
@click.option("--customer", "customer_id", type=int, required=True, help="Owning customer id.")
@click.option(
    "--package", "package_id", type=int, help="Package id (default: the customer's default)."
)
def domain_add(name: str, customer_id: int, package_id: int | None) -> None:
    """Add a domain to a customer; prints it as JSON."""
    settings = settings_for()
    with session_for(settings) as session:
        added = domains.add_domain(
            session,
            customer_id=customer_id,
            name=name,
            package_id=package_id,
            dkim=settings.dkim,
        )
        print_json(
            {
                "id": added.id,
                "name": added.display_name,
                "ascii_name": added.name,
                "customer_id": added.customer_id,
                "package_id": added.package_id,
            }
        )


def _domain_json(found: Domain) -> dict[str, Any]:
    """A domain as `/domains` shows it (the API's renderer): id, type and attributes."""
    data: dict[str, Any] = domain_api.domain_document(found)["data"]
    return {"id": data["id"], **data["attributes"]}


@domain.command("list")
@click.option("--customer", "customer_id", type=int, help="Only this customer's domains.")
@click.option("--package", "package_id", type=int, help="Only this package's domains.")
def domain_list(customer_id: int | None, package_id: int | None) -> None:
    """List domains in id order; prints a JSON array."""
    found: list[dict[str, Any]] = []
    with session_for(settings_for()) as session:
        after: int | None = None
        while True:
            page = domains.list_domain_page(
                session,
                Actor.system(),
                size=500,
                after_id=after,
                customer_id=customer_id,
                package_id=package_id,
            )
            found.extend(_domain_json(item) for item in page.domains)
            if not page.more_after:
                break
            after = page.domains[-1].id
    print_json(found)


@domain.command("show")
@click.argument("name")
def domain_show(name: str) -> None:
    """Show one domain as JSON (catch-all targets, alias relation included)."""
    with session_for(settings_for()) as session:
        found = domains.get_domain(session, Actor.system(), name)
        print_json(_domain_json(domains.get_domain_by_id(session, Actor.system(), found.id)))


def _update(name: str, changes: domains.DomainChanges) -> None:
    with session_for(settings_for()) as session:
        actor = Actor.system()
        found = domains.get_domain_by_id(
            session, actor, domains.get_domain(session, actor, name).id
        )
        domains.update_domain(session, actor, found, changes)
        print_json(_domain_json(found))


@domain.command("update")
@click.argument("name")
@click.option("--customer", "customer_id", type=int, help="Move to this customer.")
@click.option("--package", "package_id", type=int, help="Move to this package (the customer's).")
@click.option("--alias-of", help="Make it an alias domain of this domain (same customer).")
@click.option("--no-alias", is_flag=True, help="End its alias relation.")
def domain_update(
    name: str,
    customer_id: int | None,
    package_id: int | None,
    alias_of: str | None,
    no_alias: bool,
) -> None:
    """Move a domain (its addresses move along) or change its alias relation."""
    if alias_of is not None and no_alias:
        raise click.UsageError("give --alias-of or --no-alias, not both")
    values: dict[str, Any] = {}
    if customer_id is not None:
        values["customer_id"] = customer_id
    if package_id is not None:
        values["package_id"] = package_id
    if alias_of is not None or no_alias:
        values["alias_of"] = alias_of
    _update(name, domains.DomainChanges(**values))


@domain.command("catchall")
@click.argument("name")
@click.argument("targets", nargs=-1)
@click.option("--off", is_flag=True, help="Remove every catch-all target.")
def domain_catchall(name: str, targets: tuple[str, ...], off: bool) -> None:
    """Set the catch-all targets of a domain (replacing the list), or switch it --off."""
    if off == bool(targets):
        raise click.UsageError("give the catch-all targets, or --off")
    _update(name, domains.DomainChanges(catchall=list(targets)))


@domain.command("delete")
@click.argument("name")
@click.option("--cascade", is_flag=True, help="Also delete its addresses and alias domains.")
def domain_delete(name: str, cascade: bool) -> None:
    """Delete a domain; refused while it has addresses or alias domains, unless --cascade."""
    with session_for(settings_for()) as session:
        actor = Actor.system()
        found = domains.get_domain_by_id(
            session, actor, domains.get_domain(session, actor, name).id
        )
        shown = _domain_json(found)
        domains.delete_domain(session, actor, found, cascade=cascade)
        print_json({"deleted": shown})


def _parse_expiry(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("use ISO 8601, e.g. 2027-01-31T00:00:00Z") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@main.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.option("--admin", is_flag=True, help="A token that sees every customer.")
@click.option("--customer", "customer_id", type=int, help="The customer the token acts for.")
@click.option("--read-only", is_flag=True, help="Refuse every write with this token.")
@click.option("--domain", "domain_names", multiple=True, help="Limit to this domain (repeatable).")
@click.option("--expires", help="Expiry, ISO 8601 (UTC if no zone is given).")
@click.option("--label", help="A note for people (where the token is used).")
def token_create(
    admin: bool,
    customer_id: int | None,
    read_only: bool,
    domain_names: tuple[str, ...],
    expires: str | None,
    label: str | None,
) -> None:
    """Create an API token; prints it as JSON. The token is shown only this once."""
    if admin == (customer_id is not None):
        raise click.UsageError("give exactly one of --admin and --customer ID")
    with session_for(settings_for()) as session:
        issued = tokens.create_token(
            session,
            admin=admin,
            customer_id=customer_id,
            read_only=read_only,
            domains=list(domain_names),
            expires_at=_parse_expiry(expires),
            label=label,
        )
        print_json(
            {
                "id": issued.token.id,
                "token": issued.secret,
                "admin": admin,
                "customer_id": customer_id,
                "read_only": read_only,
                "domains": list(domain_names),
                "expires_at": issued.token.expires_at,
            }
        )


register(customer, token, main)
register_domain_dns(domain)
main.add_command(audit)
main.add_command(user)
main.add_command(node)
main.add_command(sync)
main.add_command(dataplane)
main.add_command(export)
main.add_command(backup)
main.add_command(restore)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
