"""The Basic JSON document: what a customer writes, what it means, and every way it can be wrong."""

from __future__ import annotations

import json
import random

import pytest

from postmeister.errors import InvalidInput
from postmeister.sync.document import (
    AccountEntry,
    AliasEntry,
    DomainEntry,
    SyncDocument,
    parse_document,
    render_document,
)

MD5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"
MD5_BOB = "$1$0MhHZVnG$d6rHD1KFLNOJ9EFdMKrB91"
SHA512 = (
    "$6$rounds=100000$vE8/iTZi9/cC/RCk$lkjkaN9LY3KAiF0lxmd/dfvkxKm9WDnyG.onOaXCJ64htjzkpzxRCNLZ"
    "FDbi5ggwTf4Z3vbo3pPATJzgtytU//"
)

SPEC_EXAMPLE = b"""{
    "example.com": {
        "account": [
            {
                "name": "alice",
                "password": "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"
            },
            {
                "name": "bob",
                "password": "$1$0MhHZVnG$d6rHD1KFLNOJ9EFdMKrB91"
            }
        ],
        "alias": [
            {
                "name": "office",
                "to": "alice@example.com,bob@example.com"
            }
        ]
    }
}"""


class Containing:
    """Equal to any string that contains `part` (for messages worded by a library)."""

    def __init__(self, part: str) -> None:
        self.part = part

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.part in other

    def __repr__(self) -> str:
        return f"<string containing {self.part!r}>"


def problems_of(raw: bytes | str) -> list[tuple[str, str]]:
    """Parse a document that must be rejected; return (JSON pointer, message) per problem."""
    data = raw.encode() if isinstance(raw, str) else raw
    with pytest.raises(InvalidInput) as caught:
        parse_document(data)
    return [(p.field, p.message) for p in caught.value.problems]


def doc(value: object) -> bytes:
    return json.dumps(value).encode()


def test_spec_example_means_two_accounts_and_an_alias_to_both() -> None:
    assert parse_document(SPEC_EXAMPLE) == SyncDocument(
        {
            "example.com": DomainEntry(
                "example.com",
                (AccountEntry("alice", MD5), AccountEntry("bob", MD5_BOB)),
                (AliasEntry("office", ("alice@example.com", "bob@example.com")),),
            )
        }
    )


def test_names_domains_and_recipients_become_canonical() -> None:
    parsed = parse_document(
        doc(
            {
                "Bücher.Example": {
                    "account": [{"name": "Alice.Smith", "password": SHA512}],
                    "alias": [{"name": "Info", "to": " Alice.Smith@BÜCHER.example , x@Other.ORG "}],
                }
            }
        )
    )
    entry = parsed.domains["xn--bcher-kva.example"]
    assert entry.name == "xn--bcher-kva.example"
    assert entry.accounts == (AccountEntry("alice.smith", SHA512),)
    assert entry.aliases == (
        AliasEntry("info", ("alice.smith@xn--bcher-kva.example", "x@other.org")),
    )


def test_a_domain_may_be_listed_with_no_addresses_and_keys_are_optional() -> None:
    parsed = parse_document(doc({"empty.example": {}, "lists.example": {"account": []}}))
    assert parsed.domains["empty.example"] == DomainEntry("empty.example", (), ())
    assert parsed.domains["lists.example"] == DomainEntry("lists.example", (), ())
    assert parsed.entry_count == 0


def test_utf8_byte_order_mark_is_tolerated() -> None:
    assert parse_document(b"\xef\xbb\xbf" + SPEC_EXAMPLE) == parse_document(SPEC_EXAMPLE)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (SPEC_EXAMPLE[: len(SPEC_EXAMPLE) // 2], "ends early"),
        (SPEC_EXAMPLE[:-1], "ends early"),
        (b'{"example.com": {"account": [}}', "not valid JSON"),
        (b"{'example.com': {}}", "not valid JSON"),
        (b'{"example.com": {}},', "not valid JSON"),
        (b'{"example.com": {"account": NaN}}', "NaN is not a JSON value"),
        (b"", "empty"),
        (b"  \n", "empty"),
        ('{"bücher.example": {}}'.encode("latin-1"), "not UTF-8"),
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),
        (b"[]", "must be a JSON object of domain names, not an array"),
        (b'"example.com"', "not a string"),
        (b"null", "not null"),
        (b"[" * 100_000, "nested too deeply"),
    ],
    ids=[
        "truncated in the middle",
        "last brace missing",
        "syntax error",
        "single quotes",
        "trailing comma",
        "NaN",
        "empty file",
        "only whitespace",
        "latin-1",
        "utf-16",
        "array",
        "string",
        "null",
        "deep nesting",
    ],
)
def test_broken_file_is_rejected_as_a_whole(raw: bytes, message: str) -> None:
    [(pointer, text)] = problems_of(raw)
    assert pointer == ""
    assert message in text


