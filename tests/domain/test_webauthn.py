"""WebAuthn keys as a second factor, through the service on both databases, answered by a
software authenticator (tests/support/webauthn_authenticator.py): a registered key logs in;
a challenge is spent once and expires; a key whose sign count goes back, a key of another
origin and another user's key are all refused; a user never sees, renames or removes
another user's key (not found); removing needs the password; both changes are audited."""

from __future__ import annotations

import datetime as dt
import json

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from postmeister.db import unit_of_work
from postmeister.domain.passwords.service import Passwords
from postmeister.domain.web_users import service as web_users
from postmeister.domain.web_users import webauthn
from postmeister.domain.web_users.rules import SecondFactorRefused
from postmeister.errors import InvalidInput, NotFound
from postmeister.models import AuditEvent, WebAuthnCredential, WebUser
from tests.support.factories import make_tenant
from tests.support.web import make_web_user
from tests.support.webauthn_authenticator import SoftAuthenticator

RP = webauthn.RelyingParty(rp_id="ui.provider.example", origins=("https://ui.provider.example",))
ORIGIN = RP.origins[0]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _user(sessions: sessionmaker[Session], settings: Settings, email: str) -> tuple[int, str]:
    tenant = make_tenant(sessions, name=email, domain=email.split("@")[1])
    _, password = make_web_user(sessions, settings, email, customer_id=tenant.customer_id)
    with unit_of_work(sessions, write=False) as session:
        user_id = session.scalars(select(WebUser.id).where(WebUser.email == email)).one()
    return user_id, password


def _web_session(sessions: sessionmaker[Session], user_id: int) -> int:
    with unit_of_work(sessions) as session:
        user = session.get_one(WebUser, user_id)
        return web_users.start_session(session, user=user, stage=web_users.SECOND_FACTOR).row.id


def _take(sessions: sessionmaker[Session], session_id: int, purpose: str,
          now: dt.datetime | None = None) -> bytes | None:  # fmt: skip
    with unit_of_work(sessions) as session:
        return webauthn.take_challenge(session, session_id=session_id, purpose=purpose,
                                       now=now or _now())  # fmt: skip


def _registration(sessions: sessionmaker[Session], user_id: int) -> tuple[str, bytes | None]:
    """A new session's registration options, and the challenge the server kept for them."""
    session_id = _web_session(sessions, user_id)
    with unit_of_work(sessions) as session:
        options = webauthn.registration_options(
            session, session.get_one(WebUser, user_id), session_id=session_id, rp=RP, now=_now()
        )
    return options, _take(sessions, session_id, webauthn.REGISTER)


def _keep(sessions: sessionmaker[Session], user_id: int, challenge: bytes | None,
          response: str, name: str = "YubiKey") -> int:  # fmt: skip
    with unit_of_work(sessions) as session:
        return webauthn.register(session, session.get_one(WebUser, user_id), challenge=challenge,
                                 response=response, name=name, rp=RP).id  # fmt: skip


def _register(sessions: sessionmaker[Session], user_id: int, key: SoftAuthenticator,
              name: str = "YubiKey") -> int:  # fmt: skip
    options, challenge = _registration(sessions, user_id)
    return _keep(sessions, user_id, challenge, key.create(options), name)


def _options(sessions: sessionmaker[Session], user_id: int, session_id: int) -> str:
    with unit_of_work(sessions) as session:
        return webauthn.authentication_options(
            session, session.get_one(WebUser, user_id), session_id=session_id, rp=RP, now=_now()
        )


def _authenticate(sessions: sessionmaker[Session], user_id: int, challenge: bytes | None,
                  response: str) -> None:  # fmt: skip
    with unit_of_work(sessions) as session:
        webauthn.authenticate(session, session.get_one(WebUser, user_id), challenge=challenge,
                              response=response, rp=RP, now=_now())  # fmt: skip


def _log_in(sessions: sessionmaker[Session], user_id: int, key: SoftAuthenticator) -> None:
    session_id = _web_session(sessions, user_id)
    options = _options(sessions, user_id, session_id)
    _authenticate(sessions, user_id, _take(sessions, session_id, webauthn.AUTHENTICATE),
                  key.get(options))  # fmt: skip


