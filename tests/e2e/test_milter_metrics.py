"""The milters' decisions in their own Prometheus metrics, as real mail passes them."""

from __future__ import annotations

import urllib.request

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.mail import compose, send_raw, submit, unique_subject
from tests.e2e.test_antispam import GTUBE
from tests.ops.metrics_text import sample

pytestmark = pytest.mark.e2e

DECISIONS = "postmeister_milter_decisions_total"


def scrape(stack: Stack) -> str:
    url = f"http://127.0.0.1:{stack.ports['milter_metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


def test_milter_decisions_are_counted_by_result(stack: Stack) -> None:
    account = stack.create_account()
    before = scrape(stack)

    spam = compose(header_from="x@sender.example", to=account.address,
                   subject=unique_subject("spam"), body=f"Buy now!\n{GTUBE}\n")  # fmt: skip
    _codes, reply = send_raw(stack.ports["smtp"], sender="x@sender.example",
                            recipients=[account.address], raw=spam)  # fmt: skip
    assert reply is not None and reply[0] == 550, reply
    sent = submit(stack.ports["submission"], login=account.address, password=account.password,
                  envelope_from=account.address, header_from=account.address, to=account.address)  # fmt: skip
    assert sent.sent, sent
    forged = submit(stack.ports["submission"], login=account.address, password=account.password,
                    envelope_from=account.address, header_from="ceo@elsewhere.example",
                    to=account.address)  # fmt: skip
    assert (forged.stage, forged.code) == ("data", 550), forged

    after = scrape(stack)

    def delta(milter: str, result: str) -> float:
        return sample(after, DECISIONS, milter=milter, result=result) - sample(
            before, DECISIONS, milter=milter, result=result
        )

    assert delta("antispam", "rejected") == 1
    assert delta("sender", "accept") == 1
    assert delta("sender", "reject") == 1
    assert delta("antispam", "tempfail") == 0 and delta("sender", "tempfail") == 0
