"""The transactional outbox with real `postmeister serve` processes: a controller killed
with SIGKILL right after a change, before its dispatcher could send anything, delivers the
change's webhook once it is started again on the same database."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from tests.support import secrets
from tests.support.factories import STRONG_PASSWORD
from tests.support.hookreceiver import receiving
from tests.support.processes import BIN, cli, free_port, stop, wait_for_port
from tests.support.tls import make_test_pki

pytestmark = pytest.mark.server


@contextmanager
def serving(env: dict[str, str], port: int) -> Iterator[subprocess.Popen[str]]:
    """`postmeister serve` for the block, stopped by its own handle afterwards (if the test
    has not killed it already)."""
    process = subprocess.Popen(
        [str(BIN / "postmeister"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, process=process)
        yield process
    finally:
        stop(process)
        if process.stdout is not None:
            process.stdout.close()


def _bootstrap_token(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        assert line, "serve ended without printing the bootstrap token"
        if "bootstrap admin token" in line:
            return line.rsplit(" ", 1)[1].strip()


def test_a_change_survives_a_sigkill_before_delivery_and_is_delivered_after_restart(
    database_url: str, tmp_path: Path
) -> None:
    pki = make_test_pki(tmp_path / "pki")
    with receiving(pki.server_context()) as receiver:
        env = {
            **os.environ,
            "POSTMEISTER_DATA_DIR": str(tmp_path / "data"),
            "POSTMEISTER_DATABASE_URL": database_url,
            "POSTMEISTER_WEBHOOKS__CA_BUNDLE": str(pki.ca_cert),
            "POSTMEISTER_WEBHOOKS__ALLOW_PRIVATE_NETWORKS": "true",  # the receiver: loopback
        }
        port = free_port()
        # The first controller's dispatcher runs once at start, then not for an hour.
        first_env = {**env, "POSTMEISTER_WEBHOOKS__POLL_SECONDS": "3600"}
        with serving(first_env, port) as first:
            admin = {"Authorization": f"Bearer {_bootstrap_token(first)}"}
            customer = json.loads(cli("customer", "create", "Outbox Ltd", env=env).stdout)
            added = cli(
                "domain", "add", "outbox.example", "--customer", str(customer["id"]), env=env
            )
            assert added.returncode == 0, added.stderr
            base = f"https://127.0.0.1:{port}"
            trust = ssl.create_default_context(cafile=tmp_path / "data" / "tls" / "cert.pem")
            with httpx.Client(base_url=base, verify=trust, timeout=30) as client:
                document = {
                    "data": {
                        "type": "webhook",
                        "attributes": {
                            "url": receiver.url(),
                            "event_types": ["address.created"],
                        },
                    }
                }
                registered = client.post(
                    "/webhooks",
                    content=json.dumps(document),
                    headers={**admin, "Content-Type": "application/vnd.api+json"},
                )
                assert registered.status_code == 201, registered.text
                secret = registered.json()["data"]["attributes"]["secret"]
                secrets.remember(secret, "webhook signing secret")
                time.sleep(1)  # the start-up pass is long over: nothing is sent until a tick
                made = client.post(
                    "/mail/account/",
                    json={"name": "info", "domain": "outbox.example", "password": STRONG_PASSWORD},
                    headers=admin,
                )
                assert made.status_code == 201, made.text
            os.kill(first.pid, signal.SIGKILL)  # at once: its dispatcher never got to it
            first.wait(timeout=10)
            assert first.returncode == -signal.SIGKILL
        assert receiver.received == []

        with serving(env, port):
            got = receiver.wait_for(1, timeout=30)
        assert len(got) == 1
        body = Webhook(secret).verify(got[0].body, got[0].headers)
        assert body["type"] == "address.created"
        assert body["data"]["name"] == "info@outbox.example"
