"""The password rules of the hosting API, one at a time and together."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from postmeister.config import PasswordSettings
from postmeister.domain.passwords.leaked import LeakedHashFileError
from postmeister.domain.passwords.policy import RULES, check_password

LOCAL_PART = "postfach"
DOMAIN = "beispielkunde.info"
GOOD = "Drei Kraniche flogen 9x nach Sylt!"


def rules(
    password: str,
    *,
    local_part: str = LOCAL_PART,
    domain: str = DOMAIN,
    settings: PasswordSettings | None = None,
) -> list[str]:
    """The names of the broken rules; also checks what every message must satisfy."""
    violations = check_password(
        password,
        local_part=local_part,
        domain=domain,
        settings=settings or PasswordSettings(),
    )
    for violation in violations:
        assert violation.rule in RULES
        assert violation.message.endswith(".")
        if len(password) >= 4:
            assert password not in violation.message
            assert password.lower() not in violation.message.lower()
    return [violation.rule for violation in violations]


def test_good_password_is_accepted() -> None:
    assert rules(GOOD) == []


def test_spec_example_password_is_rejected_in_any_case() -> None:
    assert rules("lieber laenger, als kuerzer") == ["banned_word"]
    assert rules("Lieber Laenger, als Kuerzer") == ["banned_word"]


def test_common_password_breaks_several_rules_in_stable_order() -> None:
    assert rules("123456") == ["min_length", "min_distinct", "keyboard_sequence", "leaked"]


@pytest.mark.parametrize("password", ["monkey", "Dragon", "LETMEIN"])
def test_known_common_password_is_rejected_as_leaked(password: str) -> None:
    assert "leaked" in rules(password)


# -- length --------------------------------------------------------------------------------


def test_too_short_password_breaks_only_min_length() -> None:
    assert rules("Kr9!vZ2#mQ") == ["min_length"]


def test_length_bounds_are_inclusive() -> None:
    sixteen = "Kr9!vZ2#mQxWp4Hj"
    assert len(sixteen) == 16
    assert rules(sixteen) == []
    assert rules(sixteen[:15]) == ["min_length"]


def test_too_long_password_breaks_only_max_length() -> None:
    text = (GOOD + " ") * 40
    assert rules(text[:1024]) == []
    assert rules(text[:1025]) == ["max_length"]


def test_length_limits_come_from_the_settings() -> None:
    settings = PasswordSettings(min_length=40, max_length=50)
    assert rules(GOOD, settings=settings) == ["min_length"]
    assert rules(GOOD + " und dann weiter nach Rom", settings=settings) == ["max_length"]


# -- distinct characters -------------------------------------------------------------------


def test_few_distinct_characters_break_only_min_distinct() -> None:
    assert rules("Ab7Ab7Ab7Ab7Ab7Ab7") == ["min_distinct"]


def test_upper_and_lower_case_count_as_one_character() -> None:
    # 16 different characters as typed, but only 8 when case is ignored.
    assert rules("aAeEiIoOuUxXzZ77") == ["min_distinct"]


def test_exactly_min_distinct_characters_are_enough() -> None:
    assert rules("Kr9!vZ2#mQ" * 2) == []


# -- characters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "Drei Kraniche flögen 9x nach Sylt!",
        "Drei Kraniche flogen 9x nach Sylt\t!",
        "Drei Kraniche flogen 9x nach Sylt 🐦",
        "Drei Kraniche flogen 9x nach\u00a0Sylt!",
        "Drei Kraniche flogen 9x nach Sylt\x00",
    ],
    ids=["umlaut", "tab", "emoji", "no-break-space", "nul"],
)
def test_character_outside_the_allowed_set_breaks_only_charset(password: str) -> None:
    assert rules(password) == ["charset"]


def test_every_owasp_special_character_and_the_space_are_allowed() -> None:
    specials = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    assert rules("Kraniche9x" + specials) == []


# -- the address ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local_part", "password"),
    [
        ("postfach", "Drei PostFach-Kraniche 9x nach Sylt!"),
        ("max.mustermann", "Drei MUSTERMANN flogen 9x nach Sylt!"),
        ("anna+newsletter", "Drei Kraniche lesen 9x den Newsletter"),
        ("info-team_west", "Drei Kraniche flogen 9x nach Westen"),
    ],
)
def test_local_part_or_its_label_breaks_only_contains_local_part(
    local_part: str, password: str
) -> None:
    assert rules(password, local_part=local_part) == ["contains_local_part"]


def test_local_part_labels_shorter_than_three_characters_are_ignored() -> None:
    assert rules("Jo, drei Kraniche flogen 9x nach Sylt!", local_part="jo.de") == []


@pytest.mark.parametrize(
    ("domain", "password"),
    [
        ("beispielkunde.info", "Drei Beispielkunde-Kraniche 9x nach Sylt!"),
        ("beispielkunde.info", "Drei Kraniche 9x: BEISPIELKUNDE.INFO"),
        ("mail.beispielkunde.info", "Drei Kraniche mailen 9x nach Sylt!"),
    ],
)
def test_domain_or_its_label_breaks_only_contains_domain(domain: str, password: str) -> None:
    assert rules(password, domain=domain) == ["contains_domain"]


def test_top_level_label_and_short_domain_labels_are_ignored() -> None:
    assert rules("Info: drei Kraniche flogen 9x nach Sylt", domain="beispielkunde.info") == []
    assert rules("Drei Kraniche flogen 9x nach Sylt!", domain="ei.example.de") == []


# -- banned words --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "Drei VARIOMEDIA-Kraniche 9x nach Sylt!",
        "Mein PassWort ist 9x besser als Sylt",
        "Drei Postmeister flogen 9x nach Sylt!",
        "Drei Kraniche flogen 9x zu vrmd Sylt",
    ],
)
def test_banned_word_breaks_only_banned_word(password: str) -> None:
    assert rules(password) == ["banned_word"]


def test_banned_words_come_from_the_settings() -> None:
    settings = PasswordSettings(banned_words=["KRANICH"])
    assert rules(GOOD, settings=settings) == ["banned_word"]
    assert rules("Drei VARIOMEDIA-Kraniche 9x nach Sylt!", settings=settings) == ["banned_word"]
    assert rules("Drei Variomedia-Reiher 9x nach Sylt!", settings=settings) == []


# -- keyboard sequences --------------------------------------------------------------------


@pytest.mark.parametrize(
    "run",
    [
        "qwer",
        "QWERTZ",
        "tzui",  # only on QWERTZ
        "tyui",  # only on QWERTY
        "asdf",
        "lkjh",
        "yxcv",
        "zxcv",
        "mnbv",
        "1234",
        "7890",
        "0123",
        "4321",
        "abcd",
        "DcBa",
        "uvwxyz",
    ],
)
def test_keyboard_or_alphabet_run_breaks_only_keyboard_sequence(run: str) -> None:
    assert rules(f"Drei {run} Kraniche flogen 9x nach Sylt!") == ["keyboard_sequence"]


def test_runs_of_three_are_allowed_and_several_runs_are_reported_once() -> None:
    assert rules("Drei abc Kraniche qwe 9x nach Sylt!") == []
    assert rules("Drei qwer asdf Kraniche 9x 1234 Sylt") == ["keyboard_sequence"]


# -- leaked lists --------------------------------------------------------------------------


def sha1_line(password: str) -> str:
    return hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper() + ":7\r\n"


def test_password_in_operator_list_breaks_only_leaked(tmp_path: Path) -> None:
    leaked = "Sieben Kraniche flogen 9x nach Rom"
    fillers = [sha1_line(f"filler-{n}") for n in range(3000)]
    hash_file = tmp_path / "pwned.txt"
    hash_file.write_text("".join(sorted([*fillers, sha1_line(leaked)])), newline="")
    settings = PasswordSettings(leaked_hash_files=[hash_file])

    assert rules(leaked, settings=settings) == ["leaked"]
    assert rules(GOOD, settings=settings) == []


def test_lower_case_form_of_a_leaked_password_counts_as_leaked(tmp_path: Path) -> None:
    hash_file = tmp_path / "pwned.txt"
    hash_file.write_text(sha1_line(GOOD.lower()), newline="")
    settings = PasswordSettings(leaked_hash_files=[hash_file])

    assert rules(GOOD, settings=settings) == ["leaked"]


def test_missing_operator_list_raises_instead_of_passing(tmp_path: Path) -> None:
    settings = PasswordSettings(leaked_hash_files=[tmp_path / "missing.txt"])

    with pytest.raises(LeakedHashFileError, match=r"missing\.txt"):
        rules(GOOD, settings=settings)
