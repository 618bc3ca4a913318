"""The shortcuts of parsing a large sync document give exactly the full validators' answers.

`parse_document` checks each domain once (its A-label is kept, and whether an address in it
can be too long is worked out once), takes a fast path for plain ASCII local parts and
keeps only the canonical text of each recipient. Each shortcut is compared here with the
full path (email-validator for local parts, the idna library for domains) over names
chosen to hit every rule, and the whole document must report the same problems, with the
same messages at the same JSON pointers, as the full validators give for each entry.
"""

from __future__ import annotations

import json

import pytest

from postmeister.canonical import canonical_domain
from postmeister.domain.addresses import syntax
from postmeister.errors import InvalidInput
from postmeister.sync.document import parse_document

HASH = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"

LOCAL_PARTS = [
    *("alice", "Alice", "ALICE", "a", "a.b", "a..b", ".a", "a.", "a+tag", "a+", "+a"),
    *("a-b", "a_b", "a--b", "a__b", "9", "0.0", "a b", " a", "a ", " ", "", "a/b"),
    *("a@b", '"a"', '"a b"', "a!b", "a#b", "a$b", "a%b", "a&b", "a'b", "a*b", "a=b"),
    *("a?b", "a^b", "a`b", "a{b}", "a|b", "a~b", "ä", "straße", "\u212aelvin", "ß"),
    *("a\tb", "a\nb", "a\x00b", "a,b", "a;b", "a:b", "a(b)", "a[b]", "a\\b", "xn--a"),
    *("a" * 63, "a" * 64, "a" * 65, "A" * 64, "a." * 32, "a" * 30 + "." + "b" * 33),
]
DOMAINS = [
    *("example.com", "Example.COM", "EXAMPLE.com.", "example.com..", "a.b.c.d.example"),
    *("straße.example", "STRASSE.example", "xn--strae-oqa.example", "xn--.example"),
    *("xn--zz.example", "bücher.example", "BÜCHER.example", "例え.テスト", "ς.example"),
    *("a..example", ".example.com", "-a.example", "a-.example", "a_b.example", "localhost"),
    *("192.0.2.1", "example.123", "example.c0m", "ex ample.com", "", ".", " example.com "),
    *("a" * 63 + ".example", "a" * 64 + ".example", ".".join(["a" * 63] * 4)),
    *(".".join(["a" * 63] * 3) + "." + "b" * 61, "\u212a.example", "a\u200d.example"),
]


def full_local_part(value: str) -> str:
    """The answer of the full validator: the canonical local part or the error message."""
    try:
        return syntax._validated_local_part(value, value.strip(), "f")
    except InvalidInput as exc:
        return f"error: {exc.problems[0].message}"


def full_domain(value: str) -> str:
    """The uncached A-label computation (the idna library, UTS #46) or its error message."""
    try:
        return syntax._alabel.__wrapped__(value)
    except syntax._BadDomain as exc:
        return f"error: {exc.message}"


def answer(parse: object, value: str) -> str:
    try:
        return str(parse(value, field="f"))  # type: ignore[operator]
    except InvalidInput as exc:
        return f"error: {exc.problems[0].message}"


@pytest.mark.parametrize("value", LOCAL_PARTS)
def test_a_local_part_gets_the_full_validators_answer(value: str) -> None:
    assert answer(syntax.parse_local_part, value) == full_local_part(value)


@pytest.mark.parametrize("value", DOMAINS)
def test_a_domain_gets_the_idna_answer_also_when_remembered(value: str) -> None:
    expected = full_domain(value)
    for _ in range(2):  # the second time from the cache, if it was kept
        assert answer(syntax.normalise_domain, value) == expected
    if not expected.startswith("error"):
        # The canonical form is a fixed point, as the store relies on.
        assert canonical_domain(expected) == expected


