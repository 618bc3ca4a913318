"""The Sieve scripts the database generates, run by Pigeonhole's own `sieve-test`.

No daemon is involved: the script comes from `dataplane_v1_sieve_scripts` on each database and
Pigeonhole executes it against a test message, printing the actions it would take. This is
what proves that any autoresponder text survives as the reply body, byte for byte, and that
the date window follows the local date of the zone Dovecot runs in (TZ).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from postmeister import models as m
from postmeister.db import unit_of_work

# Installed with dovecot-sieve by scripts/install-dataplane-packages.
SIEVE_TEST = shutil.which("sieve-test")

MESSAGE = (
    "From: Bob <bob@sender.example>\n"
    "To: anna@example.org\n"
    "Subject: Hello\n"
    "Message-ID: <1@sender.example>\n"
    "\n"
    "Hi Anna\n"
)

TEXTS = {
    "plain": "Ich bin im Urlaub.",
    "quotes and backslashes": 'Er sagte "tschüss" \\ und \\"ging\\".',
    "sieve syntax": 'text:\n.\n}\nvacation "injected";\nstop;\n# comment\n/* not one */',
    "dots": ".\n..\n.start\nend.\n.",
    "variables and encoded characters": "${hex:41} ${unicode:263A} ${1} ${name}",
    "line endings": "one\r\ntwo\rthree\nfour\r\n",
    "non-ASCII": "Grüße aus Köln — 日本語 ☃ 🌴",
    "trailing newline": "bye\n",
}


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """A directory the unprivileged user running sieve-test can read."""
    path = Path(tempfile.mkdtemp(prefix="pm-sieve-", dir="/tmp"))
    os.chmod(path, 0o755)  # noqa: S103
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def store_responder(
    sessions: sessionmaker[Session],
    *,
    body: str,
    activates: dt.date | None = None,
    expires: dt.date | None = None,
    antispam: str = "reject",
) -> str:
    with unit_of_work(sessions) as session:
        customer = m.Customer(name="Sieve GmbH")
        session.add(customer)
        session.flush()
        package = m.Package(customer_id=customer.id, name="default")
        session.add(package)
        session.flush()
        domain = m.Domain(
            customer_id=customer.id,
            package_id=package.id,
            name="example.org",
            display_name="example.org",
        )
        session.add(domain)
        session.flush()
        address = m.Address(
            domain_id=domain.id,
            address="anna@example.org",
            local_part="anna",
            kind="mailbox",
            antispam=antispam,
        )
        session.add(address)
        session.flush()
        session.add(
            m.Autoresponder(
                address_id=address.id,
                text=body,
                active=True,
                activates=activates,
                expires=expires,
            )
        )
    return "anna@example.org"


def script_of(sessions: sessionmaker[Session], username: str) -> str:
    with sessions() as session:
        found = session.execute(
            text("SELECT script FROM dataplane_v1_sieve_scripts WHERE username = :u"),
            {"u": username},
        ).scalar_one()
    return str(found)


def run_sieve(workdir: Path, script: str, *, zone: str = "UTC", message: str = MESSAGE) -> str:
    """sieve-test's report of what `script` does with `message` when Dovecot's TZ is `zone`."""
    assert SIEVE_TEST is not None, "sieve-test missing: run scripts/install-dataplane-packages"
    script_file = workdir / "script.sieve"
    message_file = workdir / "message.eml"
    script_file.write_text(script)
    message_file.write_text(message)
    for path in (script_file, message_file):
        os.chmod(path, 0o644)
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    os.chmod(home, 0o777)  # noqa: S103
    command = [SIEVE_TEST, str(script_file), str(message_file)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": zone, "HOME": str(home)}
    if os.geteuid() == 0:
        # sieve-test refuses to run as root without a mail user.
        nobody = pwd.getpwnam("nobody").pw_name
        command = ["runuser", "-u", nobody, "--", "env", *_assignments(env), *command]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def _assignments(env: dict[str, str]) -> list[str]:
    return [f"{name}={value}" for name, value in env.items()]


def vacation_body(report: str) -> str | None:
    """The body of the vacation reply sieve-test would send, None when none."""
    if "send vacation message" not in report:
        return None
    start = report.index("START MESSAGE\n") + len("START MESSAGE\n")
    # sieve-test puts a line break of its own between the body and END MESSAGE.
    return report[start : report.index("\nEND MESSAGE", start)]


def expected_body(original: str) -> str:
    lines = original.replace("\r\n", "\n").replace("\r", "\n")
    return lines if lines.endswith("\n") else lines + "\n"


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_any_text_comes_back_verbatim(
    sessions: sessionmaker[Session], workdir: Path, name: str
) -> None:
    body = TEXTS[name]
    username = store_responder(sessions, body=body)
    report = run_sieve(workdir, script_of(sessions, username))
    assert vacation_body(report) == expected_body(body)
    assert "error" not in report.lower()


def test_the_window_follows_the_local_date_of_the_zone_dovecot_runs_in(
    sessions: sessionmaker[Session], workdir: Path
) -> None:
    """UTC+14 and UTC-11 are always on different dates: a window opening on today's date in
    Kiritimati is open there and not yet open in Pago Pago, at any moment of the day."""
    early, late = "Pacific/Kiritimati", "Pacific/Pago_Pago"
    today_early = dt.datetime.now(ZoneInfo(early)).date()
    username = store_responder(sessions, body="Away.", activates=today_early)
    script = script_of(sessions, username)

    assert vacation_body(run_sieve(workdir, script, zone=early)) == "Away.\n"
    assert vacation_body(run_sieve(workdir, script, zone=late)) is None


def test_expiry_closes_the_window_at_local_midnight(
    sessions: sessionmaker[Session], workdir: Path
) -> None:
    early, late = "Pacific/Kiritimati", "Pacific/Pago_Pago"
    today_early = dt.datetime.now(ZoneInfo(early)).date()
    username = store_responder(sessions, body="Away.", expires=today_early)
    script = script_of(sessions, username)

    assert vacation_body(run_sieve(workdir, script, zone=early)) is None
    assert vacation_body(run_sieve(workdir, script, zone=late)) == "Away.\n"


def test_marked_spam_goes_to_junk_and_gets_no_reply(
    sessions: sessionmaker[Session], workdir: Path
) -> None:
    username = store_responder(sessions, body="Away.", antispam="junk-folder")
    script = script_of(sessions, username)
    marked = "X-Spam: Yes\n" + MESSAGE

    report = run_sieve(workdir, script, message=marked)
    assert "store message in folder: Junk" in report
    assert vacation_body(report) is None
    with contextlib.suppress(ValueError):
        report.index("INBOX")
        raise AssertionError("marked spam must not also be kept in the INBOX")
    clean = run_sieve(workdir, script)
    assert "store message in folder: INBOX" in clean
    assert vacation_body(clean) == "Away.\n"
