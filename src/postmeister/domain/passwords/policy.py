"""The password policy of the hosting API, made precise.

`check_password` reports every rule a password breaks, each once, in this order:

- `min_length`, `max_length`: the length in characters, within the configured bounds.
- `min_distinct`: enough different characters, a letter's upper and lower case counting as
  one (so "aAaAaA..." does not pass for variety).
- `charset`: only ASCII letters, digits, the space and the OWASP special characters
  (``!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~``). No umlauts, no control characters: every
  client and keyboard can type such a password.
- `contains_local_part`: neither the local part nor one of its labels (split on `.`, `-`,
  `_` and `+`), in any letter case.
- `contains_domain`: neither the domain nor one of its labels, in any letter case.
  Two choices keep this rule from rejecting reasonable passwords for absurd reasons: labels
  (and whole local parts) shorter than 3 characters are ignored, since "jo" or "de" occur
  in countless words; and the domain's top-level label is ignored, since "info", "shop" or
  "berlin" say nothing about this particular mailbox.
- `banned_word`: none of the configured banned words, in any letter case.
- `keyboard_sequence`: no run of 4 or more neighbouring keys or letters, forwards or
  backwards: the QWERTY and QWERTZ letter rows (qwert, qwertz, asdf, zxcv, yxcv), the digit
  row (1234, 7890) and counting (0123), and the alphabet (abcd).
- `leaked`: not in a list of leaked passwords (see `leaked.py`), checked as typed and in
  lower case, since cracking tools try the case variants of leaked passwords first.

Messages name the rule and the requirement but never quote the password or any part of it
(not even the banned word found: the spec's example password is itself a banned word), so
they are safe to return to clients and to log.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from postmeister.config import PasswordSettings
from postmeister.domain.passwords.leaked import leaked_list_for

RULES = (
    "min_length",
    "max_length",
    "min_distinct",
    "charset",
    "contains_local_part",
    "contains_domain",
    "banned_word",
    "keyboard_sequence",
    "leaked",
)

ALLOWED_CHARACTERS = frozenset(string.ascii_letters + string.digits + " " + string.punctuation)

# Shorter labels are ignored by the local part and domain rules (see the module docstring).
_MIN_LABEL_LENGTH = 3
_LOCAL_PART_SEPARATORS = re.compile(r"[.\-_+]")

SEQUENCE_LENGTH = 4
_SEQUENCE_ROWS = (
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789",
    "1234567890",
    "qwertyuiop",
    "qwertzuiop",
    "asdfghjkl",
    "zxcvbnm",
    "yxcvbnm",
)


def _runs() -> frozenset[str]:
    # Every longer run contains a run of exactly SEQUENCE_LENGTH, so those suffice.
    return frozenset(
        text[start : start + SEQUENCE_LENGTH]
        for row in _SEQUENCE_ROWS
        for text in (row, row[::-1])
        for start in range(len(text) - SEQUENCE_LENGTH + 1)
    )


_RUNS = _runs()
# Only ASCII letters are allowed, so only their case is ignored: str.lower() would also
# turn some non-ASCII characters (the Kelvin sign, say) into ASCII letters.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


@dataclass(frozen=True)
class Violation:
    """One broken rule: `rule` is a stable name from `RULES`; `message` is one sentence
    for a person and never contains the password."""

    rule: str
    message: str


def check_password(
    password: str, *, local_part: str, domain: str, settings: PasswordSettings
) -> list[Violation]:
    """Every rule `password` breaks for the mailbox `local_part@domain`; [] if acceptable.

    `domain` is the IDNA A-label. Raises `LeakedHashFileError` if a configured leaked
    list cannot be used: a broken configuration must not let passwords through.
    """
    leaked_list = leaked_list_for(settings)
    lowered = password.translate(_ASCII_LOWER)
    found: list[Violation] = []

    def broken(rule: str, message: str) -> None:
        found.append(Violation(rule, message))

    if len(password) < settings.min_length:
        broken(
            "min_length",
            f"The password must be at least {settings.min_length} characters long.",
        )
    if len(password) > settings.max_length:
        broken(
            "max_length",
            f"The password must be at most {settings.max_length} characters long.",
        )
    if len(set(lowered)) < settings.min_distinct:
        broken(
            "min_distinct",
            f"The password must contain at least {settings.min_distinct} different "
            "characters; upper and lower case of a letter count as one.",
        )
    if not ALLOWED_CHARACTERS.issuperset(password):
        broken(
            "charset",
            "The password contains a character outside the allowed ones: letters A-Z and "
            "a-z without umlauts, digits 0-9, the space and the OWASP special characters.",
        )
    if _contains_any(lowered, _local_part_labels(local_part)):
        broken(
            "contains_local_part",
            "The password must not contain the user name of the address or a part of it.",
        )
    if _contains_any(lowered, _domain_labels(domain)):
        broken(
            "contains_domain",
            "The password must not contain the domain of the address or a part of it.",
        )
    if _contains_any(lowered, {word.lower() for word in settings.banned_words if word}):
        broken(
            "banned_word",
            "The password contains a word that is not allowed, such as the provider's "
            "name, the word password or the example password of the documentation.",
        )
    if _contains_run(lowered):
        broken(
            "keyboard_sequence",
            f"The password must not contain {SEQUENCE_LENGTH} or more neighbouring keys or "
            "letters in a row, such as a keyboard row, counting digits or the alphabet.",
        )
    if leaked_list.is_leaked(password) or (lowered != password and leaked_list.is_leaked(lowered)):
        broken(
            "leaked",
            "The password appears in a list of passwords published after data breaches, "
            "so attackers try it first.",
        )
    return found


def _local_part_labels(local_part: str) -> set[str]:
    """The local part and its labels, lower case, without the ones too short to count."""
    lowered = local_part.lower()
    candidates = [lowered, *_LOCAL_PART_SEPARATORS.split(lowered)]
    return {label for label in candidates if len(label) >= _MIN_LABEL_LENGTH}


def _domain_labels(domain: str) -> set[str]:
    """The domain and its labels but the top-level one, lower case, none too short."""
    lowered = domain.lower().rstrip(".")
    candidates = [lowered, *lowered.split(".")[:-1]]
    return {label for label in candidates if len(label) >= _MIN_LABEL_LENGTH}


def _contains_run(lowered: str) -> bool:
    # A window per position rather than a regex of all runs: linear, and fast enough even
    # for a megabyte that some client sends as a password.
    return any(
        lowered[start : start + SEQUENCE_LENGTH] in _RUNS
        for start in range(len(lowered) - SEQUENCE_LENGTH + 1)
    )


def _contains_any(text: str, parts: set[str]) -> bool:
    return any(part in text for part in parts)
