"""Application passwords: one random secret per device and application, revocable by id.

The secret is generated here and returned once; only `app_password_digest(secret)` is stored.
A plain SHA-256 is right for this (unlike for mailbox passwords): the secret is random with
about 139 bits of entropy, so no dictionary or brute force can invert the digest, and a
deterministic digest lets Dovecot find the row by equality
(`secret_sha256 = '%{sha256:password}'`, see `dataplane_v1_app_passwords`) without a slow
hash per login. Deleting the row revokes the password at once: the data plane reads the view
on every login.

Services check and flush; the caller commits.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postmeister.domain.access import Actor
from postmeister.domain.addresses import rules
from postmeister.domain.addresses.limits import app_password_count, load_limits
from postmeister.domain.addresses.rules import PackageLimits
from postmeister.domain.addresses.service import check_text
from postmeister.domain.audit import service as audit
from postmeister.domain.audit import snapshots
from postmeister.errors import Conflict, FieldProblem, InvalidInput, LimitReached, NotFound
from postmeister.models import Address, AppPassword

# Letters and digits without the look-alikes 0/O/o, 1/l/I: read off a screen, typed on a phone.
SECRET_ALPHABET: Final = "".join(
    c for c in string.ascii_letters + string.digits if c not in "0Oo1lI"
)
SECRET_LENGTH: Final = 24  # 24 * log2(56) ≈ 139 bits
MAX_LABEL_LENGTH: Final = 200  # the column size of `device` and `application`
# One per device and application is the idea; a cap keeps the list one short page.
MAX_PER_MAILBOX: Final = 100


@dataclass(frozen=True)
class IssuedAppPassword:
    app_password: AppPassword
    secret: str  # shown once, never stored


def app_password_digest(secret: str) -> str:
    """The stored form of an application password: lowercase hex SHA-256 of its UTF-8 bytes.

    The data plane computes the same from the typed password; change both or neither.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def _label(value: str, field: str, problems: list[FieldProblem]) -> str:
    cleaned = value.strip()
    if not cleaned:
        problems.append(FieldProblem(field, "must not be empty", "required"))
    elif len(cleaned) > MAX_LABEL_LENGTH:
        problems.append(FieldProblem(field, f"longer than {MAX_LABEL_LENGTH} characters", "length"))
    else:
        problems.extend(check_text(cleaned, field, multiline=False))
    return cleaned


def create_app_password(
    session: Session, actor: Actor, address: Address, *, device: str, application: str
) -> IssuedAppPassword:
    """A new application password for the mailbox `address` (already checked visible)."""
    actor.require_write()
    if address.kind != "mailbox":
        raise Conflict(
            f"{address.address} is a forward; only mailboxes log in and have application passwords"
        )
    problems: list[FieldProblem] = []
    device = _label(device, "device", problems)
    application = _label(application, "application", problems)
    if problems:
        raise InvalidInput(problems)
    count = app_password_count(session, address.id)
    package_id = address.domain.package_id
    limits = load_limits(session, [package_id]).get(package_id, PackageLimits())
    over = rules.app_password_problems(count + 1, limits)
    if over:
        raise LimitReached(over)
    if count >= MAX_PER_MAILBOX:
        raise Conflict(
            f"{address.address} has {MAX_PER_MAILBOX} application passwords already, the "
            "most a mailbox can have; delete unused ones first"
        )
    secret = new_secret()
    app_password = AppPassword(
        address_id=address.id,
        device=device,
        application=application,
        secret_hash=app_password_digest(secret),
    )
    session.add(app_password)
    try:
        session.flush()
    except IntegrityError as exc:  # pragma: no cover - a 139-bit collision
        raise Conflict("could not store the new application password; try again") from exc
    session.refresh(app_password)
    audit.changed(session, snapshots.APP_PASSWORD, app_password, "created")
    return IssuedAppPassword(app_password=app_password, secret=secret)


def list_app_passwords(session: Session, address: Address) -> list[AppPassword]:
    """The application passwords of a visible address, oldest first (a forward has none)."""
    return list(
        session.scalars(
            select(AppPassword).where(AppPassword.address_id == address.id).order_by(AppPassword.id)
        ).all()
    )


def get_app_password(session: Session, address: Address, app_password_id: int) -> AppPassword:
    """One application password of a visible address; any other id is `NotFound`."""
    found = session.scalar(
        select(AppPassword).where(
            AppPassword.id == app_password_id, AppPassword.address_id == address.id
        )
    )
    if found is None:
        raise NotFound("application password", str(app_password_id))
    return found


def delete_app_password(
    session: Session, actor: Actor, address: Address, app_password_id: int
) -> None:
    """Revoke one application password of a visible address."""
    actor.require_write()
    app_password = get_app_password(session, address, app_password_id)
    before = snapshots.app_password(app_password)
    session.delete(app_password)
    session.flush()
    audit.changed(
        session, snapshots.APP_PASSWORD, app_password, "revoked", before=before, gone=True
    )
