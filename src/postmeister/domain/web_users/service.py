"""Web users, their sessions and the login throttle: checks and flushes; the caller commits.

Passwords of web users are argon2id hashes made by the same `Passwords` service as mailbox
passwords, and must pass the same policy. A mailbox owner logs in with the mailbox's own
password (never an application password: those are for mail clients, and one leaked from
a phone must not open the account's settings).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session

from postmeister.domain.access import Actor
from postmeister.domain.addresses.schemas import AddressChanges
from postmeister.domain.addresses.service import update_address
from postmeister.domain.addresses.syntax import parse_address
from postmeister.domain.passwords.service import Passwords
from postmeister.domain.web_users import rules, webauthn
from postmeister.domain.web_users.rules import (
    FailureCounts,
    LoginRefused,
    LoginThrottled,
    SecondFactorRefused,
)
from postmeister.errors import AlreadyExists, InvalidInput, NotFound
from postmeister.models import Address, Customer, Domain, LoginFailure, WebSession, WebUser

FULL: Final = "full"
SECOND_FACTOR: Final = "password"
# Verified when the account does not exist, so that a wrong address costs as long as a
# wrong password (no timing hint about which accounts exist).
_DUMMY_PLAIN: Final = "not-a-password-of-anyone"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class IssuedUser:
    user: WebUser
    password: str  # generated, shown once


@dataclass(frozen=True)
class IssuedSession:
    row: WebSession
    token: str  # the cookie value, never stored


# ---------------------------------------------------------------------------- users


def create_user(
    session: Session,
    *,
    email: str,
    passwords: Passwords,
    customer_id: int | None = None,
    admin: bool = False,
) -> IssuedUser:
    """An admin (`admin`) or a user of `customer_id`, with a generated password."""
    clean = rules.normalise_email(email)
    if clean is None:
        raise InvalidInput.single("email", "must be an email address such as name@example.com")
    if admin == (customer_id is not None):
        raise InvalidInput.single("customer", "a web user is either an admin or a customer's")
    if customer_id is not None and session.get(Customer, customer_id) is None:
        raise NotFound("customer", str(customer_id))
    if session.scalar(select(WebUser.id).where(WebUser.email == clean)) is not None:
        raise AlreadyExists("web user", clean)
    local_part, _, domain = clean.partition("@")
    plain = passwords.generate(local_part=local_part, domain=domain)
    user = WebUser(
        email=clean,
        password_hash=passwords.hash(plain),
        customer_id=customer_id,
        is_admin=admin,
    )
    session.add(user)
    session.flush()
    return IssuedUser(user=user, password=plain)


def actor_of(user: WebUser) -> Actor:
    """What a web user may do: what the customer's own API token may, or an admin's."""
    if user.is_admin:
        return Actor(customer_id=None, is_admin=True)
    assert user.customer_id is not None
    return Actor.for_customer(user.customer_id)


def actor_of_mailbox(address: Address) -> Actor:
    """A mailbox owner acts as its customer; the pages only ever load that one address."""
    return Actor.for_customer(address.domain.customer_id)


def second_factor_due(session: Session, user: WebUser) -> bool:
    """Whether logging in needs a second factor: a TOTP code or a WebAuthn key, whichever
    the user has (or, when the customer requires one and neither is set up, TOTP enrolment
    first)."""
    if user.totp_secret is not None or webauthn.has_credentials(session, user.id):
        return True
    if user.customer_id is None:
        return False
    customer = session.get(Customer, user.customer_id)
    return customer is not None and customer.totp_required


def set_locale(session: Session, user: WebUser, locale: str | None) -> None:
    if locale is not None and locale not in rules.LOCALES:
        raise InvalidInput.single("locale", f"one of {', '.join(rules.LOCALES)}")
    user.locale = locale
    session.flush()


def change_user_password(
    session: Session,
    user: WebUser,
    *,
    current: str,
    new: str,
    passwords: Passwords,
    keep_session_id: int | None,
) -> None:
    """Check the current password and the policy, store the new hash, and end every other
    session of the user (one stolen cookie must not outlive the change)."""
    if not passwords.hashing.verify(user.password_hash, current):
        raise InvalidInput.single("current_password", "the current password is wrong", "current")
    local_part, _, domain = user.email.partition("@")
    user.password_hash = passwords.hash_checked(new, local_part=local_part, domain=domain)
    end_other_sessions(session, user_id=user.id, keep_id=keep_session_id)
    session.flush()


def change_mailbox_password(
    session: Session,
    address: Address,
    *,
    current: str,
    new: str,
    passwords: Passwords,
    keep_session_id: int | None,
) -> None:
    """A mailbox owner's own change: the current password first, then the same update as
    the API's (policy, hash, audit), then every other web session of the mailbox ends. The
    data plane reads the new hash on the next login, so the old password stops at once."""
    if not address.password_hash or not passwords.hashing.verify(address.password_hash, current):
        raise InvalidInput.single("current_password", "the current password is wrong", "current")
    update_address(
        session, actor_of_mailbox(address), address, AddressChanges(password=new),
        passwords=passwords,
    )  # fmt: skip
    end_other_sessions(session, address_id=address.id, keep_id=keep_session_id)
    session.flush()


def enrol_totp(
    session: Session, user: WebUser, *, secret: str, code: str, now: dt.datetime
) -> None:
    """Keep `secret` as the user's second factor once `code` proves the app has it (the
    code counts as used: it cannot log in again). Enrolment happens at login, after the
    password alone, so a user who already has a second factor (TOTP or a WebAuthn key) is
    refused: otherwise a stolen password would enrol a second factor of its own."""
    if user.totp_secret is not None or webauthn.has_credentials(session, user.id):
        raise SecondFactorRefused()
    step = rules.totp_step(secret, code, now=now)
    if step is None:
        raise SecondFactorRefused()
    user.totp_secret = secret
    user.totp_last_step = step
    session.flush()


def check_totp(session: Session, user: WebUser, code: str, *, now: dt.datetime) -> None:
    """Accept `code` once: a code of the step last accepted, or of an earlier one, is
    refused. One conditional UPDATE, so two requests racing with the same code cannot
    both pass."""
    step = None if user.totp_secret is None else rules.totp_step(user.totp_secret, code, now=now)
    if step is None:
        raise SecondFactorRefused()
    taken = session.execute(
        update(WebUser)
        .where(
            WebUser.id == user.id,
            or_(WebUser.totp_last_step.is_(None), WebUser.totp_last_step < step),
        )
        .values(totp_last_step=step),
        execution_options={"synchronize_session": False},
    )
    if getattr(taken, "rowcount", 0) != 1:
        raise SecondFactorRefused()
    session.refresh(user, ["totp_last_step"])


# ---------------------------------------------------------------------------- throttle


def _failures(session: Session, account: str, client: str, now: dt.datetime) -> FailureCounts:
    since = now - rules.THROTTLE_WINDOW

    def count(condition: ColumnElement[bool]) -> int:
        statement = select(func.count(LoginFailure.id)).where(
            LoginFailure.occurred_at >= since, condition
        )
        return int(session.scalar(statement) or 0)

    return FailureCounts(
        account=count(LoginFailure.account == account),
        client=count(LoginFailure.client_address == client),
    )


def check_throttle(session: Session, account: str, client: str, now: dt.datetime) -> None:
    if rules.throttled(_failures(session, account, client, now)):
        raise LoginThrottled(rules.THROTTLE_WINDOW)


def record_failure(session: Session, *, account: str, client: str, now: dt.datetime) -> None:
    """Count one failed attempt. The caller commits it even though the login failed."""
    session.add(LoginFailure(account=account[: rules.MAX_EMAIL], client_address=client,
                             occurred_at=now))  # fmt: skip
    session.execute(
        delete(LoginFailure).where(LoginFailure.occurred_at < now - rules.THROTTLE_WINDOW),
        execution_options={"synchronize_session": False},
    )
    session.flush()


def _forget_failures(session: Session, account: str) -> None:
    session.execute(
        delete(LoginFailure).where(LoginFailure.account == account),
        execution_options={"synchronize_session": False},
    )


# ---------------------------------------------------------------------------- logins


def login_account(typed: str, *, mailbox: bool) -> str:
    """The name failures are counted under: the stored form of what was typed (a mailbox's
    canonical address, IDNA included), so that no spelling of one account escapes the
    throttle."""
    if mailbox:
        try:
            return parse_address(typed).address
        except InvalidInput:
            pass
    return (rules.normalise_email(typed) or typed.strip().lower())[: rules.MAX_EMAIL]


def authenticate_user(
    session: Session,
    *,
    email: str,
    password: str,
    client: str,
    passwords: Passwords,
    now: dt.datetime | None = None,
) -> WebUser:
    """The web user with this address and password. `LoginThrottled` before any check
    when the account or the client failed too often; `LoginRefused` otherwise (the caller
    records it with `record_failure`).

    Reads only: call it in a reading transaction, so that the slow hash check never holds
    SQLite's write lock, then `record_login` in a writing one."""
    now = now or _now()
    account = login_account(email, mailbox=False)
    check_throttle(session, account, client, now)
    user = session.scalar(select(WebUser).where(WebUser.email == account))
    hashed = user.password_hash if user is not None else _dummy_hash(passwords)
    if not passwords.hashing.verify(hashed, password) or user is None:
        raise LoginRefused()
    if user.customer_id is not None:
        customer = session.get(Customer, user.customer_id)
        if customer is None or customer.suspended_at is not None:
            raise LoginRefused()
    return user


