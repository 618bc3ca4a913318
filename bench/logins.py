"""Section 3: login capacity, IMAP logins per second through Dovecot, per password scheme.

Each login is what a mail program does: a new connection, STARTTLS, LOGIN, LOGOUT. CLIENTS
threads log in back to back for a fixed time, over ACCOUNTS accounts of each scheme:

- argon2id: the controller's default scheme (m=19456 KiB, t=2, p=1), bulk-loaded mailboxes;
- application password: a row in app_passwords (lowercase hex SHA-256 of the secret), on a
  mailbox whose main password is argon2id. Dovecot tries the main passdb first, so this
  login costs one failed argon2id verification before the app-password lookup matches;
- imported `$1$` (md5-crypt, `openssl passwd -1`) and `$6$rounds=100000$` (sha512-crypt,
  `mkpasswd -R 100000`), set directly in the database as a sync import would store them.

Client and Dovecot share the machine's cores, as they would on a one-machine installation.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from bench.common import Json, latency_summary, log
from bench.load import BULK_PASSWORD, mailbox
from bench.mail import imap_login
from postmeister.db import make_engine
from postmeister.models import Address, AppPassword

ACCOUNTS = 20
CLIENTS = 8


@dataclass(frozen=True)
class Scheme:
    label: str
    logins: list[tuple[str, str]]  # (user, password), used round-robin


def _run(*command: str) -> str:
    return subprocess.run(
        command, check=True, capture_output=True, text=True, timeout=60
    ).stdout.strip()


def prepare(database_url: str) -> list[Scheme]:
    """Give the accounts of each scheme their credentials (users 030-033 of domains 0-19)."""
    md5_crypt = _run("openssl", "passwd", "-1", BULK_PASSWORD)
    sha512_crypt = _run("mkpasswd", "-m", "sha-512", "-R", "100000", BULK_PASSWORD)
    run = uuid.uuid4().hex
    app_secrets = [f"Bench{run}App{k}" for k in range(ACCOUNTS)]
    engine = make_engine(database_url)
    with engine.begin() as connection:
        for number, hashed in ((32, md5_crypt), (33, sha512_crypt)):
            connection.execute(
                update(Address)
                .where(Address.address.in_([mailbox(number, k) for k in range(ACCOUNTS)]))
                .values(password_hash=hashed)
            )
        owners = select(Address.address, Address.id).where(
            Address.address.in_([mailbox(31, k) for k in range(ACCOUNTS)])
        )
        ids: dict[str, int] = dict(connection.execute(owners).tuples().all())
        connection.execute(
            insert(AppPassword),
            [
                {
                    "address_id": ids[mailbox(31, k)],
                    "device": "bench",
                    "application": "imap",
                    "secret_hash": hashlib.sha256(secret.encode()).hexdigest(),
                }
                for k, secret in enumerate(app_secrets)
            ],
        )
    engine.dispose()
    accounts = range(ACCOUNTS)
    return [
        Scheme("argon2id (default)", [(mailbox(30, k), BULK_PASSWORD) for k in accounts]),
        Scheme("application password", [(mailbox(31, k), app_secrets[k]) for k in accounts]),
        Scheme("$1$ md5-crypt (imported)", [(mailbox(32, k), BULK_PASSWORD) for k in accounts]),
        Scheme(
            "$6$rounds=100000$ sha512-crypt (imported)",
            [(mailbox(33, k), BULK_PASSWORD) for k in accounts],
        ),
    ]


def _hammer(port: int, scheme: Scheme, seconds: float) -> tuple[list[float], int, float]:
    """CLIENTS threads logging in back to back; returns latencies, failures, elapsed."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    def client() -> None:
        nonlocal failures
        while time.perf_counter() < deadline:
            with lock:
                user, password = scheme.logins[next(counter) % len(scheme.logins)]
            started = time.perf_counter()
            ok = imap_login(port, user, password)
            took = time.perf_counter() - started
            with lock:
                if ok:
                    latencies.append(took)
                else:
                    failures += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures, time.perf_counter() - started


def measure(*, database_url: str, ports: dict[str, Any], seconds: float) -> list[Json]:
    port = ports["imap"]
    rows: list[Json] = []
    for scheme in prepare(database_url):
        user, password = scheme.logins[0]
        if not imap_login(port, user, password):
            raise RuntimeError(f"{scheme.label}: {user} cannot log in; the set-up is wrong")
        latencies, failures, elapsed = _hammer(port, scheme, seconds)
        row: Json = {
            "scheme": scheme.label,
            "logins_per_second": round(len(latencies) / elapsed, 1),
            "logins": len(latencies),
            "failures": failures,
            "clients": CLIENTS,
            "latency": latency_summary(latencies),
        }
        rows.append(row)
        log(
            f"  {scheme.label:<42} {row['logins_per_second']:>7.1f} logins/s  "
            f"p50 {row['latency']['p50_ms']:.1f} ms  p99 {row['latency']['p99_ms']:.1f} ms"
        )
    return rows
