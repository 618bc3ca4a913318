"""Brute-force limits per client address and per account: Dovecot's auth policy server.

Dovecot (IMAP, POP3, and SMTP AUTH, which Postfix passes to Dovecot) asks this service
before it verifies a password, again after a password was verified, and reports the outcome
(`auth_policy_server_url`; see the 2.3 documentation "Authentication policy support"). The
answer is `{"status": S}`: S < 0 refuses the login, S > 0 makes Dovecot wait S seconds
before it verifies the password, 0 lets it go on.

The rules, with the production numbers of `Limits` (a failure is a *distinct* wrong
password: a mail program retrying one stale password a thousand times counts once):

- per client address (IPv4 address, IPv6 /64), over the last `window` (15 min):
  after `ip_delay_after` (3) failures every attempt waits `delay` (2 s), doubling with each
  further failure up to `max_delay` (2, 4, 6, 6, ... s); at the `ip_block_after`th (10th)
  failure the address is refused for `block` (15 min). Addresses in `trusted_networks` (a
  webmail host that passes its users' addresses on to Dovecot) are exempt from these rules.
- per account (the login name, from any address), over the same window:
  after `account_delay_after` (5) failures attempts wait as above (2, 4, 6, 6, ... s); at
  the `account_block_after`th (20th) the account is refused for `block`, except from the
  addresses it logged in from successfully during the last `known_address_days` (30 days,
  at most `known_addresses` of them): the owner keeps working from home and office while a
  botnet spreads its guesses over many addresses.

Attempts still being verified count as failures, so parallel connections cannot slip a burst
of guesses past either limit.

Every failure is answered after Dovecot's `auth_failure_delay` (2 s). On a mail server
Dovecot adds its own penalty per address on top (anvil, fixed in 2.3: 4, 8, then 15 s before
each further attempt after consecutive failures, forgotten after 15 s without one or after a
success); it cannot exempt an address (`login_trusted_networks` does not, measured on
2.3.19), so the private stack, whose own clients all come from 127.0.0.1, switches it off and
relies on these rules alone. If this service is down, Dovecot lets logins through
(`auth_policy_reject_on_fail = no`) and only its own penalty holds.

State is in memory, in bounded tables (least recently used entries go first), so memory is
constant; a restart forgets it. Nothing secret reaches this service or its log: Dovecot sends
32 bits of a hash of the password keyed by a nonce that is not given to it, used only to
tell guesses apart.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REFUSE = -1
ALLOW = 0
MAX_BODY = 16 * 1024
REFUSED_MESSAGE = "Too many failed logins, try again later"


@dataclass(frozen=True)
class Limits:
    """The numbers of the rules in the module docstring (seconds unless named otherwise)."""

    window: float = 15 * 60
    # The first delay; it doubles with each further failure, up to max_delay. max_delay plus
    # auth_failure_delay (2 s) stays below Postfix's 10 s wait for Dovecot's SASL answer, so
    # that a delayed SMTP AUTH still gets a real answer (535 or 235) instead of a 454.
    delay: int = 2
    max_delay: int = 6
    block: float = 15 * 60
    ip_delay_after: int = 3
    ip_block_after: int = 10
    account_delay_after: int = 5
    account_block_after: int = 20
    known_address_days: float = 30
    known_addresses: int = 10
    # Attempts that were allowed but not reported yet are forgotten after this long.
    pending_timeout: float = 60
    # Entries per table (addresses, accounts); about 2 KB each at most.
    max_tracked: int = 20_000

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Limits:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown limits: {sorted(unknown)}")
        return cls(**data)


@dataclass
class _Record:
    """Recent distinct failures of one address or account, and its block."""

    failures: deque[tuple[float, str]]
    blocked_until: float = 0.0
    pending: dict[str, float] = field(default_factory=dict)
    # account records only: address -> time of its last successful login
    known: OrderedDict[str, float] = field(default_factory=OrderedDict)

    def recent(self, now: float, window: float) -> int:
        while self.failures and self.failures[0][0] <= now - window:
            self.failures.popleft()
        return len(self.failures)


class _Table:
    """A bounded map key -> record; the least recently touched record is dropped first."""

    def __init__(self, capacity: int, depth: int) -> None:
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._capacity = capacity
        self._depth = depth

    def get(self, key: str) -> _Record | None:
        return self._records.get(key)

    def touch(self, key: str) -> _Record:
        record = self._records.get(key)
        if record is None:
            record = _Record(failures=deque(maxlen=self._depth))
            self._records[key] = record
            while len(self._records) > self._capacity:
                self._records.popitem(last=False)
        else:
            self._records.move_to_end(key)
        return record

    def __len__(self) -> int:
        return len(self._records)


@dataclass(frozen=True)
class Attempt:
    """One login attempt as Dovecot describes it (see `auth_policy_request_attributes`)."""

    login: str
    remote: str
    pwhash: str
    session: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attempt:
        def text(name: str) -> str:
            value = data.get(name, "")
            return value if isinstance(value, str) else ""

        return cls(
            login=text("login").strip().lower(),
            remote=address_key(text("remote")),
            pwhash=text("pwhash"),
            session=text("session_id"),
        )

    @property
    def guess(self) -> str:
        """What tells one guess from another: the account and the password's hash."""
        return f"{self.login}\0{self.pwhash}"

    @property
    def pending_key(self) -> str:
        return self.session or self.guess


