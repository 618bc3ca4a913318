"""Mail keeps flowing while the controller is down: the data plane needs only the database."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest

from tests.e2e.conftest import Stack, shared_tmp_dir, strong_password, unique
from tests.e2e.mail import deliver, imap_login_works, submit, unique_subject, wait_for_subject
from tests.support.processes import BIN, free_port, stop, wait_for_port

pytestmark = pytest.mark.e2e


def test_mail_is_accepted_and_delivered_after_the_controller_stopped(stack: Stack) -> None:
    port = free_port()
    data_dir = shared_tmp_dir("pm-e2e-controller-")
    env = {**stack.env, "POSTMEISTER_DATA_DIR": str(data_dir)}
    controller = subprocess.Popen(
        [str(BIN / "postmeister"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    local = unique("offline")
    address = f"{local}@{stack.domain}"
    password = strong_password(address)
    try:
        wait_for_port(port, process=controller)
        with httpx.Client(verify=False, timeout=30) as client:  # noqa: S501 (self-signed)
            created = client.post(
                f"https://127.0.0.1:{port}/mail/account/",
                json={"name": local, "domain": stack.domain, "password": password},
                headers=stack.tenant.auth,
            )
        assert created.status_code == 201, created.text
    finally:
        stop(controller)
        shutil.rmtree(data_dir, ignore_errors=True)
    assert controller.poll() is not None, "the controller is still running"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://127.0.0.1:{port}/mail/account/", verify=False)  # noqa: S501

    subject = unique_subject("while the controller is down")
    codes = deliver(
        stack.ports["smtp"], sender="f@sender.example", recipients=[address], subject=subject
    )
    assert codes == {address: 250}
    assert wait_for_subject(stack.ports["imap"], address, password, subject)
    assert imap_login_works(stack.ports["imap"], address, password)
    sent = submit(
        stack.ports["submission"], login=address, password=password,
        envelope_from=address, header_from=address, to=address,
    )  # fmt: skip
    assert sent.sent, sent
