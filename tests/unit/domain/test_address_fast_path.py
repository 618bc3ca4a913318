"""The shortcuts of address parsing give exactly the answers of the full rules.

`parse_local_part` skips email_validator for plain local parts and `normalise_domain` keeps
the A-labels of names it has seen (both for the speed of large sync documents); these tests
compare them with the full path on every short string over an alphabet chosen to hit each
edge (dots, separators, case, characters the shortcut leaves to the validator).
"""

from __future__ import annotations

import itertools

import pytest

from postmeister.domain.addresses import syntax
from postmeister.errors import InvalidInput

# Letters of both cases, a digit, the separators the shortcut allows, and characters it
# leaves to the full path (other atext, a space, non-ASCII, the Kelvin sign).
ALPHABET = "aZ9._+-!~ é\u212a"


def full_path(value: str) -> str | None:
    try:
        return syntax._validated_local_part(value, value.strip(), "name")
    except InvalidInput:
        return None


def parsed(value: str) -> str | None:
    try:
        return syntax.parse_local_part(value)
    except InvalidInput:
        return None


def test_every_short_local_part_gets_the_full_validators_answer() -> None:
    checked = shortcut = 0
    for length in range(1, 5):
        for letters in itertools.product(ALPHABET, repeat=length):
            value = "".join(letters)
            assert parsed(value) == full_path(value), value
            checked += 1
            shortcut += bool(syntax._PLAIN_LOCAL_PART.fullmatch(value))
    # The comparison covered both paths, many times each.
    assert shortcut > 300
    assert checked - shortcut > 20_000


@pytest.mark.parametrize("length", [63, 64, 65, 70])
def test_the_length_limit_holds_on_the_shortcut(length: int) -> None:
    value = "a" * length
    assert parsed(value) == full_path(value)
    assert (parsed(value) is None) == (length > syntax.MAX_LOCAL_OCTETS)


def test_a_remembered_domain_is_refused_or_accepted_as_before() -> None:
    syntax._alabel.cache_clear()
    for _ in range(2):  # the second round answers from the cache
        assert syntax.normalise_domain("Straße.Example.") == "xn--strae-oqa.example"
        with pytest.raises(InvalidInput) as refused:
            syntax.normalise_domain("localhost", field="to[3]")
        assert refused.value.problems[0].field == "to[3]"
        assert "not a fully qualified domain name" in refused.value.problems[0].message
    assert syntax._alabel.cache_info().hits >= 1