def address_key(remote: str) -> str:
    """The unit an address is judged by: the IPv4 address, or the IPv6 /64 network
    (one host usually holds a whole /64, so single IPv6 addresses are free to rotate)."""
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class Decision:
    status: int
    reason: str

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"status": self.status}
        if self.status < 0:
            document["msg"] = REFUSED_MESSAGE
        return document


class Policy:
    """The rules of the module docstring, over an injected clock (thread-safe)."""

    def __init__(
        self,
        limits: Limits,
        *,
        trusted_networks: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._trusted = [ipaddress.ip_network(n, strict=False) for n in trusted_networks]
        self._clock = clock
        self._lock = threading.Lock()
        self._addresses = _Table(limits.max_tracked, limits.ip_block_after)
        self._accounts = _Table(limits.max_tracked, limits.account_block_after)

    def trusted(self, remote: str) -> bool:
        try:
            ip = ipaddress.ip_address(remote.split("/")[0])
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def allow(self, attempt: Attempt) -> Decision:
        """Asked before a password is verified and again after it was verified."""
        limits = self.limits
        with self._lock:
            now = self._clock()
            account = self._accounts.touch(attempt.login) if attempt.login else None
            known = account is not None and self._known(account, attempt.remote, now)
            delay = 0
            if attempt.remote and not self.trusted(attempt.remote):
                address = self._addresses.touch(attempt.remote)
                if address.blocked_until > now:
                    return Decision(REFUSE, "address blocked")
                failures = address.recent(now, limits.window)
                if not self._admit(address, attempt, failures, limits.ip_block_after, now):
                    return Decision(REFUSE, "address over its limit")
                delay = self._delay(failures, limits.ip_delay_after)
            if account is not None and not known:
                if account.blocked_until > now:
                    return Decision(REFUSE, "account blocked for unknown addresses")
                failures = account.recent(now, limits.window)
                if not self._admit(account, attempt, failures, limits.account_block_after, now):
                    return Decision(REFUSE, "account over its limit")
                delay = max(delay, self._delay(failures, limits.account_delay_after))
            return Decision(delay, "delayed" if delay else "allowed")

    def _admit(
        self, record: _Record, attempt: Attempt, failures: int, limit: int, now: float
    ) -> bool:
        """Count the attempt as in flight, unless it and the others in flight, counted as
        failures until they are reported, would go over `limit` (a refused attempt is not
        kept: the table of attempts in flight stays as small as the limit)."""
        pending = record.pending
        for key in [k for k, at in pending.items() if now - at > self.limits.pending_timeout]:
            del pending[key]
        in_flight = len(pending) + (attempt.pending_key not in pending)
        if failures + in_flight > limit:
            return False
        pending.setdefault(attempt.pending_key, now)
        return True

    def _delay(self, failures: int, after: int) -> int:
        if failures < after:
            return 0
        return int(min(self.limits.max_delay, self.limits.delay * 2 ** (failures - after)))

    def report(self, attempt: Attempt, *, success: bool, policy_reject: bool) -> None:
        """The outcome of an attempt; a refused attempt verified nothing and counts nothing."""
        limits = self.limits
        with self._lock:
            now = self._clock()
            address = self._addresses.get(attempt.remote) if attempt.remote else None
            if address is not None:
                address.pending.pop(attempt.pending_key, None)
            account = self._accounts.touch(attempt.login) if attempt.login else None
            if account is not None:
                account.pending.pop(attempt.pending_key, None)
            if success:
                if account is not None and attempt.remote:
                    account.known[attempt.remote] = now
                    account.known.move_to_end(attempt.remote)
                    while len(account.known) > limits.known_addresses:
                        account.known.popitem(last=False)
                return
            if policy_reject:
                return
            if attempt.remote and not self.trusted(attempt.remote):
                address = self._addresses.touch(attempt.remote)
                if self._add_failure(address, attempt, now) >= limits.ip_block_after:
                    address.blocked_until = now + limits.block
            if (
                account is not None
                and self._add_failure(account, attempt, now) >= limits.account_block_after
            ):
                account.blocked_until = now + limits.block

    def _add_failure(self, record: _Record, attempt: Attempt, now: float) -> int:
        count = record.recent(now, self.limits.window)
        if any(guess == attempt.guess for _at, guess in record.failures):
            return count  # the same wrong password again: no new information
        record.failures.append((now, attempt.guess))
        return count + 1

    def _known(self, account: _Record, remote: str, now: float) -> bool:
        seen = account.known.get(remote)
        return seen is not None and now - seen < self.limits.known_address_days * 86400

    def tracked(self) -> tuple[int, int]:
        """(addresses, accounts) held in memory."""
        with self._lock:
            return len(self._addresses), len(self._accounts)


# --- the HTTP service Dovecot talks to -------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """`authpolicy.json`, rendered by `postmeister dataplane render`."""

    host: str
    port: int
    limits: Limits = field(default_factory=Limits)
    trusted_networks: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: Path) -> Config:
        data = json.loads(path.read_text())
        host, _, port = str(data["listen"]).rpartition(":")
        return cls(
            host=host.strip("[]") or "127.0.0.1",
            port=int(port),
            limits=Limits.from_json(data.get("limits", {})),
            trusted_networks=tuple(data.get("trusted_networks", [])),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "listen": f"{self.host}:{self.port}",
            "limits": asdict(self.limits),
            "trusted_networks": list(self.trusted_networks),
        }


