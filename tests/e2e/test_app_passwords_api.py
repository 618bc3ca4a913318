"""Application passwords created and revoked through the hosting API, used by real IMAP and
SMTP submission clients: several at once, each revoked on the very next login."""

from __future__ import annotations

import pytest

from tests.e2e import hosting
from tests.e2e.conftest import Stack
from tests.e2e.mail import imap_login_works, submit

pytestmark = pytest.mark.e2e


def sends(stack: Stack, box: hosting.Mailbox, password: str) -> tuple[str, int]:
    result = submit(
        stack.ports["submission"], login=box.address, password=password,
        envelope_from=box.address, header_from=box.address, to=box.address,
    )  # fmt: skip
    return result.stage, result.code


def test_app_passwords_from_the_api_log_in_and_a_deleted_one_fails_at_once(stack: Stack) -> None:
    box = hosting.mailbox(stack, prefix="apps")
    phone_id, phone = hosting.app_password(stack, box, "Telefon")
    _, laptop = hosting.app_password(stack, box, "Laptop")
    imap = stack.ports["imap"]

    for secret in (phone, laptop, box.password):
        assert imap_login_works(imap, box.address, secret)
        assert sends(stack, box, secret) == ("sent", 250)
    # An app password is bound to its own mailbox.
    other = hosting.mailbox(stack, prefix="other")
    assert not imap_login_works(imap, other.address, phone)

    hosting.revoke_app_password(stack, box, phone_id)

    assert not imap_login_works(imap, box.address, phone)
    stage, code = sends(stack, box, phone)
    assert (stage, code) == ("auth", 535)
    assert imap_login_works(imap, box.address, laptop)
    assert sends(stack, box, laptop) == ("sent", 250)
