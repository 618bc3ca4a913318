"""The one canonical form of domains and addresses (UTS #46 / IDNA 2008), which the store,
the API, sync and both milters share."""

from __future__ import annotations

import pytest

from postmeister.canonical import (
    NotCanonical,
    canonical_address,
    canonical_domain,
    canonical_local_part,
)
from postmeister.domain.addresses.syntax import normalise_domain, parse_address


@pytest.mark.parametrize(
    ("spelling", "a_label"),
    [
        ("straße.example", "xn--strae-oqa.example"),
        ("STRAßE.Example", "xn--strae-oqa.example"),
        ("xn--strae-oqa.example", "xn--strae-oqa.example"),
        ("XN--STRAE-OQA.EXAMPLE.", "xn--strae-oqa.example"),
        ("strasse.example", "strasse.example"),
        ("σοφος.example", "xn--0xaajbq.example"),  # final sigma kept (IDNA 2003: σ)
        ("ΣΟΦΟΣ.example", "xn--0xaakcn.example"),
        ("Mu\u0308ller.example", "xn--mller-kva.example"),  # decomposed ü
        ("ＭÜＬＬＥＲ.example", "xn--mller-kva.example"),  # fullwidth
    ],
)
def test_domains_are_uts46_a_labels(spelling: str, a_label: str) -> None:
    assert canonical_domain(spelling) == a_label
    # The store's validating parser gives the same key.
    assert normalise_domain(spelling) == a_label


def test_ss_and_sharp_s_are_different_domains() -> None:
    assert canonical_domain("straße.example") != canonical_domain("strasse.example")
    # Python's own codec is IDNA 2003 and would merge them: never used.
    assert "straße.example".encode("idna") == b"strasse.example"


@pytest.mark.parametrize(
    "bad", ["", ".", "exa..mple", "-x-.example", "a b.example", "xn--zz.example"]
)
def test_invalid_domains_have_no_canonical_form(bad: str) -> None:
    with pytest.raises(NotCanonical):
        canonical_domain(bad)


def test_local_parts_are_lowercase_ascii_dot_atoms() -> None:
    assert canonical_local_part("John.Doe+Tag") == "john.doe+tag"
    for bad in ("", "\u212aate", "jöhn", ".x", "x..y", '"x"', "a b", "a@b"):
        with pytest.raises(NotCanonical):
            canonical_local_part(bad)


def test_addresses_and_the_store_agree() -> None:
    for spelling in ("CEO@STRAßE.example", "ceo@xn--strae-oqa.example", " Ceo@Straße.Example "):
        assert canonical_address(spelling) == "ceo@xn--strae-oqa.example"
        assert parse_address(spelling).address == "ceo@xn--strae-oqa.example"
    with pytest.raises(NotCanonical):
        canonical_address("no-at-sign")
