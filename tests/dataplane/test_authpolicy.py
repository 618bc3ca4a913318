"""The brute-force rules of the auth policy service, on a clock the test moves.

The real daemons are in tests/e2e/test_brute_force.py; here are the parts a test cannot
wait for (windows and blocks expiring after 15 minutes, known addresses after 30 days),
the bounded memory, and the HTTP protocol Dovecot speaks.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator

import pytest

from postmeister.dataplane.authpolicy import (
    REFUSE,
    Attempt,
    Config,
    Limits,
    Policy,
    address_key,
    make_server,
)

LIMITS = Limits()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def policy(clock: Clock) -> Policy:
    return Policy(LIMITS, trusted_networks=["192.0.2.80/32"], clock=clock)


_sessions = iter(range(10**9))


def login(policy: Policy, account: str, remote: str, password: str, *, right: bool) -> int:
    """One whole attempt as Dovecot makes it; returns the status of the first check."""
    attempt = Attempt(account, address_key(remote), f"hash-{password}", f"s{next(_sessions)}")
    status = policy.allow(attempt).status
    if status == REFUSE:
        policy.report(attempt, success=False, policy_reject=True)
        return status
    if right:
        again = policy.allow(attempt).status  # the check after a verified password
        policy.report(attempt, success=again != REFUSE, policy_reject=again == REFUSE)
        return status if again != REFUSE else REFUSE
    policy.report(attempt, success=False, policy_reject=False)
    return status


def guess(policy: Policy, account: str, remote: str, number: int) -> int:
    return login(policy, account, remote, f"guess-{number}", right=False)


def test_an_address_is_slowed_after_three_failures_and_refused_at_the_tenth(
    policy: Policy,
) -> None:
    statuses = [guess(policy, f"user{n}@example.org", "198.51.100.7", n) for n in range(12)]
    assert statuses == [0, 0, 0, 2, 4, 6, 6, 6, 6, 6, REFUSE, REFUSE]
    # Blocked means blocked: the right password of any account is refused too.
    assert login(policy, "user0@example.org", "198.51.100.7", "right", right=True) == REFUSE
    assert login(policy, "user0@example.org", "198.51.100.8", "right", right=True) == 0


def test_an_address_block_ends_after_fifteen_minutes(policy: Policy, clock: Clock) -> None:
    for n in range(LIMITS.ip_block_after):
        guess(policy, f"user{n}@example.org", "198.51.100.7", n)
    clock.now += LIMITS.block - 1
    assert guess(policy, "someone@example.org", "198.51.100.7", 99) == REFUSE
    clock.now += 2
    assert login(policy, "someone@example.org", "198.51.100.7", "right", right=True) == 0


def test_failures_older_than_the_window_are_forgotten(policy: Policy, clock: Clock) -> None:
    for n in range(LIMITS.ip_delay_after):
        guess(policy, "anna@example.org", "198.51.100.7", n)
    clock.now += LIMITS.window + 1
    assert guess(policy, "anna@example.org", "198.51.100.7", 100) == 0


def test_the_same_wrong_password_again_is_one_failure(policy: Policy) -> None:
    for _ in range(50):
        assert login(policy, "anna@example.org", "198.51.100.7", "old", right=False) == 0
    assert login(policy, "anna@example.org", "198.51.100.7", "new", right=True) == 0


def test_parallel_attempts_count_before_their_outcome_is_known(policy: Policy) -> None:
    """A burst of connections gets no more guesses than one patient client."""
    attempts = [
        Attempt("anna@example.org", "198.51.100.7", f"h{n}", f"burst{n}") for n in range(50)
    ]
    allowed = [a for a in attempts if policy.allow(a).status != REFUSE]
    assert len(allowed) == LIMITS.ip_block_after


def test_an_account_under_attack_is_closed_to_new_addresses_only(policy: Policy) -> None:
    account = "anna@example.org"
    assert login(policy, account, "203.0.113.1", "right", right=True) == 0  # home
    statuses = [guess(policy, account, f"198.51.{n}.1", n) for n in range(22)]
    assert statuses[:5] == [0] * 5
    assert statuses[5:8] == [2, 4, 6]
    assert statuses[20:] == [REFUSE, REFUSE]
    assert login(policy, account, "198.51.200.1", "right", right=True) == REFUSE
    assert login(policy, account, "203.0.113.1", "right", right=True) == 0
    assert login(policy, "ben@example.org", "198.51.200.2", "right", right=True) == 0


def test_a_known_address_is_forgotten_after_thirty_days(policy: Policy, clock: Clock) -> None:
    account = "anna@example.org"
    login(policy, account, "203.0.113.1", "right", right=True)
    clock.now += LIMITS.known_address_days * 86400 + 1
    for n in range(LIMITS.account_block_after):
        guess(policy, account, f"198.51.{n}.1", n)
    assert login(policy, account, "203.0.113.1", "right", right=True) == REFUSE


def test_a_trusted_host_is_exempt_from_the_address_rules_but_not_the_account_rules(
    policy: Policy,
) -> None:
    webmail = "192.0.2.80"
    statuses = [guess(policy, f"user{n}@example.org", webmail, n) for n in range(15)]
    assert set(statuses) == {0}
    for n in range(LIMITS.account_block_after):
        guess(policy, "anna@example.org", webmail, n)
    assert login(policy, "anna@example.org", webmail, "right", right=True) == REFUSE


def test_an_ipv6_client_is_judged_by_its_64_network() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:198.51.100.7") == "198.51.100.7"


def test_memory_is_bounded(clock: Clock) -> None:
    policy = Policy(Limits(max_tracked=100), clock=clock)
    for n in range(5_000):
        guess(policy, f"user{n}@example.org", f"10.{n // 250}.{n % 250}.1", n)
    assert policy.tracked() == (100, 100)


@pytest.fixture
def server() -> Iterator[int]:
    instance = make_server(Config(host="127.0.0.1", port=0), log=lambda line: None)
    thread = threading.Thread(target=instance.serve_forever, daemon=True)
    thread.start()
    try:
        yield instance.server_address[1]
    finally:
        instance.shutdown()
        instance.server_close()


def post(port: int, command: str, body: bytes) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(
            "POST", f"/?command={command}", body, {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_the_service_answers_dovecots_requests(server: int) -> None:
    request = {
        "login": "Anna@Example.org",
        "pwhash": "abc",
        "remote": "198.51.100.7",
        "protocol": "imap",
        "session_id": "s1",
    }
    assert post(server, "allow", json.dumps(request).encode()) == (200, {"status": 0})
    report = {**request, "success": False, "policy_reject": False}
    assert post(server, "report", json.dumps(report).encode())[0] == 200
    assert post(server, "allow", b"[1, 2") == (400, {})
    assert post(server, "delete", b"{}") == (400, {})
