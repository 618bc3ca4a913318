"""Which differences between a published and an expected record count (pure)."""

from __future__ import annotations

import pytest

from postmeister.domain.dns.compare import Answer, judge
from postmeister.domain.dns.notes import note
from postmeister.domain.dns.rules import ExpectedRecord, Purpose, RecordType


def record(purpose: Purpose, type_: RecordType, value: str) -> ExpectedRecord:
    return ExpectedRecord(purpose, "example.com", type_, value, note("about.mx"))


SPF = record("spf", "TXT", "v=spf1 a:mail.example.org ~all")
DMARC = record("dmarc", "TXT", "v=DMARC1; p=quarantine; rua=mailto:d@r.example")
DKIM = record("dkim", "TXT", "v=DKIM1; k=rsa; p=ABCDEF")
MX = record("mx", "MX", "10 mail.example.org.")
SRV = record("srv", "SRV", "0 1 993 mail.example.org.")
OFF = record("srv", "SRV", "0 0 0 .")
STS = record("mta-sts", "TXT", "v=STSv1; id=7")
RPT = record("tls-rpt", "TXT", "v=TLSRPTv1; rua=mailto:t@r.example")
HOST = record("autoconfig", "CNAME", "mail.example.org.")


def state(expected: ExpectedRecord, *values: str) -> str:
    return judge(expected, Answer(values=values)).state


@pytest.mark.parametrize(
    ("expected", "published"),
    [
        (SPF, "v=spf1 a:mail.example.org ~all"),
        (SPF, "V=SPF1 include:_spf.other.example +A:MAIL.example.org -all"),
        (DMARC, "v=DMARC1;p=reject;rua=mailto:x@y.example,MAILTO:d@r.example!10m;pct=20"),
        (DKIM, "k=rsa; t=y; p=ABC DEF"),
        (MX, "20 MAIL.example.org."),
        (SRV, "10 50 993 mail.example.org."),
        (OFF, "0 0 0 ."),
        (STS, "v=STSv1;id=7"),
        (RPT, "v=TLSRPTv1; rua=mailto:t@r.example,https://r.example/tls"),
        (HOST, "Mail.Example.Org."),
    ],
)
def test_differences_that_do_not_count(expected: ExpectedRecord, published: str) -> None:
    assert state(expected, published) == "ok"


@pytest.mark.parametrize(
    ("expected", "published", "note"),
    [
        (SPF, "v=spf1 a:mail.example.org ?all", "?all is weaker than ~all"),
        (SPF, "v=spf1 a:other.example ~all", "lacks a:mail.example.org"),
        (SPF, "v=spf1 ~all a:mail.example.org", "lacks a:mail.example.org"),
        (SPF, "v=spf1 a:mail.example.org", "?all is weaker"),
        (DMARC, "v=DMARC1; p=none; rua=mailto:d@r.example", "p=none is weaker than p=quarantine"),
        (DMARC, "v=DMARC1; p=reject", "rua lacks mailto:d@r.example"),
        (DKIM, "v=DKIM1; k=rsa; p=OTHER", "another key"),
        (DKIM, "v=DKIM1; k=rsa; p=", "revoked"),
        (DKIM, "v=DKIM1; k=ed25519; p=ABCDEF", "k=ed25519"),
        (MX, "10 mx.elsewhere.example.", "not to mail.example.org."),
        (SRV, "0 1 9993 mail.example.org.", "port 993"),
        (SRV, "0 1 993 other.example.", "port 993 on mail.example.org."),
        (OFF, "0 1 110 mail.example.org.", "port 0 on ."),
        (STS, "v=STSv1; id=6", "id=6"),
        (RPT, "v=TLSRPTv1; rua=mailto:x@r.example", "rua lacks mailto:t@r.example"),
        (HOST, "other.example.", "CNAME to mail.example.org."),
    ],
)
def test_differences_that_count(expected: ExpectedRecord, published: str, note: str) -> None:
    verdict = judge(expected, Answer(values=(published,)))
    assert (verdict.state, verdict.found) == ("different", (published,))
    assert note in verdict.note


def test_a_second_mx_host_counts() -> None:
    verdict = judge(MX, Answer(values=("10 mail.example.org.", "20 backup.example.")))
    assert verdict.state == "different"
    assert "also go to backup.example." in verdict.note


def test_two_spf_or_dmarc_records_count_and_other_txt_records_do_not() -> None:
    assert state(SPF, SPF.value, "v=spf1 -all") == "different"
    assert state(DMARC, DMARC.value, DMARC.value) == "different"
    assert state(SPF, SPF.value, "google-site-verification=x", "v=spf10 x") == "ok"
    only_other = judge(SPF, Answer(values=("google-site-verification=x",)))
    assert (only_other.state, only_other.found) == ("missing", ())


def test_nothing_there_is_missing_and_no_answer_is_unknown() -> None:
    for expected in (SPF, DMARC, DKIM, MX, SRV, STS, RPT, HOST):
        assert judge(expected, Answer()).state == "missing"
        unknown = judge(expected, Answer(error="timed out after 5 s"))
        assert (unknown.state, unknown.note) == (
            "unknown",
            "no answer to judge: timed out after 5 s",
        )


def test_a_host_record_may_be_a_and_aaaa_with_the_targets_addresses() -> None:
    same = judge(
        HOST,
        Answer(
            addresses=("192.0.2.1", "2001:db8::1"), target_addresses=("2001:db8::1", "192.0.2.1")
        ),
    )
    assert same.state == "ok"
    other = judge(HOST, Answer(addresses=("192.0.2.9",), target_addresses=("192.0.2.1",)))
    assert (other.state, other.found) == ("different", ("192.0.2.9",))
    unresolvable = judge(HOST, Answer(addresses=("192.0.2.9",)))
    assert unresolvable.state == "different"
