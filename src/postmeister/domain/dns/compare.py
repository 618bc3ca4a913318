"""Published vs expected: the state of one record from what the resolver answered. Pure.

States: `ok`; `missing` (no such name, or no record of that kind at it); `different` (a
record is there but would not work as expected; `note` says why); `unknown` (the resolver
gave no usable answer: SERVFAIL, timeout; never taken for ok or missing).

Which differences count, per kind (anything not listed does not):
- MX: the set of target hosts must be exactly our mail host. The preference does not count
  (with one host there is nothing to prefer); another host beside ours counts, because mail
  delivered there does not reach the mailboxes.
- SRV: one record, with our port and target (`.` for a service not offered). Priority and
  weight do not count: with one record per service a client has no choice to make.
- CNAME (autoconfig, autodiscover, mta-sts): the target host. A/AAAA records at the name
  with exactly the addresses of that host count as ok, too.
- SPF: exactly one `v=spf1` TXT record (two are a permanent error, RFC 7208 §4.5); every
  mechanism we need before its `all` term (case, `+` and order do not count; more
  mechanisms, e.g. another provider's `include:`, do not either); an `all` term at least as
  strict as ours (`+all` < `?all` < `~all` < `-all`; none counts as `?all`).
- DMARC: exactly one `v=DMARC1` record (`v` first); `p=` at least as strict as ours
  (none < quarantine < reject); every `rua` address of ours among its `rua` (`!size`
  suffixes and case do not count). Other tags (`pct`, `sp`, `adkim`, `ruf`, ...) do not.
- DKIM: `p=` the same key (white space does not count), `k=` the same (default rsa), `v=`
  absent or DKIM1. Other tags (`t=`, `h=`, `n=`) do not count.
- MTA-STS: one `v=STSv1` record with our `id`. TLS-RPT: one `v=TLSRPTv1` record whose
  `rua` holds every address of ours.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from postmeister.domain.dns.notes import Note, joined, note
from postmeister.domain.dns.rules import ExpectedRecord

State = Literal["ok", "missing", "different", "unknown"]
STATES: Final[tuple[State, ...]] = ("ok", "missing", "different", "unknown")


@dataclass(frozen=True, slots=True)
class Answer:
    """What the resolver said about one expected record.

    `values`: the records of the expected type at the name, in presentation form (TXT: the
    strings of one record joined). `error`: why there is no answer to judge (None: there
    is one; an empty `values` then means no such record). For a CNAME expectation,
    `addresses` are the A/AAAA records at the name (when it has no CNAME) and
    `target_addresses` those of the expected target."""

    values: tuple[str, ...] = ()
    error: str | None = None
    addresses: tuple[str, ...] = ()
    target_addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The state of one record, what was found, and why it is not ok (`notes`; `note` is
    their English text, empty for ok)."""

    state: State
    found: tuple[str, ...]
    notes: tuple[Note, ...] = ()

    @property
    def note(self) -> str:
        return joined(self.notes)


def _verdict(state: State, found: tuple[str, ...], *notes: Note) -> Verdict:
    return Verdict(state, found, notes)


def judge(expected: ExpectedRecord, answer: Answer) -> Verdict:
    if answer.error is not None:
        return _verdict("unknown", (), note("no_answer", error=answer.error))
    if expected.type == "CNAME":
        return _host_record(expected, answer)
    if expected.type == "TXT":
        return _txt(expected, answer.values)
    if not answer.values:
        return _verdict("missing", (), note("no_record", type=expected.type, name=expected.name))
    if expected.type == "MX":
        return _mx(expected, answer.values)
    return _srv(expected, answer.values)


def _absolute(host: str) -> str:
    return host.strip().lower().rstrip(".") + "."


def _mx(expected: ExpectedRecord, values: tuple[str, ...]) -> Verdict:
    ours = _absolute(expected.value.split()[-1])
    targets = {_absolute(value.split()[-1]) for value in values}
    if targets == {ours}:
        return _verdict("ok", values)
    others = ", ".join(sorted(targets - {ours}))
    code = "mx_also" if ours in targets else "mx_elsewhere"
    return _verdict("different", values, note(code, others=others, ours=ours))


def _srv_key(value: str) -> tuple[str, str] | None:
    parts = value.split()
    if len(parts) != 4:
        return None
    return parts[2], _absolute(parts[3]) if parts[3] != "." else "."


def _srv(expected: ExpectedRecord, values: tuple[str, ...]) -> Verdict:
    ours = _srv_key(expected.value)
    found = {_srv_key(value) for value in values}
    if found == {ours}:
        return _verdict("ok", values)
    assert ours is not None
    return _verdict("different", values, note("srv_port", port=ours[0], target=ours[1]))


def _host_record(expected: ExpectedRecord, answer: Answer) -> Verdict:
    ours = _absolute(expected.value)
    if answer.values:
        if {_absolute(value) for value in answer.values} == {ours}:
            return _verdict("ok", answer.values)
        return _verdict("different", answer.values, note("cname_target", target=ours))
    if not answer.addresses:
        return _verdict("missing", (), note("cname_missing", name=expected.name))
    if answer.target_addresses and set(answer.addresses) == set(answer.target_addresses):
        return _verdict("ok", answer.addresses, note("cname_addresses", target=ours))
    return _verdict("different", answer.addresses, note("cname_or_addresses", target=ours))


# ---------------------------------------------------------------------------- TXT records