def test_every_problem_is_reported_at_once_with_its_location() -> None:
    raw = """{
      "example.com": {
        "account": [
          {"name": "alice", "password": "HASH"},
          {"name": "ALICE", "password": "HASH"},
          {"name": "bad name", "password": "HASH"},
          {"name": "carol", "password": "secret"},
          {"name": 7, "password": "HASH"},
          {"name": "dave"},
          {"name": "erin", "password": "HASH", "quota": 5},
          "frank"
        ],
        "alias": [
          {"name": "Alice", "to": "bob@example.com"},
          {"name": "office", "to": " , "},
          {"name": "sales", "to": "a@x.org,not-an-address,A@X.org"},
          {"name": "loop", "to": "loop@EXAMPLE.com"},
          {"name": "list", "to": ["a@x.org"]}
        ],
        "aliases": []
      },
      "EXAMPLE.COM": {},
      "xn--bcher-kva.example": {},
      "bücher.example": {},
      "not a domain": {},
      "a/b~c": {},
      "other.example": {"account": {"name": "x"}, "alias": []},
      "dup.example": {"account": [], "account": []}
    }""".replace("HASH", MD5)
    assert problems_of(raw) == [
        ("/example.com/aliases", "unknown key (allowed: account, alias)"),
        (
            "/example.com/account/1/name",
            "'alice' is listed twice (first at /example.com/account/0)",
        ),
        ("/example.com/account/2/name", Containing("'bad name' is not a valid local part")),
        ("/example.com/account/3/password", Containing("plain-text passwords")),
        ("/example.com/account/4/name", "must be a string, not a number"),
        ("/example.com/account/5/password", "is required"),
        (
            "/example.com/account/6/quota",
            "unknown key (allowed: name, password, spoofing_whitelist, subaddress_extension)",
        ),
        ("/example.com/account/7", 'must be an object with "name" and "password", not a string'),
        (
            "/example.com/alias/0/name",
            "alice@example.com already exists as a mailbox (account) (/example.com/account/0); "
            "an address is either an account or an alias",
        ),
        ("/example.com/alias/1/to", "a forward needs at least one target"),
        ("/example.com/alias/2/to", "'not-an-address' is not an email address"),
        ("/example.com/alias/2/to", "'A@X.org' is listed twice"),
        ("/example.com/alias/3/to", "an address cannot forward to itself"),
        ("/example.com/alias/4/to", "must be a string, not an array"),
        ("/EXAMPLE.COM", "lists the domain example.com a second time (first at /example.com)"),
        (
            "/bücher.example",
            "lists the domain xn--bcher-kva.example a second time "
            "(first at /xn--bcher-kva.example)",
        ),
        ("/not a domain", Containing("is not a valid domain name")),
        ("/a~1b~0c", Containing("is not a valid domain name")),
        ("/other.example/account", "must be an array of objects, not an object"),
        ("/dup.example/account", "this key appears twice in one object"),
    ]


def test_a_domain_given_twice_as_the_same_key_is_not_silently_merged() -> None:
    raw = '{"example.com": {"account": []}, "example.com": {"alias": []}}'
    assert problems_of(raw) == [("/example.com", "this key appears twice in one object")]


def test_problem_pointers_follow_the_document_as_written() -> None:
    [(pointer, _)] = problems_of(doc({"Example.COM": {"account": [{"name": "a", "password": ""}]}}))
    assert pointer == "/Example.COM/account/0/password"


def test_a_typed_password_is_not_echoed_in_the_problem() -> None:
    error_text = " ".join(
        message
        for _, message in problems_of(
            doc({"example.com": {"account": [{"name": "a", "password": "Hunter2-secret"}]}})
        )
    )
    assert "Hunter2-secret" not in error_text


