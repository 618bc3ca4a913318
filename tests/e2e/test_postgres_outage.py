"""PostgreSQL down: Postfix answers 4xx (never 5xx), and mail is delivered after recovery.

Runs a private, throwaway PostgreSQL cluster (initdb as the postgres user, on its own loopback
port) with its own stack, so that stopping it disturbs nothing else. The cluster is stopped and
started by the pid in its own postmaster.pid.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from postmeister.dataplane.render.model import StackLayout
from postmeister.db import make_engine
from postmeister.store import migrate
from tests.e2e.conftest import Stack, shared_tmp_dir, start_stack
from tests.e2e.mail import deliver, submit, unique_subject, wait_for_subject
from tests.support.pgcluster import PrivateCluster
from tests.support.processes import free_port

pytestmark = pytest.mark.e2e

RECOVERY_SECONDS = 180.0


@pytest.fixture(scope="module")
def outage_stack() -> Iterator[tuple[Stack, PrivateCluster]]:
    root = shared_tmp_dir("pm-e2e-outage-")
    cluster = PrivateCluster(root, free_port())
    cluster.init()
    cluster.start()
    try:
        admin = make_engine(cluster.url.replace("/postmeister", "/postgres"),
                            isolation_level="AUTOCOMMIT")  # fmt: skip
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE postmeister"))
        admin.dispose()
        migrate(cluster.url)
        for stack in start_stack("postgresql", root, cluster.url):
            yield stack, cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def postfix(stack: Stack, *args: str) -> str:
    config = str(stack.root / "etc" / "postfix")
    result = subprocess.run(
        [args[0], "-c", config, *args[1:]], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


def queued_ids(stack: Stack) -> list[str]:
    listing = postfix(stack, "postqueue", "-j")
    return [line for line in listing.splitlines() if line.strip()]


def test_outage_answers_4xx_and_queued_mail_arrives_after_recovery(
    outage_stack: tuple[Stack, PrivateCluster], capsys: pytest.CaptureFixture[str]
) -> None:
    stack, cluster = outage_stack
    account, other = stack.create_account(), stack.create_account()
    alias = stack.create_alias([account.address])
    unknown = f"nobody@{stack.domain}"
    smtp = stack.ports["smtp"]

    # Mail accepted while the database is up, held in Postfix's queue (LMTP deferred) ...
    postfix(stack, "postconf", "-e", "defer_transports=lmtp")
    postfix(stack, "postfix", "reload")
    queued_subject = unique_subject("queued before the outage")
    assert deliver(smtp, sender="f@sender.example", recipients=[account.address],
                   subject=queued_subject) == {account.address: 250}  # fmt: skip
    assert queued_ids(stack)

    cluster.stop()
    # ... and now the database is down: every answer is temporary.
    try:
        codes = deliver(
            smtp, sender="f@sender.example", recipients=[account.address, alias, unknown],
            subject="during the outage",
        )  # fmt: skip
        assert all(400 <= code < 500 for code in codes.values()), codes
        refused = submit(
            stack.ports["submission"], login=account.address, password=account.password,
            envelope_from=account.address, header_from=account.address, to=other.address,
        )  # fmt: skip
        assert 400 <= refused.code < 500, refused

        # Delivery of the queued message is attempted during the outage: deferred, not bounced.
        postfix(stack, "postconf", "-e", "defer_transports=")
        postfix(stack, "postfix", "reload")
        postfix(stack, "postqueue", "-f")
        time.sleep(2)
        assert queued_ids(stack), "the queued message left the queue during the outage"
    finally:
        cluster.start()

    recovered_at = time.monotonic()
    retry_subject = unique_subject("retried after the outage")
    while True:
        postfix(stack, "postqueue", "-f")
        codes = deliver(smtp, sender="f@sender.example", recipients=[alias], subject=retry_subject)
        if codes[alias] == 250:
            break
        assert 400 <= codes[alias] < 500, codes
        assert time.monotonic() - recovered_at < RECOVERY_SECONDS, "no recovery"
        time.sleep(1)
    accepted_after = time.monotonic() - recovered_at

    assert wait_for_subject(stack.ports["imap"], account.address, account.password,
                            retry_subject, timeout=RECOVERY_SECONDS)  # fmt: skip
    assert wait_for_subject(stack.ports["imap"], account.address, account.password,
                            queued_subject, timeout=RECOVERY_SECONDS)  # fmt: skip
    log = (StackLayout(stack.root).log_dir / "postfix.log").read_text()
    assert "status=bounced" not in log
    with capsys.disabled():
        print(f"\nPostgreSQL back: SMTP accepted again after {accepted_after:.1f} s "
              "(Postfix retries a failed database host after 60 s)")  # fmt: skip