def _stored(sessions: sessionmaker[Session], key_id: int) -> WebAuthnCredential:
    with unit_of_work(sessions, write=False) as session:
        row = session.get_one(WebAuthnCredential, key_id)
        session.expunge(row)
        return row


def test_a_registered_key_logs_in_and_its_sign_count_is_kept(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    user_id, _ = _user(sessions, settings, "anna@alice.example")
    with unit_of_work(sessions, write=False) as session:
        assert not web_users.second_factor_due(session, session.get_one(WebUser, user_id))
    key = SoftAuthenticator(origin=ORIGIN)
    key_id = _register(sessions, user_id, key)
    with unit_of_work(sessions, write=False) as session:
        assert web_users.second_factor_due(session, session.get_one(WebUser, user_id))
    _log_in(sessions, user_id, key)
    _log_in(sessions, user_id, key)
    stored = _stored(sessions, key_id)
    assert (stored.name, stored.sign_count) == ("YubiKey", 2)
    assert stored.last_used_at is not None
    # A key already registered is excluded from the next registration's options.
    options, _ = _registration(sessions, user_id)
    assert json.loads(options)["excludeCredentials"] == [{"id": key.id, "type": "public-key"}]


def test_a_challenge_is_spent_once_and_expires(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    user_id, _ = _user(sessions, settings, "anna@alice.example")
    key = SoftAuthenticator(origin=ORIGIN)
    _register(sessions, user_id, key)
    session_id = _web_session(sessions, user_id)
    options = _options(sessions, user_id, session_id)
    answer = key.get(options)
    challenge = _take(sessions, session_id, webauthn.AUTHENTICATE)
    assert challenge is not None
    assert _take(sessions, session_id, webauthn.AUTHENTICATE) is None, "spent"
    _authenticate(sessions, user_id, challenge, answer)
    # The same answer again: its challenge is gone from the server.
    with pytest.raises(webauthn.KeyRefused):
        _authenticate(sessions, user_id, _take(sessions, session_id, webauthn.AUTHENTICATE),
                      answer)  # fmt: skip
    # A challenge older than its lifetime counts as none, and is gone after the attempt.
    options = _options(sessions, user_id, session_id)
    late = _now() + webauthn.CHALLENGE_LIFETIME + dt.timedelta(seconds=1)
    assert _take(sessions, session_id, webauthn.AUTHENTICATE, now=late) is None
    assert _take(sessions, session_id, webauthn.AUTHENTICATE) is None
    with pytest.raises(webauthn.KeyRefused):
        _authenticate(sessions, user_id, None, key.get(options))
    # The challenge of another session is not this one's.
    other_session = _web_session(sessions, user_id)
    options = _options(sessions, user_id, other_session)
    assert _take(sessions, session_id, webauthn.AUTHENTICATE) is None
    assert _take(sessions, other_session, webauthn.AUTHENTICATE) is not None


def test_a_sign_count_that_goes_back_is_refused(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    user_id, _ = _user(sessions, settings, "anna@alice.example")
    key = SoftAuthenticator(origin=ORIGIN)
    key_id = _register(sessions, user_id, key)
    for _ in range(3):
        _log_in(sessions, user_id, key)
    assert _stored(sessions, key_id).sign_count == 3
    key.counter = 1  # a clone of the key, made when it had signed once
    with pytest.raises(webauthn.KeyRefused):
        _log_in(sessions, user_id, key)
    key.counter = 2  # the same count as the server has seen last: refused too
    with pytest.raises(webauthn.KeyRefused):
        _log_in(sessions, user_id, key)
    assert _stored(sessions, key_id).sign_count == 3
    _log_in(sessions, user_id, key)  # the real key, counting on: 4
    assert _stored(sessions, key_id).sign_count == 4


def test_another_origin_or_rp_is_refused(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    user_id, _ = _user(sessions, settings, "anna@alice.example")
    phished = SoftAuthenticator(origin="https://ui.provider.example.evil.example")
    options, challenge = _registration(sessions, user_id)
    with pytest.raises(webauthn.KeyRefused):
        _keep(sessions, user_id, challenge, phished.create(options))
    key = SoftAuthenticator(origin=ORIGIN)
    _register(sessions, user_id, key)
    session_id = _web_session(sessions, user_id)
    options = _options(sessions, user_id, session_id)
    answer = key.get(options, rp_id="evil.example")
    with pytest.raises(webauthn.KeyRefused):
        _authenticate(sessions, user_id, _take(sessions, session_id, webauthn.AUTHENTICATE),
                      answer)  # fmt: skip
    with pytest.raises(webauthn.KeyRefused):
        _authenticate(sessions, user_id, b"x" * 64, "{not json")


def test_another_users_key_never_counts_and_is_not_found(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    anna, anna_password = _user(sessions, settings, "anna@alice.example")
    bert, _ = _user(sessions, settings, "bert@bob.example")
    anna_key = SoftAuthenticator(origin=ORIGIN)
    bert_key = SoftAuthenticator(origin=ORIGIN)
    _register(sessions, anna, anna_key)
    bert_key_id = _register(sessions, bert, bert_key, name="Bert's key")
    # Bert's key answers Anna's login: not Anna's key.
    session_id = _web_session(sessions, anna)
    options = _options(sessions, anna, session_id)
    with pytest.raises(webauthn.KeyRefused):
        _authenticate(sessions, anna, _take(sessions, session_id, webauthn.AUTHENTICATE),
                      bert_key.get(options))  # fmt: skip
    passwords = Passwords(settings.passwords)
    with unit_of_work(sessions) as session:
        user = session.get_one(WebUser, anna)
        assert [k.name for k in webauthn.list_credentials(session, user)] == ["YubiKey"]
        with pytest.raises(NotFound):
            webauthn.rename_credential(session, user, bert_key_id, name="Mine now")
        with pytest.raises(NotFound):
            webauthn.remove_credential(session, user, bert_key_id, password=anna_password,
                                       passwords=passwords)  # fmt: skip
    assert _stored(sessions, bert_key_id).name == "Bert's key"
    # The same credential cannot be registered twice (here: by another user).
    options, challenge = _registration(sessions, anna)
    with pytest.raises(webauthn.KeyRefused):
        _keep(sessions, anna, challenge, bert_key.create(options))


def test_renaming_and_removing_a_key_are_audited_and_removal_needs_the_password(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    user_id, password = _user(sessions, settings, "anna@alice.example")
    key_id = _register(sessions, user_id, SoftAuthenticator(origin=ORIGIN))
    passwords = Passwords(settings.passwords)
    with unit_of_work(sessions) as session:
        user = session.get_one(WebUser, user_id)
        with pytest.raises(InvalidInput):
            webauthn.rename_credential(session, user, key_id, name="  ")
        webauthn.rename_credential(session, user, key_id, name="Laptop  passkey")
    with unit_of_work(sessions) as session:
        user = session.get_one(WebUser, user_id)
        with pytest.raises(InvalidInput) as wrong:
            webauthn.remove_credential(session, user, key_id, password="not it",
                                       passwords=passwords)  # fmt: skip
    assert wrong.value.problems[0].field == "current_password"
    assert _stored(sessions, key_id).name == "Laptop passkey"
    with unit_of_work(sessions) as session:
        user = session.get_one(WebUser, user_id)
        webauthn.remove_credential(session, user, key_id, password=password, passwords=passwords)
        assert not web_users.second_factor_due(session, user)
    with unit_of_work(sessions, write=False) as session:
        events = session.execute(
            select(AuditEvent.action, AuditEvent.customer_id, AuditEvent.resource_name)
            .where(AuditEvent.resource == webauthn.RESOURCE)
            .order_by(AuditEvent.id)
        ).all()
        customer_id = session.get_one(WebUser, user_id).customer_id
    assert [(a, c) for a, c, _ in events] == [
        ("created", customer_id),
        ("updated", customer_id),
        ("deleted", customer_id),
    ]
    assert events[-1][2] == "anna@alice.example: Laptop passkey"


def test_a_user_with_a_key_cannot_enrol_totp_at_login(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Enrolment follows the password alone: with a key, a stolen password must not be
    enough to add a TOTP app of the thief's and log in with it."""
    user_id, _ = _user(sessions, settings, "anna@alice.example")
    _register(sessions, user_id, SoftAuthenticator(origin=ORIGIN))
    secret = pyotp.random_base32()
    with unit_of_work(sessions) as session, pytest.raises(SecondFactorRefused):
        web_users.enrol_totp(session, session.get_one(WebUser, user_id), secret=secret,
                             code=pyotp.TOTP(secret).now(), now=_now())  # fmt: skip