def sample_document(domains: int, per_domain: int) -> SyncDocument:
    rng = random.Random(7)
    entries: dict[str, DomainEntry] = {}
    for d in range(domains):
        name = f"d{d}.example"
        accounts = tuple(AccountEntry(f"user{i}", MD5) for i in range(per_domain))
        aliases = tuple(
            AliasEntry(
                f"alias{i}",
                tuple(f"user{j}@{name}" for j in rng.sample(range(per_domain), 2)),
            )
            for i in range(per_domain // 2)
        )
        entries[name] = DomainEntry(name, accounts, aliases)
    return SyncDocument(entries)


def test_render_then_parse_gives_back_the_same_document() -> None:
    original = sample_document(domains=5, per_domain=20)
    rendered = render_document(original)
    parsed = parse_document(rendered)
    assert render_document(parsed) == rendered
    for name, entry in original.domains.items():
        again = parsed.domains[name]
        assert sorted(again.accounts, key=str) == sorted(entry.accounts, key=str)
        assert sorted(again.aliases, key=str) == sorted(entry.aliases, key=str)
    assert parsed.domains.keys() == original.domains.keys()


def test_render_is_sorted_and_in_the_spec_format() -> None:
    state = SyncDocument(
        {
            "zeta.example": DomainEntry("zeta.example", (), ()),
            "example.com": DomainEntry(
                "example.com",
                (AccountEntry("bob", MD5_BOB), AccountEntry("alice", MD5)),
                (AliasEntry("office", ("alice@example.com", "bob@example.com")),),
            ),
        }
    )
    assert json.loads(render_document(state)) == {
        "example.com": {
            "account": [
                {"name": "alice", "password": MD5},
                {"name": "bob", "password": MD5_BOB},
            ],
            "alias": [{"name": "office", "to": "alice@example.com,bob@example.com"}],
        },
        "zeta.example": {},
    }
    assert list(json.loads(render_document(state))) == ["example.com", "zeta.example"]
    assert render_document(state).endswith(b"}\n")
    # The spec example, rendered from its own parse, is the same document.
    assert json.loads(render_document(parse_document(SPEC_EXAMPLE))) == json.loads(SPEC_EXAMPLE)


def test_a_prefixed_hash_means_its_bare_hash_and_renders_bare() -> None:
    # As PostfixAdmin and mailcow store hashes; the prefix names the hash, case-insensitively.
    raw = doc(
        {
            "example.com": {
                "account": [
                    {"name": "alice", "password": "{MD5-CRYPT}" + MD5},
                    {"name": "bob", "password": "{crypt}" + MD5_BOB},
                    {"name": "carol", "password": "{SHA512-CRYPT}" + SHA512},
                ]
            }
        }
    )
    bare = (AccountEntry("alice", MD5), AccountEntry("bob", MD5_BOB), AccountEntry("carol", SHA512))
    parsed = parse_document(raw)
    assert parsed.domains["example.com"].accounts == bare
    rendered = json.loads(render_document(parsed))["example.com"]["account"]
    assert [a["password"] for a in rendered] == [MD5, MD5_BOB, SHA512]


def test_a_prefix_that_does_not_match_its_hash_is_reported_at_its_pointer() -> None:
    raw = doc({"example.com": {"account": [{"name": "a", "password": "{MD5-CRYPT}" + SHA512}]}})
    [(pointer, message)] = problems_of(raw)
    assert pointer == "/example.com/account/0/password"
    assert "the prefix {MD5-CRYPT} does not match the sha512-crypt hash" in message


def test_entry_problems_carry_the_address_rule_codes_of_the_api() -> None:
    targets = ",".join(f"t{i}@x.org" for i in range(101))
    raw = doc(
        {
            "example.com": {
                "account": [
                    {"name": "office", "password": MD5},
                    {"name": "l" * 64, "password": MD5},
                ],
                "alias": [
                    {"name": "office", "to": "a@x.org"},
                    {"name": "big", "to": targets},
                    {"name": "me", "to": "Me@Example.COM"},
                    {"name": "twice", "to": "a@x.org,A@X.ORG"},
                    {"name": "none", "to": ""},
                ],
            },
            ".".join(c * 63 for c in "abc") + ".example": {
                "account": [{"name": "l" * 64, "password": MD5}]
            },
        }
    )
    with pytest.raises(InvalidInput) as caught:
        parse_document(raw)
    assert [(p.field.rsplit("/", 3)[-3:], p.rule) for p in caught.value.problems] == [
        (["alias", "0", "name"], "exists"),
        (["alias", "1", "to"], "length"),
        (["alias", "2", "to"], "loop"),
        (["alias", "3", "to"], "duplicate"),
        (["alias", "4", "to"], "required"),
        (["account", "0", "name"], "length"),
    ]
