"""Brute force over real IMAP, POP3 and SMTP AUTH (finding 9 of issue 10): wrong passwords get
slower and are then refused, per client address and per account, while everybody else logs
in at normal speed.

Each loopback address (127.0.0.2, 127.0.0.3, ...) is a different client to Postfix and
Dovecot: the clients bind their sockets to them. 127.0.0.1, where the rest of the suite
connects from, is the stack's trusted host (like a webmail host) and is not used here. The
limits are the production ones (`postmeister.dataplane.authpolicy.Limits`); each test uses
its own accounts and addresses, because the auth policy service keeps its counts for the
whole session.
"""

from __future__ import annotations

import poplib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from bench.brute_force import Outcome, imap_attempt, smtp_attempt

from postmeister.dataplane.authpolicy import Limits
from postmeister.dataplane.render.postfix import SUBMISSION_AUTH_RATE_LIMIT
from tests.e2e.conftest import Account, Stack
from tests.e2e.mail import TLS, pop3_connect

pytestmark = pytest.mark.e2e

LIMITS = Limits()
# A login that nothing slows down: TLS handshake and one fast test hash.
NORMAL = 1.5
# Every failure is answered after Dovecot's auth_failure_delay.
FAILURE_DELAY = 2.0


def wrong(number: int) -> str:
    return f"Not-the-password-{number}"


def pop3_attempt(port: int, user: str, password: str, *, source: str) -> Outcome:
    """A new connection, STLS, USER and PASS: timed from connect to the answer to PASS."""
    started = time.perf_counter()
    pop = pop3_connect(port, source=source)
    try:
        pop.stls(context=TLS)
        pop.user(user)
        ok, reply = True, pop.pass_(password).decode(errors="replace")
    except poplib.error_proto as error:
        ok, reply = False, str(error)
    finally:
        pop.close()
    return Outcome(ok, time.perf_counter() - started, reply)


def attempt(stack: Stack, protocol: str, account: str, password: str, source: str) -> Outcome:
    if protocol == "pop3":
        return pop3_attempt(stack.ports["pop3"], account, password, source=source)
    if protocol == "imap":
        return imap_attempt(stack.ports["imap"], account, password, source=source)
    return smtp_attempt(stack.ports["submission"], account, password, source=source)


def in_parallel(stack: Stack, jobs: list[tuple[str, str, str, str]]) -> list[Outcome]:
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(lambda job: attempt(stack, *job), jobs))


def assert_normal_login(stack: Stack, account: Account, source: str) -> None:
    for protocol in ("imap", "pop3", "smtp"):
        outcome = attempt(stack, protocol, account.address, account.password, source)
        assert outcome.ok, f"{protocol} from {source}: {outcome.reply}"
        assert outcome.seconds < NORMAL, f"{protocol} from {source}: {outcome.seconds:.2f} s"


def test_wrong_passwords_from_one_address_get_slower_then_the_address_is_refused(
    sqlite_stack: Stack,
) -> None:
    stack = sqlite_stack
    victim, bystander = stack.create_account(), stack.create_account()
    attacker, victims_phone, bystanders_laptop = "127.0.0.2", "127.0.0.3", "127.0.0.4"
    # The victim's phone has logged in before: a known address of the account.
    assert_normal_login(stack, victim, victims_phone)

    # Distinct guesses alternating IMAP and SMTP AUTH: one set of counters for both.
    timings: list[float] = []
    sequential = LIMITS.ip_delay_after + 3  # 1..3: 2 s each, then 2 + 2, 4 + 2, 6 + 2 s
    for number in range(1, sequential + 1):
        protocol = "imap" if number % 2 else "smtp"
        outcome = attempt(stack, protocol, victim.address, wrong(number), attacker)
        assert not outcome.ok, outcome.reply
        timings.append(outcome.seconds)
    first = timings[: LIMITS.ip_delay_after]
    assert all(FAILURE_DELAY - 0.5 < t < FAILURE_DELAY + NORMAL for t in first), timings
    # Dovecot answers failures in batches, so its delay varies by up to a second.
    delays = [t - FAILURE_DELAY for t in timings[LIMITS.ip_delay_after :]]
    assert all(abs(d - e) < 1.2 for d, e in zip(delays, [2, 4, 6], strict=True)), timings

    # The rest of the allowance at once, the way a patient attacker would not get it.
    rest = range(sequential + 1, LIMITS.ip_block_after + 1)
    jobs = [("imap", victim.address, wrong(n), attacker) for n in rest]
    assert not any(o.ok for o in in_parallel(stack, jobs))

    # Now even the right password is refused from that address, over every protocol...
    for protocol in ("imap", "pop3", "smtp"):
        refused = attempt(stack, protocol, victim.address, victim.password, attacker)
        assert not refused.ok, f"{protocol}: the blocked address logged in"
        assert refused.seconds < FAILURE_DELAY + NORMAL, "a refusal is not delayed further"
    # ...and for any other account: the address is blocked, not the guess.
    assert not attempt(stack, "imap", bystander.address, bystander.password, attacker).ok

    # Nobody else notices: the victim from its phone, another account from elsewhere.
    assert_normal_login(stack, victim, victims_phone)
    assert_normal_login(stack, bystander, bystanders_laptop)
    # The victim from an address it never used: the per-account rule has fired (10 failed
    # guesses), so it waits, but gets in with the right password.
    fresh = attempt(stack, "imap", victim.address, victim.password, "127.0.0.5")
    assert fresh.ok, fresh.reply
    assert fresh.seconds >= LIMITS.max_delay - 0.5, fresh.seconds


