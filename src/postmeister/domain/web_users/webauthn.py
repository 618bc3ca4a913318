"""WebAuthn (passkeys, security keys) as a second factor of web users: the registration and
login ceremonies, verified by py_webauthn; checks and flushes, the caller commits.

A user with a key, a TOTP app or both may log in with either (`service.second_factor_due`).
Each ceremony's challenge lives on the server (`WebAuthnChallenge`), bound to the web
session that asked for it: `take_challenge` removes it before the answer is checked, in a
transaction of its own, so it is spent even when the answer fails; one older than
`CHALLENGE_LIFETIME` counts as none. The relying party is the web interface's public host
(`dns.web_host`, else the client host): the RP ID, and `https://` origins on it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    generate_challenge,
    parse_authentication_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from postmeister.config import Settings
from postmeister.domain.audit import service as audit
from postmeister.domain.passwords.service import Passwords
from postmeister.errors import DomainError, InvalidInput, NotFound
from postmeister.models import WebAuthnChallenge, WebAuthnCredential, WebUser

REGISTER: Final = "register"
AUTHENTICATE: Final = "authenticate"
# As long as a session waiting for its second factor lives (`rules.SECOND_FACTOR_LIFETIME`):
# time enough to find the key and touch it, too little to keep a challenge for later.
CHALLENGE_LIFETIME: Final = dt.timedelta(minutes=5)
MAX_NAME: Final = 100
RESOURCE: Final = "webauthn_credential"
# What the browser shows while it waits for the key (a hint to it, in milliseconds).
_TIMEOUT_MS: Final = 120_000
# Malformed answers surface from the parser as these, not only as WebAuthnException.
_MALFORMED: Final = (WebAuthnException, ValueError, TypeError, KeyError)


class KeyRefused(DomainError):
    """The key's answer did not verify: wrong or spent challenge, another origin or RP, a
    key that is not this user's, a signature or a sign count that does not fit."""

    def __init__(self) -> None:
        super().__init__("the security key's answer was not accepted")


@dataclass(frozen=True)
class RelyingParty:
    rp_id: str
    origins: tuple[str, ...]
    name: str = "Postmeister"


def relying_party(settings: Settings) -> RelyingParty:
    """The web interface's public host as RP ID; its origins with and without the port the
    controller listens on (behind a TLS proxy the browser sees 443, otherwise that port).
    Both name the same host, which the RP ID covers on every port anyway."""
    host = (settings.dns.web_host or settings.client_host).strip().rstrip(".").lower()
    origins = [f"https://{host}"]
    if settings.http.port != 443:
        origins.append(f"https://{host}:{settings.http.port}")
    return RelyingParty(rp_id=host, origins=tuple(origins))


# ---------------------------------------------------------------------------- challenges


def _issue(session: Session, *, session_id: int, purpose: str, now: dt.datetime) -> bytes:
    """A new challenge for this session and purpose (replacing an earlier one)."""
    session.execute(
        delete(WebAuthnChallenge).where(
            WebAuthnChallenge.session_id == session_id, WebAuthnChallenge.purpose == purpose
        ),
        execution_options={"synchronize_session": False},
    )
    challenge = generate_challenge()
    session.add(
        WebAuthnChallenge(
            session_id=session_id,
            purpose=purpose,
            challenge=bytes_to_base64url(challenge),
            expires_at=now + CHALLENGE_LIFETIME,
        )
    )
    session.flush()
    return challenge


def take_challenge(
    session: Session, *, session_id: int, purpose: str, now: dt.datetime
) -> bytes | None:
    """Remove this session's challenge for `purpose` and return it; None when there is none,
    it expired, or a racing request took it first (one conditional DELETE decides)."""
    row = session.scalar(
        select(WebAuthnChallenge).where(
            WebAuthnChallenge.session_id == session_id, WebAuthnChallenge.purpose == purpose
        )
    )
    if row is None:
        return None
    taken = session.execute(
        delete(WebAuthnChallenge).where(WebAuthnChallenge.id == row.id),
        execution_options={"synchronize_session": False},
    )
    session.flush()
    if getattr(taken, "rowcount", 0) != 1 or row.expires_at <= now:
        return None
    return base64url_to_bytes(row.challenge)


# ---------------------------------------------------------------------------- keys


def has_credentials(session: Session, user_id: int) -> bool:
    return bool(session.scalar(select(exists().where(WebAuthnCredential.user_id == user_id))))


def list_credentials(session: Session, user: WebUser) -> list[WebAuthnCredential]:
    """The user's own keys, oldest first; nobody else's, ever."""
    return list(
        session.scalars(
            select(WebAuthnCredential)
            .where(WebAuthnCredential.user_id == user.id)
            .order_by(WebAuthnCredential.id)
        )
    )


def _own(session: Session, user: WebUser, key: int) -> WebAuthnCredential:
    """One of the user's keys by id; another user's key is "not found", like a missing one."""
    found = session.scalar(
        select(WebAuthnCredential).where(
            WebAuthnCredential.id == key, WebAuthnCredential.user_id == user.id
        )
    )
    if found is None:
        raise NotFound("security key", str(key))
    return found


def _clean_name(name: str) -> str:
    clean = " ".join(name.split())
    if not clean:
        raise InvalidInput.single("name", "give the key a name", "required")
    if len(clean) > MAX_NAME:
        raise InvalidInput.single("name", f"at most {MAX_NAME} characters", "length")
    return clean


