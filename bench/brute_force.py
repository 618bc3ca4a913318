"""Brute force against the private data plane: how slow wrong passwords get, and whether
anybody else notices.

    sudo .venv/bin/python -m bench.brute_force [--attempts 20] [--dovecot-penalty]

Starts a private Postfix + Dovecot (`dataplane up`, the production limits; with
`--dovecot-penalty` also Dovecot's own per-address penalty, exactly as `dataplane render`
configures a mail server) on a fresh SQLite database with two mailboxes, then, each attempt
on a fresh connection:

1. an attacker at 127.0.0.2 sends `--attempts` distinct wrong passwords for the victim,
   alternating IMAP LOGIN and SMTP AUTH (Postfix asks Dovecot: one set of counters);
2. after attempts 1, 5, 10 and 20 (and at the end), the victim logs in from an address it
   used before (127.0.0.3), from a new address (127.0.0.4 and up), and another account from
   127.0.0.9: their latencies show who is slowed down.

Prints one JSON document on stdout; progress on stderr. Nothing is asserted
(tests/e2e/test_brute_force.py does that).
"""

from __future__ import annotations

import argparse
import imaplib
import json
import smtplib
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.mail import HOST, TLS
from postmeister.dataplane.render.model import StackLayout

TIMEOUT = 60


@dataclass(frozen=True)
class Outcome:
    """One login attempt: accepted or not, how long it took, and the server's answer."""

    ok: bool
    seconds: float
    reply: str


class _BoundIMAP(imaplib.IMAP4):
    """IMAP from a chosen local address (127.0.0.x are distinct clients to the server)."""

    def __init__(self, port: int, source: str) -> None:
        self._source = source
        super().__init__(HOST, port, timeout=TIMEOUT)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection(
            (self.host, self.port), timeout, source_address=(self._source, 0)
        )


def imap_attempt(port: int, user: str, password: str, *, source: str) -> Outcome:
    """A new connection, STARTTLS, LOGIN: timed from connect to the answer to LOGIN."""
    started = time.perf_counter()
    with _BoundIMAP(port, source) as imap:
        imap.starttls(ssl_context=TLS)
        try:
            _typ, data = imap.login(user, password)
            ok, reply = True, b" ".join(data).decode(errors="replace")
        except imaplib.IMAP4.error as error:
            ok, reply = False, str(error)
        seconds = time.perf_counter() - started
    return Outcome(ok, seconds, reply)


def smtp_attempt(port: int, user: str, password: str, *, source: str) -> Outcome:
    """A new connection to the submission port, STARTTLS, AUTH PLAIN: timed to the answer."""
    started = time.perf_counter()
    with smtplib.SMTP(HOST, port, timeout=TIMEOUT, source_address=(source, 0)) as smtp:
        smtp.starttls(context=TLS)
        smtp.ehlo("laptop.example")
        smtp.user, smtp.password = user, password
        reply: bytes | str
        try:
            code, reply = smtp.auth("PLAIN", smtp.auth_plain)
        except smtplib.SMTPAuthenticationError as error:
            code, reply = error.smtp_code, error.smtp_error
        seconds = time.perf_counter() - started
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    return Outcome(code == 235, seconds, f"{code} {text}")


# --- the benchmark -------------------------------------------------------------------------