def authenticate_mailbox(
    session: Session,
    *,
    address: str,
    password: str,
    client: str,
    passwords: Passwords,
    now: dt.datetime | None = None,
) -> Address:
    """The mailbox with this address and its own password (not an application password),
    of a customer that is not suspended; otherwise as `authenticate_user` (reads only)."""
    now = now or _now()
    account = login_account(address, mailbox=True)
    check_throttle(session, account, client, now)
    found = session.scalar(
        select(Address)
        .join(Domain, Domain.id == Address.domain_id)
        .join(Customer, Customer.id == Domain.customer_id)
        .where(
            Address.address == account,
            Address.kind == "mailbox",
            Customer.suspended_at.is_(None),
        )
    )
    hashed = found.password_hash if found is not None and found.password_hash else None
    if not passwords.hashing.verify(hashed or _dummy_hash(passwords), password) or not hashed:
        raise LoginRefused()
    assert found is not None
    return found


def record_login(
    session: Session, *, account: str, user_id: int | None = None, now: dt.datetime | None = None
) -> None:
    """After a successful login: forget the account's failures, note the time."""
    _forget_failures(session, account)
    if user_id is not None:
        session.get_one(WebUser, user_id).last_login_at = now or _now()
    session.flush()


_dummy: dict[int, str] = {}


