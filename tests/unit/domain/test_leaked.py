"""Look-ups in the shipped leaked-password list and in operator files."""

from __future__ import annotations

import hashlib
import random
import secrets
from pathlib import Path

import pytest

from postmeister.config import PasswordSettings
from postmeister.domain.passwords.leaked import (
    LeakedHashFileError,
    LeakedPasswordList,
    leaked_list_for,
    password_sha1,
)


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest().upper()


def write_hash_file(
    path: Path,
    hashes: list[str],
    *,
    counts: bool = True,
    newline: str = "\r\n",
    final_newline: bool = True,
) -> list[str]:
    """An HIBP-style file of `hashes`, sorted; returns the sorted hashes."""
    rng = random.Random(len(hashes))
    ordered = sorted(hashes, key=str.upper)
    lines = [f"{h}:{rng.randint(1, 10 ** rng.randint(1, 7))}" if counts else h for h in ordered]
    path.write_text(newline.join(lines) + (newline if final_newline else ""), newline="")
    return ordered


def filler_hashes(count: int) -> list[str]:
    return [sha1(f"filler-{n}") for n in range(count)]


def operator_list(path: Path) -> LeakedPasswordList:
    return LeakedPasswordList([path], include_shipped=False)


def neighbours(hex_hash: str) -> list[str]:
    value = int(hex_hash, 16)
    return [f"{v:040X}" for v in (value - 1, value + 1) if 0 <= v < 16**40]


# -- the shipped list ----------------------------------------------------------------------


@pytest.mark.parametrize("password", ["123456", "password", "qwerty", "letmein", "monkey"])
def test_shipped_list_knows_common_passwords(password: str) -> None:
    assert LeakedPasswordList().is_leaked(password)


def test_shipped_list_does_not_know_a_random_password() -> None:
    assert not LeakedPasswordList().is_leaked(secrets.token_urlsafe(18))


def test_shipped_list_is_consulted_besides_operator_files(tmp_path: Path) -> None:
    hash_file = tmp_path / "pwned.txt"
    write_hash_file(hash_file, [sha1("Sommer im Garten 2024!")])
    leaked = leaked_list_for(PasswordSettings(leaked_hash_files=[hash_file]))

    assert leaked.is_leaked("Sommer im Garten 2024!")
    assert leaked.is_leaked("123456")
    assert not leaked.is_leaked("Winter im Garten 2024!")


# -- operator files ------------------------------------------------------------------------


def test_operator_file_finds_an_added_password_among_thousands(tmp_path: Path) -> None:
    hash_file = tmp_path / "pwned.txt"
    write_hash_file(hash_file, [*filler_hashes(5000), sha1("Sommer im Garten 2024!")])
    leaked = operator_list(hash_file)

    assert leaked.is_leaked("Sommer im Garten 2024!")
    assert not leaked.is_leaked("Winter im Garten 2024!")
    assert not leaked.is_leaked("sommer im garten 2024!")
    assert not leaked.is_leaked("123456")  # only the shipped list has it


def test_first_and_last_lines_are_found_and_their_neighbours_are_not(tmp_path: Path) -> None:
    hash_file = tmp_path / "pwned.txt"
    ordered = write_hash_file(hash_file, filler_hashes(4000))
    leaked = operator_list(hash_file)

    for present in (ordered[0], ordered[1], ordered[-2], ordered[-1]):
        assert leaked.contains_sha1(present)
    for absent in [*neighbours(ordered[0]), *neighbours(ordered[-1]), "0" * 40, "F" * 40]:
        assert not leaked.contains_sha1(absent)


def test_every_line_is_found_and_nothing_between_lines(tmp_path: Path) -> None:
    # Counts of 1 to 7 digits make lines of different lengths, so a seek lands anywhere.
    hash_file = tmp_path / "pwned.txt"
    ordered = write_hash_file(hash_file, filler_hashes(300))
    leaked = operator_list(hash_file)

    for present in ordered:
        assert leaked.contains_sha1(present)
    present_set = set(ordered)
    for hex_hash in ordered:
        for absent in neighbours(hex_hash):
            if absent not in present_set:
                assert not leaked.contains_sha1(absent)


