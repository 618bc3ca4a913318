"""`postmeister user`: people who log in to the web interface (the first admin, customer
users). The generated password is printed once, in the JSON, and never again."""

from __future__ import annotations

import click

from postmeister.cli.common import print_json, session_for, settings_for
from postmeister.domain.passwords.service import Passwords
from postmeister.domain.web_users import service as web_users


@click.group()
def user() -> None:
    """Manage web interface users."""


@user.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="An administrator (sees every customer).")
@click.option("--customer", "customer_id", type=int, help="A user of this customer.")
def user_create(email: str, admin: bool, customer_id: int | None) -> None:
    """Create a web user with a generated password; prints it as JSON (password shown once)."""
    if admin == (customer_id is not None):
        raise click.UsageError("give exactly one of --admin and --customer ID")
    settings = settings_for()
    with session_for(settings) as session:
        issued = web_users.create_user(
            session, email=email, passwords=Passwords(settings.passwords),
            customer_id=customer_id, admin=admin,
        )  # fmt: skip
        created = issued.user
        print_json(
            {
                "id": created.id,
                "email": created.email,
                "admin": created.is_admin,
                "customer_id": created.customer_id,
                "password": issued.password,
            }
        )


@user.command("list")
@click.option("--customer", "customer_id", type=int, help="Only this customer's users.")
def user_list(customer_id: int | None) -> None:
    """List web users as a JSON array (never their passwords or TOTP keys)."""
    with session_for(settings_for()) as session:
        print_json(
            [
                {"id": u.id, "email": u.email, "admin": u.is_admin, "customer_id": u.customer_id,
                 "totp": u.totp_secret is not None}
                for u in web_users.list_users(session, customer_id=customer_id)
            ]
        )  # fmt: skip
