"""CLI verbs for customers, packages and API tokens: the same services as `/customers`,
`/packages` and `/api-tokens`, acting as the system (an admin), printing the API's resource
objects as JSON (a token's secret only when it is created); and `domain dns`, the same
records and check as `GET /domains/{id}/dns`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from pydantic import BaseModel

from postmeister.cli.common import print_json, session_for, settings_for
from postmeister.cli.lazy import lazy_module
from postmeister.domain.access import Actor
from postmeister.domain.customers import service as customers
from postmeister.domain.packages import service as packages
from postmeister.domain.packages.service import LIMITS
from postmeister.domain.tokens import service as tokens

if TYPE_CHECKING:
    from postmeister.api.hosting import customers as customer_api
    from postmeister.api.hosting import dns as dns_api
    from postmeister.api.hosting import packages as package_api
    from postmeister.api.hosting import render as hosting_render
    from postmeister.api.hosting import tokens as token_api
    from postmeister.domain.dns import service as dns
else:
    customer_api = lazy_module("postmeister.api.hosting.customers")
    dns_api = lazy_module("postmeister.api.hosting.dns")
    package_api = lazy_module("postmeister.api.hosting.packages")
    hosting_render = lazy_module("postmeister.api.hosting.render")
    token_api = lazy_module("postmeister.api.hosting.tokens")
    dns = lazy_module("postmeister.domain.dns.service")

SYSTEM = Actor.system()
_ALL = 500  # one page of the list services: the CLI shows up to this many


def _show(resource: BaseModel) -> None:
    print_json(hosting_render.dump(resource))


def _show_all(resources: list[Any]) -> None:
    print_json([hosting_render.dump(resource) for resource in resources])


def _more_than_a_page(more: bool) -> None:
    if more:
        click.echo(f"(showing the first {_ALL}; use the API to page further)", err=True)


def register(customer: click.Group, token: click.Group, main: click.Group) -> None:
    """Add the verbs to the `customer` and `token` groups and a `package` group."""

    @customer.command("list")
    @click.option("--suspended/--active", default=None, help="Only suspended / active ones.")
    def customer_list(suspended: bool | None) -> None:
        """List customers as JSON."""
        with session_for(settings_for()) as session:
            page = customers.list_customer_page(session, SYSTEM, size=_ALL, suspended=suspended)
            _show_all([customer_api.resource(item) for item in page.items])
            _more_than_a_page(page.more_after)

    @customer.command("show")
    @click.argument("customer_id", type=int)
    def customer_show(customer_id: int) -> None:
        """Show one customer as JSON."""
        with session_for(settings_for()) as session:
            _show(customer_api.resource(customers.find_customer(session, SYSTEM, customer_id)))

    def _change(customer_id: int, changes: customers.CustomerChanges) -> None:
        with session_for(settings_for()) as session:
            found = customers.find_customer(session, SYSTEM, customer_id)
            customers.update_customer(session, SYSTEM, found, changes)
            _show(customer_api.resource(found))

    @customer.command("update")
    @click.argument("customer_id", type=int)
    @click.option("--name", required=True, help="The new name.")
    def customer_update(customer_id: int, name: str) -> None:
        """Rename a customer."""
        _change(customer_id, customers.CustomerChanges(name=name))

    @customer.command("suspend")
    @click.argument("customer_id", type=int)
    def customer_suspend(customer_id: int) -> None:
        """Suspend: no login, no sending, tokens refused; mail still arrives."""
        _change(customer_id, customers.CustomerChanges(suspended=True))

    @customer.command("unsuspend")
    @click.argument("customer_id", type=int)
    def customer_unsuspend(customer_id: int) -> None:
        """Lift a suspension."""
        _change(customer_id, customers.CustomerChanges(suspended=False))

    @customer.command("delete")
    @click.argument("customer_id", type=int)
    @click.option("--cascade", is_flag=True, help="Also delete its domains and addresses.")
    def customer_delete(customer_id: int, cascade: bool) -> None:
        """Delete a customer (refused while it has domains, unless --cascade)."""
        with session_for(settings_for()) as session:
            found = customers.find_customer(session, SYSTEM, customer_id)
            customers.delete_customer(session, SYSTEM, found, cascade=cascade)
            print_json({"id": customer_id, "deleted": True})

    @main.group()
    def package() -> None:
        """Manage hosting packages and their limits."""

    limit_options = [
        click.option(
            f"--{name.replace('_', '-')}", name, type=int, help="the limit (leave out: no limit)"
        )
        for name in LIMITS
    ]

    def with_limits(command: Any) -> Any:
        for option in limit_options:
            command = option(command)
        return command

    def _given(values: dict[str, Any]) -> dict[str, int | None]:
        return {name: values[name] for name in LIMITS if values.get(name) is not None}

    def _package(session: Any, found: Any) -> None:
        usage = packages.usage_of(session, [found.id])
        _show(package_api.resource(found, usage[found.id]))

    @package.command("create")
    @click.argument("name")
    @click.option("--customer", "customer_id", type=int, required=True)
    @with_limits
    def package_create(name: str, customer_id: int, **limits: Any) -> None:
        """Create a package; limits not given are unlimited."""
        with session_for(settings_for()) as session:
            new = packages.NewPackage(customer_id=customer_id, name=name, limits=_given(limits))
            _package(session, packages.create_package(session, SYSTEM, new))

    @package.command("list")
    @click.option("--customer", "customer_id", type=int)
    def package_list(customer_id: int | None) -> None:
        """List packages with their usage."""
        with session_for(settings_for()) as session:
            page = packages.list_package_page(session, SYSTEM, size=_ALL, customer_id=customer_id)
            usage = packages.usage_of(session, [item.id for item in page.items])
            _show_all([package_api.resource(item, usage[item.id]) for item in page.items])
            _more_than_a_page(page.more_after)

    @package.command("show")
    @click.argument("package_id", type=int)
    def package_show(package_id: int) -> None:
        """Show one package with its usage."""
        with session_for(settings_for()) as session:
            _package(session, packages.get_package(session, SYSTEM, package_id))

    @package.command("update")
    @click.argument("package_id", type=int)
    @click.option("--name")
    @click.option("--unlimit", multiple=True, type=click.Choice(list(LIMITS)), help="Lift it.")
    @with_limits
    def package_update(
        package_id: int, name: str | None, unlimit: tuple[str, ...], **limits: Any
    ) -> None:
        """Rename a package or change its limits."""
        changes = packages.PackageChanges(
            name=name, limits={**_given(limits), **dict.fromkeys(unlimit)}
        )
        with session_for(settings_for()) as session:
            found = packages.get_package(session, SYSTEM, package_id)
            packages.update_package(session, SYSTEM, found, changes)
            _package(session, found)

    @package.command("delete")
    @click.argument("package_id", type=int)
    def package_delete(package_id: int) -> None:
        """Delete a package (refused while it holds domains)."""
        with session_for(settings_for()) as session:
            packages.delete_package(
                session, SYSTEM, packages.get_package(session, SYSTEM, package_id)
            )
            print_json({"id": package_id, "deleted": True})

    def _token(session: Any, found: Any) -> None:
        names = tokens.domain_names(session, [found])
        _show(token_api.resource(found, names[found.id]))

    @token.command("list")
    @click.option("--customer", "customer_id", type=int)
    def token_list(customer_id: int | None) -> None:
        """List API tokens (never their secrets)."""
        with session_for(settings_for()) as session:
            page = tokens.list_token_page(session, SYSTEM, size=_ALL, customer_id=customer_id)
            names = tokens.domain_names(session, page.items)
            _show_all([token_api.resource(item, names[item.id]) for item in page.items])
            _more_than_a_page(page.more_after)

    @token.command("show")
    @click.argument("token_id", type=int)
    def token_show(token_id: int) -> None:
        """Show one API token (never its secret)."""
        with session_for(settings_for()) as session:
            _token(session, tokens.get_token(session, SYSTEM, token_id))

    @token.command("revoke")
    @click.argument("token_id", type=int)
    def token_revoke(token_id: int) -> None:
        """Revoke an API token: refused from its next request on."""
        with session_for(settings_for()) as session:
            found = tokens.get_token(session, SYSTEM, token_id)
            tokens.revoke_token(session, SYSTEM, found)
            _token(session, found)


def register_domain_dns(domain: click.Group) -> None:
    """Add `dns` to the `domain` group."""

    @domain.command("dns")
    @click.argument("name")
    @click.option("--zone", is_flag=True, help="Print the records as a zone-file snippet.")
    def domain_dns(name: str, zone: bool) -> None:
        """The DNS records a domain needs. Prints each record with its live state as JSON
        (checked against POSTMEISTER_DNS__RESOLVERS, default the system's resolver), or
        with --zone the records to publish as a zone-file snippet (nothing looked up).

        Exit status: 0 when every record is ok (always, with --zone); 1 when any record is
        missing, different or unknown (the JSON says which), or the domain is unknown."""
        settings = settings_for()
        with session_for(settings) as session:
            records = dns.domain_records_named(session, SYSTEM, name, settings=settings)
        if zone:
            click.echo(records.zone(), nl=False)
            return
        # After the transaction: the lookups may take up to the resolver timeout.
        checks = dns.check(records, settings.dns)
        shown = hosting_render.dump(dns_api.resource(records, checks))
        print_json({"id": shown["id"], **shown["attributes"]})
        if not shown["attributes"]["ok"]:
            click.get_current_context().exit(1)
