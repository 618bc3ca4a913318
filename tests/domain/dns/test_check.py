"""The live check when no resolver answers: every record unknown, within one timeout."""

from __future__ import annotations

import time

from postmeister.config import DnsSettings, Settings
from postmeister.domain.dns.check import check_records
from postmeister.domain.dns.rules import expected_records


def test_a_silent_resolver_makes_every_record_unknown_within_about_one_timeout() -> None:
    records = expected_records("example.com", settings=Settings())
    silent = DnsSettings(resolvers=["127.0.0.1:9"], timeout_seconds=0.5)  # nothing answers
    started = time.monotonic()
    checks = check_records(records, silent)
    elapsed = time.monotonic() - started
    assert [check.record for check in checks] == records
    assert {check.verdict.state for check in checks} == {"unknown"}
    assert all("timed out after 0.5 s" in check.verdict.note for check in checks)
    # Side by side: about one timeout, not 11 one after another.
    assert elapsed < 0.5 * 4