def _accounts(database_url: str, domain: str) -> dict[str, str]:
    """Two mailboxes, created through the controller API as a customer would."""
    from fastapi.testclient import TestClient

    from postmeister.api.app import create_app
    from postmeister.config import PasswordSettings, Settings
    from postmeister.db import make_engine, make_session_factory, unit_of_work
    from postmeister.domain.customers.service import create_customer
    from postmeister.domain.domains.service import add_domain
    from postmeister.domain.passwords.generator import generate_password
    from postmeister.domain.tokens.service import create_token

    engine = make_engine(database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        customer = create_customer(session, name=f"Brute force {domain}")
        add_domain(session, customer_id=customer.id, name=domain)
        token = create_token(session, customer_id=customer.id).secret
    passwords: dict[str, str] = {}
    with TestClient(
        create_app(Settings(database_url=database_url)), base_url="https://testserver"
    ) as api:
        for local in ("victim", "other"):
            password = generate_password(
                local_part=local, domain=domain, settings=PasswordSettings()
            )
            response = api.post(
                "/mail/account/",
                json={"name": local, "domain": domain, "password": password},
                headers={"Authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
            passwords[f"{local}@{domain}"] = password
    engine.dispose()
    return passwords


ANVIL_OFF = "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n"


def _switch_on_dovecot_penalty(stack_dir: Path) -> None:
    """Make the stack's Dovecot what a mail server runs: its per-address penalty on (the
    private stack switches it off for the sake of its own clients at 127.0.0.1)."""
    config = StackLayout(stack_dir).dovecot_config
    text = config.read_text()
    if ANVIL_OFF not in text:
        raise RuntimeError(f"{config}: the anvil block has changed; update the benchmark")
    config.write_text(text.replace(ANVIL_OFF, ""))
    # A reload is not enough (Dovecot 2.3's master exits on it here): restart it.
    subprocess.run(["doveadm", "-c", str(config), "stop"], check=True, timeout=30)
    subprocess.run(["dovecot", "-c", str(config)], check=True, timeout=30)
    time.sleep(2)


def run(attempts: int, *, dovecot_penalty: bool) -> dict[str, Any]:
    from bench.common import log, shared_workdir
    from bench.servers import dataplane
    from postmeister.store import migrate

    checkpoints = sorted({1, 5, 10, 20, attempts} & set(range(1, attempts + 1)))
    with shared_workdir("pm-bench-bf-") as root:
        (root / "db").mkdir()
        url = f"sqlite:///{root / 'db' / 'postmeister.sqlite3'}"
        migrate(url)
        domain = "bf.bench.example"
        accounts = _accounts(url, domain)
        victim, other = f"victim@{domain}", f"other@{domain}"
        with dataplane(url, root) as ports:
            if dovecot_penalty:
                _switch_on_dovecot_penalty(Path(ports["dir"]))
            imap, submission = ports["imap"], ports["submission"]
            known = imap_attempt(imap, victim, accounts[victim], source="127.0.0.3")
            log(f"victim from its known address before the attack: {known.seconds:.2f} s")
            rows: list[dict[str, Any]] = []
            bystanders: list[dict[str, Any]] = []
            for number in range(1, attempts + 1):
                attempt = imap_attempt if number % 2 else smtp_attempt
                port = imap if number % 2 else submission
                outcome = attempt(port, victim, f"Wrong-guess-{number}", source="127.0.0.2")
                protocol = "imap" if number % 2 else "smtp"
                rows.append(
                    {
                        "attempt": number,
                        "protocol": protocol,
                        "seconds": round(outcome.seconds, 2),
                        "reply": outcome.reply,
                    }
                )
                log(f"attempt {number:>2} ({protocol}): {outcome.seconds:6.2f} s {outcome.reply}")
                if number in checkpoints:
                    new_source = f"127.0.0.{3 + len(bystanders) + 1}"
                    checks = {
                        "victim_known_address": imap_attempt(
                            imap, victim, accounts[victim], source="127.0.0.3"
                        ),
                        "victim_new_address": imap_attempt(
                            imap, victim, accounts[victim], source=new_source
                        ),
                        "other_account_imap": imap_attempt(
                            imap, other, accounts[other], source="127.0.0.9"
                        ),
                        "other_account_smtp": smtp_attempt(
                            submission, other, accounts[other], source="127.0.0.9"
                        ),
                    }
                    row = {
                        "after_attempt": number,
                        **{
                            name: {"ok": c.ok, "seconds": round(c.seconds, 2)}
                            for name, c in checks.items()
                        },
                    }
                    bystanders.append(row)
                    log(f"  after {number}: {json.dumps(row)}")
    return {"dovecot_penalty": dovecot_penalty, "attacker": rows, "others": bystanders}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=20)
    parser.add_argument(
        "--dovecot-penalty",
        action="store_true",
        help="switch Dovecot's own per-address penalty on, as on a mail server",
    )
    args = parser.parse_args()
    print(json.dumps(run(args.attempts, dovecot_penalty=args.dovecot_penalty), indent=2))


if __name__ == "__main__":
    main()
