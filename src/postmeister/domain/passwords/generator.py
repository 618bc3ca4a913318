"""Random mailbox passwords that the policy always accepts.

A generated password is at least 24 characters drawn with `secrets` from letters and digits
without the look-alikes 0/O/o, 1/l/I: about 139 bits for 24 characters, far beyond guessing,
and easy to read off a screen and type on a phone, since people do. Specials add little at
this length and cause quoting trouble in shells and client configuration files.

A draw that breaks a rule anyway (a chance run like "wxyz", or a 3-letter label of the
address) is thrown away and drawn again. Only settings that no random password can meet
end the retries, with an error rather than a weaker password.
"""

from __future__ import annotations

import secrets
import string

from postmeister.config import PasswordSettings
from postmeister.domain.passwords.policy import ALLOWED_CHARACTERS, check_password

DEFAULT_LENGTH = 24
_READABLE = "".join(c for c in string.ascii_letters + string.digits if c not in "0Oo1lI")
# For settings that ask for more distinct characters than letters and digits can give.
_WIDE = "".join(sorted(ALLOWED_CHARACTERS - {" "}))
_MAX_ATTEMPTS = 1000


class UnsatisfiablePasswordSettingsError(ValueError):
    """The password settings admit no generated password, e.g. `max_length` below
    `min_length`, or more distinct characters required than the length allows."""


def generate_password(*, local_part: str, domain: str, settings: PasswordSettings) -> str:
    """A new random password for `local_part@domain` that `check_password` accepts."""
    length = max(DEFAULT_LENGTH, settings.min_length, 2 * settings.min_distinct)
    length = min(length, settings.max_length)
    if length < settings.min_length:
        raise UnsatisfiablePasswordSettingsError(
            f"max_length {settings.max_length} is below min_length {settings.min_length}"
        )
    if settings.min_distinct > _distinct(_WIDE):
        raise UnsatisfiablePasswordSettingsError(
            f"min_distinct {settings.min_distinct} exceeds the {_distinct(_WIDE)} "
            "characters the policy allows"
        )
    # Two draws per distinct character needed keep the retries rare; past what the
    # readable alphabet offers (33 characters when case is ignored), take all allowed ones.
    alphabet = _READABLE if 2 * settings.min_distinct <= _distinct(_READABLE) else _WIDE
    for _ in range(_MAX_ATTEMPTS):
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if not check_password(password, local_part=local_part, domain=domain, settings=settings):
            return password
    raise UnsatisfiablePasswordSettingsError(
        f"no random password of {length} characters met the password settings "
        f"in {_MAX_ATTEMPTS} attempts; check min_length, max_length, min_distinct "
        "and banned_words"
    )


def _distinct(alphabet: str) -> int:
    return len(set(alphabet.lower()))