@pytest.mark.parametrize(
    ("counts", "newline", "final_newline"),
    [(True, "\r\n", True), (False, "\n", True), (True, "\n", False), (False, "\r\n", False)],
    ids=["hibp", "bare-lf", "counts-no-final-newline", "bare-crlf-no-final-newline"],
)
def test_line_formats_are_all_searchable(
    tmp_path: Path, counts: bool, newline: str, final_newline: bool
) -> None:
    hash_file = tmp_path / "pwned.txt"
    ordered = write_hash_file(
        hash_file, filler_hashes(257), counts=counts, newline=newline, final_newline=final_newline
    )
    leaked = operator_list(hash_file)

    assert all(leaked.contains_sha1(h) for h in ordered)
    assert not leaked.contains_sha1(sha1("not in the file"))


def test_hex_case_does_not_matter(tmp_path: Path) -> None:
    hash_file = tmp_path / "pwned.txt"
    write_hash_file(
        hash_file, [h.lower() for h in filler_hashes(1000)] + [sha1("Gartenzaun").lower()]
    )
    leaked = operator_list(hash_file)

    assert leaked.is_leaked("Gartenzaun")
    assert leaked.contains_sha1(sha1("filler-7").lower())
    assert leaked.contains_sha1(sha1("filler-7"))


def test_single_line_file(tmp_path: Path) -> None:
    hash_file = tmp_path / "pwned.txt"
    write_hash_file(hash_file, [sha1("Gartenzaun")])
    leaked = operator_list(hash_file)

    assert leaked.is_leaked("Gartenzaun")
    assert not leaked.is_leaked("Gartentor")
    assert not leaked.contains_sha1("0" * 40)
    assert not leaked.contains_sha1("F" * 40)


def test_password_is_hashed_as_utf8(tmp_path: Path) -> None:
    assert (
        password_sha1("Grüße")
        == hashlib.sha1("Grüße".encode(), usedforsecurity=False).hexdigest().upper()
    )
    assert len(password_sha1("\ud800 lone surrogate")) == 40


def test_contains_sha1_refuses_what_is_not_a_sha1_hash() -> None:
    with pytest.raises(ValueError, match="40 hex digits"):
        LeakedPasswordList().contains_sha1("123456")


# -- broken operator files -----------------------------------------------------------------


def test_missing_file_is_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(LeakedHashFileError, match=r"nope\.txt.*cannot be read"):
        LeakedPasswordList([tmp_path / "nope.txt"])


def test_directory_is_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(LeakedHashFileError, match="cannot be read"):
        LeakedPasswordList([tmp_path])


def test_empty_file_is_refused(tmp_path: Path) -> None:
    hash_file = tmp_path / "pwned.txt"
    hash_file.write_bytes(b"")
    with pytest.raises(LeakedHashFileError, match="empty"):
        LeakedPasswordList([hash_file])


def test_file_ordered_by_count_is_refused(tmp_path: Path) -> None:
    hash_file = tmp_path / "pwned.txt"
    hash_file.write_text(f"{'F' * 40}:9999\r\n{'0' * 40}:1\r\n", newline="")
    with pytest.raises(LeakedHashFileError, match="not sorted"):
        LeakedPasswordList([hash_file])


def test_ntlm_file_is_refused(tmp_path: Path) -> None:
    hash_file = tmp_path / "pwned-ntlm.txt"
    hash_file.write_text(f"{'0' * 32}:3\r\n{'F' * 32}:1\r\n", newline="")
    with pytest.raises(LeakedHashFileError, match="SHA-1"):
        LeakedPasswordList([hash_file])


def test_plain_text_password_list_is_refused(tmp_path: Path) -> None:
    hash_file = tmp_path / "rockyou.txt"
    hash_file.write_text("123456\npassword\n")
    with pytest.raises(LeakedHashFileError, match="not a SHA-1 hash"):
        LeakedPasswordList([hash_file])


def test_file_removed_after_construction_makes_lookups_fail(tmp_path: Path) -> None:
    hash_file = tmp_path / "pwned.txt"
    write_hash_file(hash_file, filler_hashes(10))
    leaked = operator_list(hash_file)
    hash_file.unlink()

    with pytest.raises(OSError, match="pwned"):
        leaked.is_leaked("Gartenzaun")
