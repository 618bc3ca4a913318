"""The sender milter's decision with a fake lookup: which header From addresses it asks
about (always in the store's canonical form), and what it refuses without asking."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postmeister.dataplane.milter.sender import (
    LOOKUP_FAILED,
    NEEDS_FROM,
    NEEDS_LOGIN,
    UNREADABLE_FROM,
    decide,
    header_addresses,
)

LOGIN = "ceo@strasse.example"
# The lookup's answers: A (strasse.example) owns its own address only.
ALLOWED = {(LOGIN, "ceo@strasse.example")}


class FakePolicy:
    def __init__(self, allowed: set[tuple[str, str]] | None = None) -> None:
        self.allowed = ALLOWED if allowed is None else allowed
        self.asked: list[str] = []

    def may_send_as(self, login: str, address: str) -> bool:
        self.asked.append(address)
        return (login, address) in self.allowed


class BrokenPolicy:
    def may_send_as(self, login: str, address: str) -> bool:
        raise OSError("database is down")


@pytest.mark.parametrize(
    "header",
    [
        "ceo@straße.example",
        "CEO@STRAßE.example",
        "ceo@xn--strae-oqa.example",
        "ceo@XN--STRAE-OQA.EXAMPLE",
        "Chef <ceo@Straße.Example>",
        "ceo@STRA\u1e9eE.example",  # capital sharp s maps to ß, not ss
    ],
)
def test_every_spelling_of_another_domain_is_asked_as_its_a_label(header: str) -> None:
    policy = FakePolicy()
    verdict = decide(LOGIN, [header], policy)
    assert not verdict.accept
    assert verdict.reply.startswith("550 5.7.1 Header From")
    # Never mapped to strasse.example (IDNA 2003 would have made it A's own address).
    assert policy.asked == ["ceo@xn--strae-oqa.example"]


def test_final_sigma_and_uppercase_greek_stay_distinct_domains() -> None:
    login = "boss@xn--0xaajbq.example"  # σοφος.example (final sigma)
    policy = FakePolicy({(login, "boss@xn--0xaajbq.example")})
    assert decide(login, ["boss@σοφος.example"], policy).accept
    # ΣΟΦΟΣ maps to σοφοσ (no final sigma): another domain, not the login's.
    assert not decide(login, ["boss@ΣΟΦΟΣ.example"], policy).accept
    assert policy.asked[-1] == "boss@xn--0xaakcn.example"


def test_decomposed_umlauts_meet_the_composed_a_label() -> None:
    login = "anna@xn--mller-kva.example"
    policy = FakePolicy({(login, login)})
    assert decide(login, ["Anna <ANNA@Mu\u0308ller.example>"], policy).accept
    assert policy.asked == [login]


@pytest.mark.parametrize(
    "header",
    [
        "\u212aate@strasse.example",  # Kelvin sign: lower() would make it 'kate'
        "cé@strasse.example",  # a local part the store cannot hold
        '"c e o"@strasse.example',  # a quoted local part that needs its quotes
        "ceo@[192.0.2.1]",  # domain literal
        "ceo@-bad-.example",
        "ceo@exa..mple",
    ],
)
def test_what_has_no_canonical_form_is_refused_without_a_lookup(header: str) -> None:
    policy = FakePolicy({(LOGIN, "*")})
    verdict = decide(LOGIN, [header], policy)
    assert not verdict.accept
    assert verdict.reply.startswith("550 5.7.1")
    assert policy.asked == []


def test_every_address_of_every_from_header_must_be_allowed() -> None:
    policy = FakePolicy()
    assert decide(LOGIN, ["ceo@strasse.example"], policy).accept
    assert not decide(LOGIN, ["ceo@strasse.example, ceo@straße.example"], policy).accept
    assert not decide(LOGIN, ["ceo@strasse.example", "ceo@straße.example"], policy).accept
    assert not decide(LOGIN, ["Group: ceo@strasse.example, x@straße.example;"], policy).accept


def test_a_header_parsers_disagree_on_is_refused() -> None:
    # Old getaddresses() reads only alice; a mail program may show bob.
    tricky = "ceo@strasse.example)<ceo@xn--strae-oqa.example>"
    assert header_addresses([tricky]) is None
    assert decide(LOGIN, [tricky], FakePolicy()).reply == UNREADABLE_FROM


def test_folded_headers_are_unfolded() -> None:
    assert header_addresses(["Chef\r\n <ceo@strasse.example>"]) == ["ceo@strasse.example"]


def test_missing_login_from_or_database() -> None:
    assert decide(None, ["ceo@strasse.example"], FakePolicy()).reply == NEEDS_LOGIN
    assert decide(LOGIN, [], FakePolicy()).reply == NEEDS_FROM
    assert decide(LOGIN, ["Undisclosed:;"], FakePolicy()).reply == NEEDS_FROM
    assert decide(LOGIN, ["ceo@strasse.example"], BrokenPolicy()).reply == LOOKUP_FAILED


HEADER_TEXT = st.text(
    alphabet=st.sampled_from([*string.printable, "ß", "ς", "\u0308", "\u212a", "ｃ", "\0"]),
    max_size=60,
)


@settings(max_examples=2000, deadline=None)
@given(values=st.lists(HEADER_TEXT, min_size=1, max_size=3))
def test_any_header_gets_a_verdict_and_only_asked_addresses_pass(values: list[str]) -> None:
    """Garbage never crashes the milter (which would only tempfail), and a message passes
    only when the lookup approved a canonical address for each From address found."""
    policy = FakePolicy({(LOGIN, "ceo@strasse.example")})
    verdict = decide(LOGIN, values, policy)
    assert verdict.reply.startswith("550 5.7.1") or verdict.accept
    if verdict.accept:
        found = header_addresses(values)
        assert found
        assert policy.asked == ["ceo@strasse.example"] * len(found)
