"""The Basic JSON document: parse and validate it completely, or render one from state.

The format is the one in `specs/controller-api.txt`:

    {"example.com": {"account": [{"name": "alice", "password": "$6$..."}],
                     "alias":   [{"name": "office", "to": "alice@example.com,bob@example.com"}]}}

and, as the hosting panel writes it, an account may also carry `spoofing_whitelist` (a
comma-separated string, as in the controller API) and `subaddress_extension` (a boolean).
An account without one of them keeps what it has (a new one: none, false), so a document
written to the spec alone never clears what was set.

A customer's mail configuration is replaced by what the document says, so a document is
accepted whole or not at all. `parse_document` therefore never stops at the first problem:
it walks the entire document and raises one `InvalidInput` that lists every problem, each
located by a JSON pointer (RFC 6901) into the document as written, e.g.
`/example.com/account/3/password`, so a customer can fix everything in one round.

What is checked here is everything the document says about itself: its JSON shape here, and
each entry against the same address rules as the API (`domain.addresses.rules`: target
count, loops, duplicates, required targets, address length), with the same `rule` codes,
reported at the entry's pointer. Whether the customer owns the domains it lists, and
whether its packages have room, is a question for the database, asked by the caller
through the bulk writer (`domain.addresses.bulk`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from postmeister.domain.addresses import rules
from postmeister.domain.addresses.syntax import (
    MAX_ADDRESS_OCTETS,
    MAX_LOCAL_OCTETS,
    normalise_domain,
    parse_address_text,
    parse_local_part,
    parse_sender_patterns,
    split_comma_list,
)
from postmeister.domain.passwords.hash_formats import normalise_crypt_hash
from postmeister.errors import InvalidInput, ProblemList

ACCOUNT_KEY: Final = "account"
ALIAS_KEY: Final = "alias"
_DOMAIN_KEYS: Final = (ACCOUNT_KEY, ALIAS_KEY)
_ACCOUNT_FIELDS: Final = ("name", "password")
_ACCOUNT_OPTIONAL: Final = ("spoofing_whitelist", "subaddress_extension")
_ALIAS_FIELDS: Final = ("name", "to")
_ROOT: Final = ""  # the JSON pointer of the whole document
_UTF8_BOM: Final = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class AccountEntry:
    """A mailbox: canonical (lowercase) local part and its bare crypt hash (as given, less any
    Dovecot `{SCHEME}` prefix: the form that is stored and exported).

    `spoofing_whitelist` (canonical patterns, in document order) and `subaddress_extension`
    are None when the document leaves them out. `pointer` locates the entry in the document
    as written; empty for an entry built in code."""

    local_part: str
    password_hash: str
    spoofing_whitelist: tuple[str, ...] | None = None
    subaddress_extension: bool | None = None
    pointer: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class AliasEntry:
    """A forward: canonical local part and canonical recipient addresses, in document order."""

    local_part: str
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DomainEntry:
    """One domain of the document; `name` is its A-label. Entries keep document order.

    `pointer` locates the domain in the document as written (`/Example.COM`); empty for a
    document built in code, where `/name` is used."""

    name: str
    accounts: tuple[AccountEntry, ...]
    aliases: tuple[AliasEntry, ...]
    pointer: str = field(default="", compare=False)

    @property
    def location(self) -> str:
        return self.pointer or f"/{self.name}"


@dataclass(frozen=True, slots=True)
class SyncDocument:
    """A valid document: domains keyed by A-label. A domain with no entries is meaningful:
    it says the domain has no addresses."""

    domains: dict[str, DomainEntry]

    def without(self, names: Collection[str]) -> SyncDocument:
        """The document less the domains `names`."""
        if not names:
            return self
        return SyncDocument({n: e for n, e in self.domains.items() if n not in names})

    @property
    def entry_count(self) -> int:
        """Accounts plus aliases over all domains (for progress reports and statistics)."""
        return sum(len(d.accounts) + len(d.aliases) for d in self.domains.values())


def parse_document(raw: bytes) -> SyncDocument:
    """Parse a Basic JSON document, or raise `InvalidInput` listing every problem in it.

    Each problem's `field` is a JSON pointer into the document as written (`""` for the
    document as a whole). Rejected, among others: bytes that are not UTF-8 (a leading UTF-8
    byte-order mark is tolerated), invalid or truncated JSON, NaN/Infinity, a key given twice
    in one object, unknown keys, wrong types, invalid domain names, local parts, recipients
    or password hashes, an empty `to`, a name used twice in a domain (names compare
    case-insensitively), a domain listed twice (also as another spelling of the same
    A-label), and an alias with the name of an account in the same domain.
    """
    value = _load_json(raw)
    problems = ProblemList()
    if not isinstance(value, dict):
        raise InvalidInput.single(
            _ROOT,
            f"the document must be a JSON object of domain names, not {_kind(value)}",
            rule="type",
        )
    checker = _Checker(problems)
    domains: dict[str, DomainEntry] = {}
    first_seen: dict[str, str] = {}
    for key, body in _unique_members(value, _ROOT, problems).items():
        pointer = _child(_ROOT, key)
        try:
            alabel = normalise_domain(key, field=pointer)
        except InvalidInput as exc:
            problems.problems.extend(exc.problems)
            alabel = None
        entry = checker.domain(alabel or "", body, pointer)
        if alabel is None:
            continue
        if alabel in first_seen:
            problems.add(
                pointer,
                f"lists the domain {alabel} a second time (first at {first_seen[alabel]})",
                rule="duplicate",
            )
            continue
        first_seen[alabel] = pointer
        if entry is not None:
            domains[alabel] = entry
    problems.raise_if_any()
    return SyncDocument(domains)


def render_document(document: SyncDocument) -> bytes:
    """The document in the Basic JSON format: the inverse of `parse_document`.

    Deterministic, so an export can be compared or diffed byte for byte: domains, accounts
    and aliases sorted by name, recipients and whitelist entries in their stored order joined
    by ",", two-space indentation, a final newline. Empty lists are left out (a domain
    without addresses is rendered as `{}`), which parses back to the same document; so are
    an account's optional keys where the entry has none (None).
    """
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for alabel in sorted(document.domains):
        entry = document.domains[alabel]
        body: dict[str, list[dict[str, Any]]] = {}
        if entry.accounts:
            body[ACCOUNT_KEY] = [
                _render_account(a) for a in sorted(entry.accounts, key=lambda a: a.local_part)
            ]
        if entry.aliases:
            body[ALIAS_KEY] = [
                {"name": a.local_part, "to": ",".join(a.targets)}
                for a in sorted(entry.aliases, key=lambda a: a.local_part)
            ]
        out[alabel] = body
    return (json.dumps(out, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _render_account(account: AccountEntry) -> dict[str, Any]:
    rendered: dict[str, Any] = {"name": account.local_part, "password": account.password_hash}
    if account.spoofing_whitelist is not None:
        rendered["spoofing_whitelist"] = ",".join(account.spoofing_whitelist)
    if account.subaddress_extension is not None:
        rendered["subaddress_extension"] = account.subaddress_extension
    return rendered


# An address can break SMTP's length limit only in a domain longer than this, as a canonical
# local part has at most MAX_LOCAL_OCTETS: elsewhere the rule is not asked at every entry.
_ALWAYS_SHORT_ENOUGH: Final = MAX_ADDRESS_OCTETS - 1 - MAX_LOCAL_OCTETS


class _Names:
    """What the entries of one domain share: its A-label ("" when the name itself is
    invalid), whether an address in it can be too long (worked out once per domain), and
    the names taken so far (canonical local part -> ("account" | "alias", JSON pointer))."""

    __slots__ = ("alabel", "check_length", "taken")

    def __init__(self, alabel: str) -> None:
        self.alabel = alabel
        self.check_length = len(alabel) > _ALWAYS_SHORT_ENOUGH
        self.taken: dict[str, tuple[str, str]] = {}


class _Repeated(dict[str, Any]):
    """A JSON object with a key given more than once: each key with its first value, and
    the keys repeated (standard JSON parsers silently keep the last of two equal keys,
    which would make half of a customer's document vanish without a word)."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__()
        repeated = []
        for key, value in pairs:
            if key in self:
                repeated.append(key)
            else:
                self[key] = value
        self.repeated = tuple(repeated)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object is a dict (a `_Repeated` one if it repeats a key), an array a list."""
    obj = dict(pairs)
    # The common case stays one dict() at C speed.
    return obj if len(obj) == len(pairs) else _Repeated(pairs)


def _load_json(raw: bytes) -> Any:
    data = raw.removeprefix(_UTF8_BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(raw) - len(data))
        raise InvalidInput.single(
            _ROOT, f"the document is not UTF-8 text (invalid byte at offset {offset})"
        ) from exc
    if not text.strip():
        raise InvalidInput.single(_ROOT, "the document is empty")
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            message = (
                f"the document ends early (line {exc.lineno}, column {exc.colno}); "
                "it may have been cut off"
            )
        else:
            message = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        raise InvalidInput.single(_ROOT, message) from exc
    except ValueError as exc:  # NaN/Infinity, or a number too long to convert
        raise InvalidInput.single(_ROOT, f"not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidInput.single(_ROOT, "not valid JSON: nested too deeply") from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


class _Checker:
    """Walks domain objects, recording problems; returns entries only where all was valid."""

    def __init__(self, problems: ProblemList) -> None:
        self.problems = problems
        # The same names (info, office, ...) recur across domains, and the same recipient in
        # many aliases: each distinct spelling is checked once (syntax checks dominate parsing).
        self._local_parts: dict[str, str] = {}
        self._targets: dict[str, str] = {}

    def domain(self, alabel: str, body: Any, pointer: str) -> DomainEntry | None:
        if not isinstance(body, dict):
            self._add(
                pointer,
                f"must be an object with {_either(_DOMAIN_KEYS)}, not {_kind(body)}",
                rule="type",
            )
            return None
        before = len(self.problems.problems)
        members = _unique_members(body, pointer, self.problems)
        self._unknown_keys(members, _DOMAIN_KEYS, pointer)
        names = _Names(alabel)
        accounts: list[AccountEntry] = []
        prefix = f"{pointer}/{ACCOUNT_KEY}/"
        for index, item in self._items(members, ACCOUNT_KEY, pointer):
            account = self._account(item, f"{prefix}{index}", names)
            if account is not None:
                accounts.append(account)
        aliases: list[AliasEntry] = []
        prefix = f"{pointer}/{ALIAS_KEY}/"
        for index, item in self._items(members, ALIAS_KEY, pointer):
            alias = self._alias(item, f"{prefix}{index}", names)
            if alias is not None:
                aliases.append(alias)
        if len(self.problems.problems) != before:
            return None
        return DomainEntry(alabel, tuple(accounts), tuple(aliases), pointer)

    def _items(self, members: dict[str, Any], key: str, pointer: str) -> Iterable[tuple[int, Any]]:
        if key not in members:
            return ()
        value = members[key]
        if not isinstance(value, list):
            self._add(
                _child(pointer, key), f"must be an array of objects, not {_kind(value)}", "type"
            )
            return ()
        return enumerate(value)

    def _account(self, item: Any, pointer: str, names: _Names) -> AccountEntry | None:
        members = self._members(item, _ACCOUNT_FIELDS, pointer, optional=_ACCOUNT_OPTIONAL)
        if members is None:
            return None
        local_part = self._name(members["name"], pointer, names, "account")
        problems = self.problems.problems
        before = len(problems)
        try:
            # The bare hash, so a prefixed document plans against (and exports as) what is stored.
            password_hash = normalise_crypt_hash(members["password"], field=f"{pointer}/password")
        except InvalidInput as exc:
            problems.extend(exc.problems)
        whitelist = subaddress = None
        if len(members) > len(_ACCOUNT_FIELDS):  # `_members` lets only the optional keys by
            whitelist = self._whitelist(members, pointer)
            subaddress = members.get("subaddress_extension")
            if "subaddress_extension" in members and not isinstance(subaddress, bool):
                self._add(
                    f"{pointer}/subaddress_extension",
                    f"must be true or false, not {_kind(subaddress)}",
                    "type",
                )
        if local_part is None or len(problems) != before:
            return None
        return AccountEntry(local_part, password_hash, whitelist, subaddress, pointer)

    def _whitelist(self, members: dict[str, Any], pointer: str) -> tuple[str, ...] | None:
        """The canonical whitelist (the API's syntax rules), or None when left out or bad."""
        if "spoofing_whitelist" not in members:
            return None
        field = f"{pointer}/spoofing_whitelist"
        value = members["spoofing_whitelist"]
        if not isinstance(value, str):
            self._add(field, f"must be a comma-separated string, not {_kind(value)}", "type")
            return None
        try:
            return tuple(parse_sender_patterns(split_comma_list(value), field=field))
        except InvalidInput as exc:
            self.problems.problems.extend(exc.problems)
            return None

    def _alias(self, item: Any, pointer: str, names: _Names) -> AliasEntry | None:
        members = self._members(item, _ALIAS_FIELDS, pointer)
        if members is None:
            return None
        name, to = members["name"], members["to"]
        local_part = self._name(name, pointer, names, "alias")
        own = f"{local_part}@{names.alabel}" if local_part else None
        targets, problems = rules.check_targets(
            split_comma_list(to),
            own=own,
            kind="forward",
            field=f"{pointer}/to",
            per_item=False,
            parse=self._target,
        )
        if problems:
            self.problems.problems.extend(problems)
            return None
        if local_part is None:
            return None
        return AliasEntry(local_part, tuple(targets))

    def _members(
        self, item: Any, names: tuple[str, str], pointer: str, optional: tuple[str, ...] = ()
    ) -> dict[str, Any] | None:
        """An entry object's members: `names` are required strings, `optional` may be there
        (their values are the caller's to check); None after recording what is wrong."""
        first, second = names
        if (
            type(item) is dict  # not _Repeated
            and type(item.get(first)) is str
            and type(item.get(second)) is str
            and (len(item) == 2 or item.keys() <= {*names, *optional})
        ):
            return item  # the common case, checked in one go
        if not isinstance(item, dict):
            self._add(pointer, f"must be an object with {_both(names)}, not {_kind(item)}", "type")
            return None
        before = len(self.problems.problems)
        members = _unique_members(item, pointer, self.problems)
        self._unknown_keys(members, names + optional, pointer)
        for name in names:
            value = members.get(name)
            if name not in members:
                self._add(_child(pointer, name), "is required", rule="required")
            elif not isinstance(value, str):
                self._add(_child(pointer, name), f"must be a string, not {_kind(value)}", "type")
        if len(self.problems.problems) != before:
            return None
        return members

    def _name(self, name: str, pointer: str, names: _Names, kind: str) -> str | None:
        local_part = self._local_parts.get(name)
        if local_part is None:
            try:
                local_part = parse_local_part(name, field=f"{pointer}/name")
            except InvalidInput as exc:
                self.problems.problems.extend(exc.problems)
                return None
            self._local_parts[name] = local_part
        alabel = names.alabel
        if names.check_length:
            too_long = rules.address_problems(f"{local_part}@{alabel}", field=f"{pointer}/name")
            if too_long:
                self.problems.problems.extend(too_long)
                return None
        first = names.taken.get(local_part)
        if first is None:
            names.taken[local_part] = (kind, pointer)
            return local_part
        field = f"{pointer}/name"
        first_kind, first_pointer = first
        if kind != first_kind:
            existing = rules.exists_detail(f"{local_part}@{alabel}", "mailbox")
            message = f"{existing} ({first_pointer}); an address is either an account or an alias"
            self._add(field, message, rule=rules.Rule.EXISTS)
        else:
            message = f"{local_part!r} is listed twice (first at {first_pointer})"
            self._add(field, message, rule=rules.Rule.DUPLICATE)
        return None

    def _target(self, value: str, field: str) -> str:
        """A recipient's canonical address; each distinct spelling is parsed once."""
        address = self._targets.get(value)
        if address is None:
            address = parse_address_text(value, field=field)
            self._targets[value] = address
        return address

    def _unknown_keys(
        self, members: dict[str, Any], allowed: tuple[str, ...], pointer: str
    ) -> None:
        for key in members:
            if key not in allowed:
                self._add(
                    _child(pointer, key),
                    f"unknown key (allowed: {', '.join(allowed)})",
                    rule="unknown-key",
                )

    def _add(self, field: str, message: str, rule: str | None = None) -> None:
        self.problems.add(field, message, rule)


def _unique_members(obj: dict[str, Any], pointer: str, problems: ProblemList) -> dict[str, Any]:
    """The members of an object, each key once; a repeated key is a problem of its own."""
    if isinstance(obj, _Repeated):
        for key in obj.repeated:
            problems.add(_child(pointer, key), "this key appears twice in one object", "duplicate")
    return obj


def _child(pointer: str, key: str) -> str:
    """The JSON pointer of member `key` below `pointer` (RFC 6901 escaping of ~ and /)."""
    return f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def _either(names: tuple[str, ...]) -> str:
    return "optional " + " and ".join(f'"{n}"' for n in names)


def _both(names: tuple[str, ...]) -> str:
    return " and ".join(f'"{n}"' for n in names)