def test_guesses_spread_over_many_addresses_lock_the_account_only_for_new_addresses(
    sqlite_stack: Stack,
) -> None:
    stack = sqlite_stack
    victim, bystander = stack.create_account(), stack.create_account()
    home = "127.0.1.1"
    assert_normal_login(stack, victim, home)

    # A botnet: every address guesses once, so no per-address limit ever fires; IMAP, POP3
    # and SMTP AUTH count together.
    guesses = LIMITS.account_block_after
    protocols = ("imap", "pop3", "smtp")
    jobs = [
        (protocols[n % 3], victim.address, wrong(n), f"127.0.2.{n}") for n in range(1, guesses + 1)
    ]
    for batch in (jobs[: guesses // 2], jobs[guesses // 2 :]):
        assert not any(o.ok for o in in_parallel(stack, batch))

    # The account is closed to new addresses, even with the right password...
    for protocol in ("imap", "pop3", "smtp"):
        refused = attempt(stack, protocol, victim.address, victim.password, "127.0.2.200")
        assert not refused.ok, f"{protocol}: a new address got into the attacked account"
    # ...but not to the owner at home, and no other account is touched.
    assert_normal_login(stack, victim, home)
    assert_normal_login(stack, bystander, "127.0.2.201")


def test_a_mail_program_retrying_one_stale_password_is_not_blocked(sqlite_stack: Stack) -> None:
    """Only distinct guesses count: a phone that keeps sending the old password after a
    password change must not lock out its owner's other devices behind the same address."""
    stack = sqlite_stack
    owner = stack.create_account()
    office = "127.0.3.1"
    for _ in range(LIMITS.ip_block_after + 2):
        stale = attempt(stack, "imap", owner.address, "The-old-password-1", office)
        assert not stale.ok
        assert stale.seconds < FAILURE_DELAY + NORMAL, "one wrong password is one failure"
    assert_normal_login(stack, owner, office)


def test_postfix_limits_auth_commands_per_address_and_minute(sqlite_stack: Stack) -> None:
    """Postfix's own limit (anvil, `smtpd_client_auth_rate_limit`) on the submission port:
    a cheap gate in front of Dovecot, even for right passwords; other addresses go on."""
    stack = sqlite_stack
    account = stack.create_account()
    burst = "127.0.4.1"
    outcomes = [
        attempt(stack, "smtp", account.address, account.password, burst)
        for _ in range(SUBMISSION_AUTH_RATE_LIMIT + 1)
    ]
    assert all(o.ok for o in outcomes[:SUBMISSION_AUTH_RATE_LIMIT]), outcomes[-2].reply
    assert not outcomes[-1].ok, "one AUTH more than the limit within a minute"
    assert "too many" in outcomes[-1].reply.lower(), outcomes[-1].reply
    assert_normal_login(stack, account, "127.0.4.2")
