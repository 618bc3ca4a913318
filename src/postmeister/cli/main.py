"""The `postmeister` command. Each sub-command opens one unit of work and calls services."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from postmeister.cli.backup import backup, restore
from postmeister.cli.common import prepare, print_json, session_for, settings_for
from postmeister.cli.dataplane import dataplane
from postmeister.cli.sync import export, sync
from postmeister.config import Settings
from postmeister.domain.customers import service as customers
from postmeister.domain.domains import service as domains
from postmeister.domain.tokens import service as tokens
from postmeister.ops.logs import configure_logging


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
    "--data-dir", type=click.Path(path_type=Path), help="Data folder (POSTMEISTER_DATA_DIR)."
)
def serve(host: str | None, port: int | None, data_dir: Path | None) -> None:
    """Run the controller: both API dialects over HTTPS."""
    from postmeister.server import run

    settings = settings_for(data_dir)
    http = settings.http.model_copy(
        update={k: v for k, v in (("host", host), ("port", port)) if v is not None}
    )
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
    with session_for(settings_for()) as session:
        added = domains.add_domain(
            session, customer_id=customer_id, name=name, package_id=package_id
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


main.add_command(sync)
main.add_command(dataplane)
main.add_command(export)
main.add_command(backup)
main.add_command(restore)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