def tags(text: str) -> list[tuple[str, str]]:
    """A tag list (`v=DMARC1; p=none`, RFC 6376 §3.2) as (name lower case, value) pairs."""
    pairs = []
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if part.strip():
            pairs.append((name.strip().lower(), value.strip() if equals else ""))
    return pairs


def _first_tag_is(text: str, name: str, value: str) -> bool:
    found = tags(text)
    return bool(found) and found[0][0] == name and found[0][1].lower() == value.lower()


_SPF_STRICTNESS: Final = {"+": 0, "?": 1, "~": 2, "-": 3}
_DMARC_STRICTNESS: Final = {"none": 0, "quarantine": 1, "reject": 2}


def _spf_terms(text: str) -> tuple[list[str], str]:
    """The mechanisms before the `all` term (lower case, without a `+`) and the qualifier
    of that term (`?` when there is none: neutral, RFC 7208 §4.7)."""
    mechanisms: list[str] = []
    for term in text.split()[1:]:
        term = term.lower()
        bare = term[1:] if term[:1] in _SPF_STRICTNESS else term
        if bare == "all":
            return mechanisms, term[0] if term[:1] in _SPF_STRICTNESS else "+"
        mechanisms.append(term.removeprefix("+"))
    return mechanisms, "?"


def _spf(expected: str, found: str) -> list[Note]:
    ours, our_policy = _spf_terms(expected)
    theirs, their_policy = _spf_terms(found)
    problems = [note("spf_lacks", term=term) for term in ours if term not in theirs]
    if _SPF_STRICTNESS[their_policy] < _SPF_STRICTNESS[our_policy]:
        problems.append(note("spf_weaker", theirs=their_policy, ours=our_policy))
    return problems


def _uris(value: str) -> set[str]:
    return {uri.strip().split("!")[0].lower() for uri in value.split(",") if uri.strip()}


def _missing_uris(expected: str, found: str) -> list[Note]:
    ours = dict(tags(expected)).get("rua", "")
    theirs = _uris(dict(tags(found)).get("rua", ""))
    missing = sorted(_uris(ours) - theirs)
    return [note("rua_lacks", uri=uri) for uri in missing]


def _dmarc(expected: str, found: str) -> list[Note]:
    ours, theirs = dict(tags(expected)), dict(tags(found))
    problems = []
    policy = theirs.get("p", "").lower()
    if policy not in _DMARC_STRICTNESS:
        problems.append(note("dmarc_no_policy", policy=policy or "(none)"))
    elif _DMARC_STRICTNESS[policy] < _DMARC_STRICTNESS[ours["p"]]:
        problems.append(note("dmarc_weaker", theirs=policy, ours=ours["p"]))
    return problems + _missing_uris(expected, found)


def _dkim(expected: str, found: str) -> list[Note]:
    ours, theirs = dict(tags(expected)), dict(tags(found))
    problems = []
    if theirs.get("v", "DKIM1").upper() != "DKIM1":
        problems.append(note("dkim_version", version=theirs["v"]))
    if theirs.get("k", "rsa").lower() != ours.get("k", "rsa").lower():
        problems.append(
            note("dkim_key_type", theirs=theirs.get("k", "rsa"), ours=ours.get("k", "rsa"))
        )
    their_key = "".join(theirs.get("p", "").split())
    if not their_key:
        problems.append(note("dkim_revoked"))
    elif their_key != "".join(ours.get("p", "").split()):
        problems.append(note("dkim_other_key"))
    return problems


def _mta_sts(expected: str, found: str) -> list[Note]:
    ours, theirs = dict(tags(expected)), dict(tags(found))
    if theirs.get("id") != ours["id"]:
        return [note("mta_sts_id", theirs=theirs.get("id", ""), ours=ours["id"])]
    return []


@dataclass(frozen=True, slots=True)
class _TxtKind:
    label: str
    relevant: Callable[[str], bool]
    problems: Callable[[str, str], list[Note]]


def _any_text(_text: str) -> bool:
    return True


def _is_spf(text: str) -> bool:
    # RFC 7208 §4.5: "v=spf1" then a space or the end, in any case.
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


_TXT_KINDS: Final[dict[str, _TxtKind]] = {
    "spf": _TxtKind("SPF", _is_spf, _spf),
    "dmarc": _TxtKind("DMARC", lambda t: _first_tag_is(t, "v", "DMARC1"), _dmarc),
    # Every TXT record at the selector's name is a key record (v= is optional).
    "dkim": _TxtKind("DKIM", _any_text, _dkim),
    "mta-sts": _TxtKind("MTA-STS", lambda t: _first_tag_is(t, "v", "STSv1"), _mta_sts),
    "tls-rpt": _TxtKind("TLS-RPT", lambda t: _first_tag_is(t, "v", "TLSRPTv1"), _missing_uris),
}


def _txt(expected: ExpectedRecord, values: tuple[str, ...]) -> Verdict:
    kind = _TXT_KINDS[expected.purpose]
    relevant = tuple(value for value in values if kind.relevant(value))
    if not relevant:
        where = {"kind": kind.label, "name": expected.name}
        if values:
            return _verdict("missing", (), note("txt_missing_others", **where, count=len(values)))
        return _verdict("missing", (), note("txt_missing", **where))
    if len(relevant) > 1:
        several = note("txt_several", count=len(relevant), kind=kind.label)
        return _verdict("different", relevant, several)
    problems = kind.problems(expected.value, relevant[0])
    if problems:
        return _verdict("different", relevant, *problems)
    return _verdict("ok", relevant)