def _snapshot(row: WebAuthnCredential, user: WebUser) -> dict[str, str]:
    return {"user": user.email, "name": row.name}


def _audit(session: Session, user: WebUser, row: WebAuthnCredential, action: str, *,
           before: dict[str, str] | None = None, gone: bool = False) -> None:  # fmt: skip
    audit.record(
        session,
        audit.event(
            resource=RESOURCE, resource_id=row.id, action=action, customer_id=user.customer_id,
            name=f"{user.email}: {row.name}", before=before,
            after=None if gone else _snapshot(row, user),
        ),
    )  # fmt: skip


def _descriptors(keys: list[WebAuthnCredential]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(k.credential_id)) for k in keys]


def _user_handle(user: WebUser) -> bytes:
    """The WebAuthn user handle: the account's id, which names no person (the spec forbids
    an email address there) and stays the same, so an authenticator replaces its old
    credential for the account rather than keeping two."""
    return f"postmeister-web-user-{user.id}".encode()


def registration_options(
    session: Session, user: WebUser, *, session_id: int, rp: RelyingParty, now: dt.datetime
) -> str:
    """The options for `navigator.credentials.create()` as JSON (base64url fields), with a
    new challenge kept for this session. A key already registered is excluded."""
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.name,
        user_name=user.email,
        user_id=_user_handle(user),
        challenge=_issue(session, session_id=session_id, purpose=REGISTER, now=now),
        timeout=_TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        # A second factor: the password comes first, so the key need not store the account.
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(list_credentials(session, user)),
    )
    return options_to_json(options)


def register(
    session: Session,
    user: WebUser,
    *,
    challenge: bytes | None,
    response: str,
    name: str,
    rp: RelyingParty,
) -> WebAuthnCredential:
    """Keep the key whose `navigator.credentials.create()` answer is `response`, once it
    verifies against `challenge` (from `take_challenge`), this RP ID and its origins."""
    clean = _clean_name(name)
    if challenge is None or not response:
        raise KeyRefused()
    try:
        verified = verify_registration_response(
            credential=response,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
        )
    except _MALFORMED as exc:
        raise KeyRefused() from exc
    credential_id = bytes_to_base64url(verified.credential_id)
    taken = session.scalar(
        select(exists().where(WebAuthnCredential.credential_id == credential_id))
    )
    if taken:
        raise KeyRefused()
    row = WebAuthnCredential(
        user_id=user.id,
        credential_id=credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        name=clean,
    )
    session.add(row)
    session.flush()
    _audit(session, user, row, "created")
    return row


def authentication_options(
    session: Session, user: WebUser, *, session_id: int, rp: RelyingParty, now: dt.datetime
) -> str:
    """The options for `navigator.credentials.get()` as JSON, allowing the user's own keys
    only, with a new challenge kept for this session; `KeyRefused` if the user has none."""
    keys = list_credentials(session, user)
    if not keys:
        raise KeyRefused()
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        challenge=_issue(session, session_id=session_id, purpose=AUTHENTICATE, now=now),
        timeout=_TIMEOUT_MS,
        allow_credentials=_descriptors(keys),
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options_to_json(options)


def authenticate(
    session: Session,
    user: WebUser,
    *,
    challenge: bytes | None,
    response: str,
    rp: RelyingParty,
    now: dt.datetime,
) -> WebAuthnCredential:
    """Accept the `navigator.credentials.get()` answer `response` as this user's second
    factor: one of the user's own keys (any other is `KeyRefused`), signed over
    `challenge`, with a sign count above the stored one (an authenticator that counts
    never goes back). One conditional UPDATE stores the new count, so two requests with
    the same answer cannot both pass."""
    if challenge is None or not response:
        raise KeyRefused()
    try:
        parsed = parse_authentication_credential_json(response)
    except _MALFORMED as exc:
        raise KeyRefused() from exc
    row = session.scalar(
        select(WebAuthnCredential).where(
            WebAuthnCredential.user_id == user.id, WebAuthnCredential.credential_id == parsed.id
        )
    )
    if row is None:
        raise KeyRefused()
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            credential_public_key=row.public_key,
            credential_current_sign_count=row.sign_count,
        )
    except _MALFORMED as exc:
        raise KeyRefused() from exc
    stored = session.execute(
        update(WebAuthnCredential)
        .where(WebAuthnCredential.id == row.id, WebAuthnCredential.sign_count == row.sign_count)
        .values(sign_count=verified.new_sign_count, last_used_at=now),
        execution_options={"synchronize_session": False},
    )
    if getattr(stored, "rowcount", 0) != 1:
        raise KeyRefused()
    session.refresh(row)
    return row


def rename_credential(
    session: Session, user: WebUser, key: int, *, name: str
) -> WebAuthnCredential:
    row = _own(session, user, key)
    before = _snapshot(row, user)
    row.name = _clean_name(name)
    session.flush()
    _audit(session, user, row, "updated", before=before)
    return row


def remove_credential(
    session: Session, user: WebUser, key: int, *, password: str, passwords: Passwords
) -> None:
    """Remove one of the user's keys, after the user's current password (a session left
    open on a shared computer must not be enough to take a second factor away)."""
    row = _own(session, user, key)
    if not passwords.hashing.verify(user.password_hash, password):
        raise InvalidInput.single("current_password", "the current password is wrong", "current")
    before = _snapshot(row, user)
    session.delete(row)
    session.flush()
    _audit(session, user, row, "deleted", before=before, gone=True)
