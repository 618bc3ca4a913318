"""Application passwords in the data plane (the second Dovecot passdb).

Rows are written with the SQLAlchemy models until the hosting API's endpoints exist; the
contract is what matters here: `secret_hash` is the lowercase hex SHA-256 of the secret.
"""

from __future__ import annotations

import hashlib
import secrets

import pytest
from sqlalchemy import select

from postmeister import models as m
from postmeister.db import unit_of_work
from tests.e2e.conftest import Account, Stack
from tests.e2e.mail import imap_login_works, submit

pytestmark = pytest.mark.e2e


def add_app_password(stack: Stack, account: Account) -> tuple[int, str]:
    secret = secrets.token_urlsafe(24)
    with unit_of_work(stack.sessions) as session:
        address = session.scalars(
            select(m.Address).where(m.Address.address == account.address)
        ).one()
        row = m.AppPassword(
            address_id=address.id,
            device="phone",
            application="mail",
            secret_hash=hashlib.sha256(secret.encode()).hexdigest(),
        )
        session.add(row)
        session.flush()
        return row.id, secret


def test_several_app_passwords_log_in_and_a_revoked_one_fails_at_once(stack: Stack) -> None:
    account = stack.create_account()
    first_id, first = add_app_password(stack, account)
    _, second = add_app_password(stack, account)
    imap = stack.ports["imap"]

    assert imap_login_works(imap, account.address, first)
    assert imap_login_works(imap, account.address, second)
    assert imap_login_works(imap, account.address, account.password)
    sent = submit(
        stack.ports["submission"], login=account.address, password=second,
        envelope_from=account.address, header_from=account.address, to=account.address,
    )  # fmt: skip
    assert sent.sent, sent

    with unit_of_work(stack.sessions) as session:
        session.delete(session.get_one(m.AppPassword, first_id))

    assert not imap_login_works(imap, account.address, first)
    assert imap_login_works(imap, account.address, second)


def test_app_password_obeys_submission_disabled(stack: Stack) -> None:
    account = stack.create_account(disabled=True)
    _, secret = add_app_password(stack, account)
    assert imap_login_works(stack.ports["imap"], account.address, secret)
    refused = submit(
        stack.ports["submission"], login=account.address, password=secret,
        envelope_from=account.address, header_from=account.address, to=account.address,
    )  # fmt: skip
    assert (refused.stage, refused.code) == ("rcpt", 554), refused
