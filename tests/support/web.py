"""Web interface test helpers shared by the HTTP tests and the browser tests."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from postmeister.db import unit_of_work
from postmeister.domain.passwords.service import Passwords
from postmeister.domain.web_users import service as web_users


def make_web_user(
    sessions: sessionmaker[Session],
    settings: Settings,
    email: str,
    *,
    customer_id: int | None = None,
    admin: bool = False,
) -> tuple[str, str]:
    """A web user through the service the CLI uses; its email and generated password."""
    with unit_of_work(sessions) as session:
        issued = web_users.create_user(
            session, email=email, passwords=Passwords(settings.passwords),
            customer_id=customer_id, admin=admin,
        )  # fmt: skip
        return issued.user.email, issued.password
