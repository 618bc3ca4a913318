"""Generated passwords: always accepted by the policy, never the same twice."""

from __future__ import annotations

import string

import pytest

from postmeister.config import PasswordSettings
from postmeister.domain.passwords.generator import (
    UnsatisfiablePasswordSettingsError,
    generate_password,
)
from postmeister.domain.passwords.policy import check_password


def generate_and_check(local_part: str, domain: str, settings: PasswordSettings) -> str:
    password = generate_password(local_part=local_part, domain=domain, settings=settings)
    violations = check_password(password, local_part=local_part, domain=domain, settings=settings)
    assert violations == []
    return password


def test_generated_passwords_pass_the_policy_and_all_differ() -> None:
    settings = PasswordSettings()
    passwords = [generate_and_check("postfach", "beispielkunde.info", settings) for _ in range(200)]

    assert len(set(passwords)) == len(passwords)
    assert all(len(p) >= 24 for p in passwords)


def test_generated_passwords_are_easy_to_type() -> None:
    password = generate_and_check("postfach", "beispielkunde.info", PasswordSettings())

    assert set(password) <= set(string.ascii_letters + string.digits)
    assert not set(password) & set("0Oo1lI")


@pytest.mark.parametrize(
    ("local_part", "domain"),
    [
        ("abc.def-ghi", "xyz.mno.example"),
        ("max.mustermann+news", "xn--mnchen-3ya.de"),
        ("a", "b.c"),
    ],
)
def test_generated_passwords_pass_for_any_address(local_part: str, domain: str) -> None:
    settings = PasswordSettings()
    for _ in range(100):
        generate_and_check(local_part, domain, settings)


def test_generated_passwords_follow_stricter_settings() -> None:
    settings = PasswordSettings(min_length=40, min_distinct=30)
    for _ in range(50):
        assert len(generate_and_check("postfach", "beispielkunde.info", settings)) >= 40


def test_generated_passwords_respect_a_low_max_length() -> None:
    settings = PasswordSettings(min_length=16, max_length=18)
    for _ in range(50):
        assert len(generate_and_check("postfach", "beispielkunde.info", settings)) <= 18


def test_draws_that_break_a_rule_are_drawn_again() -> None:
    # More than half of all random draws contain an "a" or "A".
    settings = PasswordSettings(banned_words=["a"])
    for _ in range(50):
        assert "a" not in generate_and_check("postfach", "beispielkunde.info", settings).lower()


@pytest.mark.parametrize(
    "settings",
    [PasswordSettings(min_length=30, max_length=20), PasswordSettings(min_distinct=100)],
    ids=["max-below-min", "too-many-distinct"],
)
def test_unsatisfiable_settings_raise(settings: PasswordSettings) -> None:
    with pytest.raises(UnsatisfiablePasswordSettingsError):
        generate_password(local_part="postfach", domain="beispielkunde.info", settings=settings)
