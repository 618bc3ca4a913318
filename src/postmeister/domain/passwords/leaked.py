"""Look-ups in lists of leaked passwords stored as sorted SHA-1 hashes.

File format: one SHA-1 hash per line as 40 hex digits (either case), optionally followed by
`:COUNT`, lines sorted ascending by hash, LF or CRLF line ends. That is the format breach
corpora publish (Have I Been Pwned's SHA-1 download "ordered by hash"), so an operator can
point `passwords.leaked_hash_files` at such a file as downloaded, even one of tens of GB.

A look-up is a binary search over byte offsets: seek to the middle, skip to the next line
start (lines differ in length), compare, halve. It reads a few dozen lines, never the
whole file, so memory stays constant whatever the file size. Each look-up opens the file
afresh: no file position is shared between threads, and a file replaced by rename is
picked up at once.

The shipped list (`postmeister/data/common-passwords-sha1.txt`) is always consulted. It
holds the SHA-1 hashes of the 3,545 passwords in John the Ripper's `password.lst`, the most
common passwords seen on Unix systems in the 1990s and in website breaches of 2006-2010,
compiled by Solar Designer (Openwall) and declared by its header to be in the public domain.
It comes from Debian's package `john-data` (1.9.0-2, `/usr/share/john/password.lst`).
All of those passwords are shorter than 16 characters, so under the default length rule the
list is a second line of defence; a site that wants the check to matter configures a large
corpus such as the Pwned Passwords SHA-1 file. Regenerate the shipped list with:

    apt-get install john-data
    scripts/build-leaked-list /usr/share/john/password.lst \\
        > src/postmeister/data/common-passwords-sha1.txt
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import BinaryIO

from postmeister.config import PasswordSettings

SHIPPED_LIST_NAME = "common-passwords-sha1.txt"

_HASH_LINE = re.compile(rb"[0-9A-Fa-f]{40}(?::[0-9]+)?[ \t\r]*\n?")
_NTLM_LINE = re.compile(rb"[0-9A-Fa-f]{32}(?::[0-9]+)?[ \t\r]*\n?")
_SHA1_HEX = re.compile(r"[0-9A-Fa-f]{40}")
# Sorts after every hex key: blank lines (at the end of a file) and end of file.
_AFTER_ALL = b"\xff"
# Enough to hold the last line of any well-formed file.
_TAIL_BYTES = 4096


class LeakedHashFileError(Exception):
    """A leaked-password file cannot be used: missing, unreadable, empty, or not sorted
    SHA-1 lines. Raised when the list is built, so a misconfigured file stops start-up
    instead of silently letting every password pass."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"leaked-password file {path}: {reason}")
        self.path = path
        self.reason = reason


def password_sha1(password: str) -> str:
    """The upper-case hex SHA-1 of the password's UTF-8 bytes, as breach corpora list it.

    Lone surrogates (JSON can carry them) are encoded as they are instead of raising, so
    any string can be looked up; such a password fails the character rule anyway.
    """
    data = password.encode("utf-8", "surrogatepass")
    return hashlib.sha1(data, usedforsecurity=False).hexdigest().upper()


def shipped_list_path() -> Path:
    """Where the list shipped inside the package lies on disk."""
    return Path(str(resources.files("postmeister.data").joinpath(SHIPPED_LIST_NAME)))


class LeakedPasswordList:
    """The shipped list plus the operator's files, searched in that order.

    Every file is checked when the list is built (readable, first and last line well
    formed, first hash not after the last); the order of the lines in between is trusted.
    A file that becomes unreadable later makes look-ups raise `OSError`, never pass.
    """

    def __init__(
        self, operator_files: Iterable[Path] = (), *, include_shipped: bool = True
    ) -> None:
        files = [shipped_list_path()] if include_shipped else []
        files.extend(Path(path) for path in operator_files)
        for path in files:
            _check_file(path)
        self._files = tuple(files)

    @property
    def files(self) -> tuple[Path, ...]:
        return self._files

    def is_leaked(self, password: str) -> bool:
        """Whether the exact password (same letter case) appears in any of the files."""
        return self.contains_sha1(password_sha1(password))

    def contains_sha1(self, hex_digest: str) -> bool:
        """Whether a SHA-1 hash (40 hex digits, either case) appears in any of the files."""
        if not _SHA1_HEX.fullmatch(hex_digest):
            raise ValueError("expected a SHA-1 hash as 40 hex digits")
        key = hex_digest.upper().encode("ascii")
        return any(_sorted_file_contains(path, key) for path in self._files)


def leaked_list_for(settings: PasswordSettings) -> LeakedPasswordList:
    """The list for these settings, built once per distinct set of files.

    Call it at start-up: a misconfigured file then stops the process there, rather than
    failing the first password change. A failed build is not cached.
    """
    return _cached_list(tuple(settings.leaked_hash_files))


@lru_cache(maxsize=16)
def _cached_list(operator_files: tuple[Path, ...]) -> LeakedPasswordList:
    return LeakedPasswordList(operator_files)


def _check_file(path: Path) -> None:
    try:
        with path.open("rb") as f:
            first = f.readline(_TAIL_BYTES)
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read()
    except OSError as exc:
        raise LeakedHashFileError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if not first:
        raise LeakedHashFileError(path, "is empty; expected one SHA-1 hash per line")
    last = tail.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    first_key = _checked_key(path, first, "first")
    last_key = _checked_key(path, last, "last")
    if first_key > last_key:
        raise LeakedHashFileError(
            path,
            "is not sorted by hash (its first hash is greater than its last); "
            "use a list ordered by hash, not by count",
        )


def _checked_key(path: Path, line: bytes, which: str) -> bytes:
    if _HASH_LINE.fullmatch(line):
        return _line_key(line)
    if _NTLM_LINE.fullmatch(line):
        reason = f"its {which} line holds a 32-digit hash (NTLM?); SHA-1 hashes are needed"
    else:
        reason = f"its {which} line is not a SHA-1 hash in hex, optionally with ':COUNT'"
    raise LeakedHashFileError(path, reason)


def _line_key(line: bytes) -> bytes:
    key = line.split(b":", 1)[0].strip().upper()
    return key or _AFTER_ALL


def _line_from(f: BinaryIO, offset: int) -> bytes:
    """The first line that starts at or after byte `offset` (b"" at end of file)."""
    if offset == 0:
        f.seek(0)
    else:
        # Skip the rest of the line holding byte offset-1; if that byte is a newline,
        # this reads just it and `offset` itself is a line start.
        f.seek(offset - 1)
        f.readline()
    return f.readline()


def _sorted_file_contains(path: Path, key: bytes) -> bool:
    with path.open("rb") as f:
        # Find the smallest offset whose next line has a key >= `key`; keys of "the next
        # line at or after offset" never decrease as the offset grows, so halving works.
        lo, hi = 0, f.seek(0, os.SEEK_END)
        while lo < hi:
            mid = (lo + hi) // 2
            if _line_key(_line_from(f, mid)) >= key:
                hi = mid
            else:
                lo = mid + 1
        return _line_key(_line_from(f, lo)) == key
