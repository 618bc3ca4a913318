"""Pure rules of web logins: the throttle, session lifetimes, TOTP codes, locales.

No SQL and no HTTP here; `service.py` feeds these the counts and rows it read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Final

import pyotp

from postmeister.errors import DomainError

# Failed logins counted over this window. Per account: enough for typos, far too few for
# guessing; per client address: more, since one address may be a whole office's NAT.
THROTTLE_WINDOW: Final = dt.timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT: Final = 5
MAX_FAILURES_PER_CLIENT: Final = 20
# A full session lives a working day; one waiting for its second factor a few minutes.
SESSION_LIFETIME: Final = dt.timedelta(hours=12)
SECOND_FACTOR_LIFETIME: Final = dt.timedelta(minutes=5)
LOCALES: Final = ("en", "de")
DEFAULT_LOCALE: Final = "en"
MAX_EMAIL: Final = 254
_EMAIL: Final = re.compile(r"[^@\s]{1,64}@[^@\s]{1,253}")
_CODE: Final = re.compile(r"[0-9]{6}")


class LoginRefused(DomainError):
    """Wrong address or password, or an account that may not log in: one message for all,
    so that a guesser learns nothing about which accounts exist."""

    def __init__(self) -> None:
        super().__init__("the address or the password is wrong")


class LoginThrottled(DomainError):
    """Too many failed logins for this account or from this client address lately."""

    def __init__(self, retry_after: dt.timedelta) -> None:
        super().__init__("too many failed logins; try again later")
        self.retry_after = retry_after


class SecondFactorRefused(DomainError):
    """The TOTP code is not the current one."""

    def __init__(self) -> None:
        super().__init__("the code is wrong or expired")


@dataclass(frozen=True)
class FailureCounts:
    account: int
    client: int


def throttled(counts: FailureCounts) -> bool:
    """Whether another attempt must be refused before the password is even checked."""
    return counts.account >= MAX_FAILURES_PER_ACCOUNT or counts.client >= MAX_FAILURES_PER_CLIENT


def normalise_email(value: str) -> str | None:
    """The login name as stored (trimmed, lower case), or None if it cannot be one."""
    clean = value.strip().lower()
    if len(clean) > MAX_EMAIL or not _EMAIL.fullmatch(clean):
        return None
    return clean


def token_digest(token: str) -> str:
    """The stored form of a session cookie's value: a 256-bit random secret needs no slow
    hash (see `app_passwords.service`), and equality lookup needs a deterministic one."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_step(secret: str, code: str, *, now: dt.datetime) -> int | None:
    """The time step whose TOTP code of `secret` is `code`: now's, or the step either side
    (a phone clock a few seconds off must not lock anyone out); None: no match."""
    clean = code.replace(" ", "")
    if not _CODE.fullmatch(clean):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), clean):
            return step
    return None


def totp_uri(secret: str, *, account: str, issuer: str = "Postmeister") -> str:
    """The otpauth:// URI an authenticator app imports."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def choose_locale(setting: str | None, accept_language: str | None) -> str:
    """The user's own setting; else the first supported language the browser asks for
    (by quality, then order); else English."""
    if setting in LOCALES:
        return setting
    wanted: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = tag.strip().lower().split("-", 1)[0]
        if language in LOCALES and quality > 0:
            wanted.append((-quality, index, language))
    return sorted(wanted)[0][2] if wanted else DEFAULT_LOCALE