@pytest.mark.parametrize(
    "domain", ["example.com", "BÜCHER.example", "a..example", "x" * 63 + ".example"]
)
@pytest.mark.parametrize("local", ["alice", "A.B+c", "a..b", '"q"', "ä", "a" * 64, "a" * 65])
def test_a_recipient_gets_the_full_validators_answer(local: str, domain: str) -> None:
    value = f" {local}@{domain} "
    local_answer, domain_answer = full_local_part(local), full_domain(domain)
    if local_answer.startswith("error"):
        expected = local_answer
    elif domain_answer.startswith("error"):
        expected = domain_answer
    elif len(f"{local_answer}@{domain_answer}") > syntax.MAX_ADDRESS_OCTETS:
        expected = f"error: address longer than {syntax.MAX_ADDRESS_OCTETS} octets"
    else:
        expected = f"{local_answer}@{domain_answer}"
    assert answer(syntax.parse_address_text, value) == expected
    assert answer(lambda v, field: syntax.parse_address(v, field=field).address, value) == expected


def test_a_document_reports_what_the_full_validators_say_of_each_entry() -> None:
    """Every corpus local part as an account and as a recipient, in several domains (one so
    long that a 64-octet name makes the address too long): the same problems, each once,
    at its own pointer, in the document's order."""
    long_domain = ".".join(["d" * 63] * 3)  # 191 octets: "a" * 63 @ it is 255 octets
    domains = ["example.com", "Example.ORG", long_domain]
    raw: dict[str, object] = {}
    expected: list[tuple[str, str]] = []
    for domain in domains:
        alabel = full_domain(domain)
        accounts, aliases = [], []
        seen: dict[str, int] = {}
        for index, name in enumerate(LOCAL_PARTS):
            accounts.append({"name": name, "password": HASH})
            canonical = full_local_part(name)
            pointer = f"/{domain}/account/{index}/name"
            if canonical.startswith("error"):
                expected.append((pointer, canonical.removeprefix("error: ")))
            elif len(f"{canonical}@{alabel}") > syntax.MAX_ADDRESS_OCTETS:
                expected.append(
                    (pointer, f"address longer than {syntax.MAX_ADDRESS_OCTETS} octets")
                )
            elif canonical in seen:
                first = f"/{domain}/account/{seen[canonical]}"
                expected.append((pointer, f"{canonical!r} is listed twice (first at {first})"))
            else:
                seen[canonical] = index
        for index, name in enumerate(LOCAL_PARTS):
            if "," in name or not name.strip():
                continue  # a comma separates recipients; blanks are left out
            aliases.append({"name": f"list{index}", "to": f"{name}@{domain}"})
            pointer = f"/{domain}/alias/{len(aliases) - 1}/to"
            target = answer(syntax.parse_address_text, f"{name}@{domain}")
            if target.startswith("error"):
                expected.append((pointer, target.removeprefix("error: ")))
        raw[domain] = {"account": accounts, "alias": aliases}
    with pytest.raises(InvalidInput) as rejected:
        parse_document(json.dumps(raw).encode())
    found = [(p.field, p.message) for p in rejected.value.problems]
    assert sorted(found) == sorted(expected)
    assert len(found) == len(expected)


def test_the_fast_path_never_answers_for_a_name_it_is_unsure_of() -> None:
    """What the shortcut takes is plain: every corpus name it would take, the full
    validator accepts unchanged but for case; the rest is left to the full validator."""
    taken = [v for v in LOCAL_PARTS if syntax._PLAIN_LOCAL_PART.fullmatch(v.strip())]
    assert taken  # the shortcut is exercised
    for value in taken:
        if len(value.strip()) <= syntax.MAX_LOCAL_OCTETS:
            assert full_local_part(value) == value.strip().lower()
    for value in LOCAL_PARTS:
        try:
            canonical = syntax.parse_local_part(value)
        except InvalidInput:
            continue
        assert canonical.isascii() and canonical == canonical.lower()


def test_a_remembered_domain_still_fails_for_each_entry() -> None:
    """A refused domain is refused at every pointer that names it, not only the first."""
    raw = {
        "example.com": {
            "alias": [{"name": f"a{i}", "to": "x@localhost"} for i in range(3)],
        }
    }
    with pytest.raises(InvalidInput) as rejected:
        parse_document(json.dumps(raw).encode())
    fields = [p.field for p in rejected.value.problems]
    assert fields == [f"/example.com/alias/{i}/to" for i in range(3)]