def _dummy_hash(passwords: Passwords) -> str:
    key = id(passwords.hashing)
    if key not in _dummy:
        _dummy[key] = passwords.hashing.hash(_DUMMY_PLAIN)
    return _dummy[key]


# ---------------------------------------------------------------------------- sessions


def start_session(
    session: Session,
    *,
    user: WebUser | None = None,
    address: Address | None = None,
    stage: str = FULL,
    client: str | None = None,
    now: dt.datetime | None = None,
) -> IssuedSession:
    """A new session for a web user or a mailbox owner; its token is the cookie value."""
    now = now or _now()
    lifetime = rules.SESSION_LIFETIME if stage == FULL else rules.SECOND_FACTOR_LIFETIME
    token = secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=rules.token_digest(token),
        user_id=user.id if user is not None else None,
        address_id=address.id if address is not None else None,
        stage=stage,
        expires_at=now + lifetime,
        client_address=client,
    )
    session.add(row)
    session.flush()
    return IssuedSession(row=row, token=token)


def find_session(
    session: Session, token: str, *, now: dt.datetime | None = None
) -> WebSession | None:
    """The live session of a cookie value; None when unknown, ended or expired."""
    now = now or _now()
    row = session.scalar(
        select(WebSession).where(WebSession.token_hash == rules.token_digest(token))
    )
    if row is None or row.expires_at <= now:
        return None
    return row


def complete_second_factor(
    session: Session, row: WebSession, *, now: dt.datetime | None = None
) -> IssuedSession:
    """Replace a session waiting for its second factor by a full one (a new cookie value:
    whatever saw the first one gains nothing)."""
    user = session.get(WebUser, row.user_id) if row.user_id is not None else None
    client = row.client_address
    session.delete(row)
    session.flush()
    return start_session(session, user=user, client=client, now=now)


def end_session(session: Session, row: WebSession) -> None:
    session.delete(row)
    session.flush()


def end_other_sessions(
    session: Session,
    *,
    user_id: int | None = None,
    address_id: int | None = None,
    keep_id: int | None = None,
) -> int:
    """End every session of a user or a mailbox but `keep_id`; how many ended."""
    statement = delete(WebSession)
    if user_id is not None:
        statement = statement.where(WebSession.user_id == user_id)
    elif address_id is not None:
        statement = statement.where(WebSession.address_id == address_id)
    else:
        raise ValueError("whose sessions?")
    if keep_id is not None:
        statement = statement.where(WebSession.id != keep_id)
    result = session.execute(statement, execution_options={"synchronize_session": False})
    return int(getattr(result, "rowcount", 0) or 0)


def list_users(session: Session, *, customer_id: int | None = None) -> list[WebUser]:
    statement = select(WebUser).order_by(WebUser.id)
    if customer_id is not None:
        statement = statement.where(WebUser.customer_id == customer_id)
    return list(session.scalars(statement))