def _handler(policy: Policy, log: Callable[[str], None]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # Dovecot keeps its connections open

        def do_POST(self) -> None:
            command = self.path.partition("command=")[2].partition("&")[0]
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY or command not in ("allow", "report"):
                self._answer(400, {})
                return
            try:
                data = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("not an object")
            except ValueError:
                self._answer(400, {})
                return
            attempt = Attempt.from_json(data)
            if command == "report":
                policy.report(
                    attempt,
                    success=data.get("success") is True,
                    policy_reject=data.get("policy_reject") is True,
                )
                self._answer(200, {"status": ALLOW})
                return
            decision = policy.allow(attempt)
            if decision.status != ALLOW:
                # Login names are no secret in a mail log; passwords and hashes never appear.
                log(f"{decision.reason}: login={attempt.login!r} remote={attempt.remote}")
            self._answer(200, decision.as_json())

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            # After a refused request the rest of its body may still be unread.
            self.close_connection = self.close_connection or status != 200
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args  # one line per decision is enough (see do_POST)

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # Dovecot opens up to 100 connections; the default backlog of 5 would refuse some.
    request_queue_size = 128


def make_server(config: Config, log: Callable[[str], None] | None = None) -> Server:
    policy = Policy(config.limits, trusted_networks=config.trusted_networks)
    return Server((config.host, config.port), _handler(policy, log or _stderr))


def _stderr(line: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} authpolicy: {line}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the rendered authpolicy.json")
    parser.add_argument("--pid-file", type=Path, default=None)
    args = parser.parse_args(argv)
    server = make_server(Config.load(args.config))
    if args.pid_file is not None:
        args.pid_file.write_text(f"{os.getpid()}\n")

    def stop(signum: int, frame: object) -> None:
        del signum, frame
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if args.pid_file is not None:
            args.pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
