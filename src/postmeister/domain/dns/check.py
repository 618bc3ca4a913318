"""The live check: each expected record looked up with dnspython against the configured
resolvers (`DnsSettings.resolvers`, default the system's), then judged by `compare.judge`.

No transaction is open here: the caller reads the expected records first, then checks, so
a slow resolver never holds a database transaction. The lookups run side by side, so a
check takes about one `timeout_seconds` at worst, not one per record. The resolver's own
cache is off: a customer who has just fixed a record wants to see it (the resolver in front
may still cache for the record's TTL).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
from dns.rdtypes.ANY.TXT import TXT

from postmeister.config import DnsSettings, resolver_address
from postmeister.domain.dns.compare import Answer, Verdict, judge
from postmeister.domain.dns.rules import ExpectedRecord

# Enough for every record of a domain at once (about 17 with every option on).
_PARALLEL: Final = 16


@dataclass(frozen=True, slots=True)
class RecordCheck:
    record: ExpectedRecord
    verdict: Verdict


class _Lookup:
    """One resolver configuration; `values` answers one question or says why it cannot."""

    def __init__(self, settings: DnsSettings) -> None:
        self.settings = settings

    def _resolver(self) -> dns.resolver.Resolver:
        if self.settings.resolvers:
            resolver = dns.resolver.Resolver(configure=False)
            servers: list[str | dns.nameserver.Nameserver] = []
            for item in self.settings.resolvers:
                host, port = resolver_address(item)
                servers.append(dns.nameserver.Do53Nameserver(host, port))
            resolver.nameservers = servers
        else:
            resolver = dns.resolver.Resolver()  # /etc/resolv.conf
        resolver.lifetime = self.settings.timeout_seconds
        resolver.timeout = self.settings.timeout_seconds
        resolver.cache = None
        return resolver

    def values(self, name: str, rdtype: str) -> tuple[str, ...]:
        """The records of `rdtype` at `name` in presentation form; () when there are none
        (NXDOMAIN or no data). Raises `LookupFailed` when the resolver gives no answer."""
        try:
            answer = self._resolver().resolve(
                dns.name.from_text(name), rdtype, search=False, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            return ()
        except dns.resolver.LifetimeTimeout:
            raise LookupFailed(f"timed out after {self.settings.timeout_seconds:g} s") from None
        except dns.resolver.NoNameservers as exc:
            raise LookupFailed(f"no resolver answered ({_reason(exc)})") from None
        except dns.resolver.NoResolverConfiguration:
            raise LookupFailed("no resolver configured (/etc/resolv.conf)") from None
        except dns.exception.DNSException as exc:
            raise LookupFailed(str(exc) or type(exc).__name__) from None
        if answer.rrset is None:
            return ()
        return tuple(sorted(_text(rdata) for rdata in answer.rrset))


class LookupFailed(Exception):
    """The resolver gave no answer to judge (SERVFAIL, REFUSED, timeout)."""


def _reason(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    # Each error is (server, tcp, port, exception or rcode text, answer).
    reasons = sorted({str(error[3]) for error in errors if len(error) > 3})
    return "; ".join(reasons) or "SERVFAIL"


def _text(rdata: object) -> str:
    if isinstance(rdata, TXT):
        return b"".join(rdata.strings).decode("utf-8", "replace")
    return str(rdata).lower()


def _answer(lookup: _Lookup, record: ExpectedRecord) -> Answer:
    try:
        values = lookup.values(record.name, record.type)
        if record.type != "CNAME" or values:
            return Answer(values=values)
        addresses = lookup.values(record.name, "A") + lookup.values(record.name, "AAAA")
        if not addresses:
            return Answer()
        target = record.value
        targets = lookup.values(target, "A") + lookup.values(target, "AAAA")
        return Answer(addresses=addresses, target_addresses=targets)
    except LookupFailed as exc:
        return Answer(error=str(exc))


def check_records(records: Sequence[ExpectedRecord], settings: DnsSettings) -> list[RecordCheck]:
    """Each record with its verdict, in the order given."""
    lookup = _Lookup(settings)
    with ThreadPoolExecutor(max_workers=min(_PARALLEL, max(1, len(records)))) as pool:
        answers = list(pool.map(lambda record: _answer(lookup, record), records))
    return [
        RecordCheck(record, judge(record, answer))
        for record, answer in zip(records, answers, strict=True)
    ]
