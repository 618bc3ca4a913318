"""The zone-file snippet (pure): absolute A-label names, TXT data quoted and split."""

from __future__ import annotations

from pathlib import Path

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone

from postmeister.config import Settings
from postmeister.domain.dns.notes import note
from postmeister.domain.dns.rules import ExpectedRecord, expected_records
from postmeister.domain.dns.zone import txt_strings, zone_snippet


def test_txt_data_is_split_into_strings_of_255_bytes_and_escaped() -> None:
    assert txt_strings('a "quoted" \\ text') == '"a \\"quoted\\" \\\\ text"'
    long = "p=" + "A" * 300
    assert txt_strings(long) == f'"{long[:255]}" "{long[255:]}"'
    assert txt_strings("grüß") == '"gr\\195\\188\\195\\159"'


def test_the_snippet_is_a_valid_zone_with_the_expected_records() -> None:
    records = expected_records("xn--mller-kva.de", settings=Settings())
    records.append(
        ExpectedRecord(
            "dkim", "k._domainkey.xn--mller-kva.de", "TXT", "v=DKIM1; p=" + "B" * 400, note("about.dkim")
        )
    )
    snippet = zone_snippet(
        records, ascii_domain="xn--mller-kva.de", shown_domain="müller.de", ttl=900
    )
    assert snippet.startswith("; The DNS records of xn--mller-kva.de (müller.de)")
    zone = dns.zone.from_text(snippet, origin="xn--mller-kva.de.", check_origin=False)
    for record in records:
        node = zone.get_node(record.name + ".")
        assert node is not None, record.name
        rdataset = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.from_text(record.type))
        assert rdataset is not None and rdataset.ttl == 900
        (rdata,) = list(rdataset)
        if record.type == "TXT":
            assert b"".join(rdata.strings).decode() == record.value
        else:
            assert rdata == dns.rdata.from_text("IN", record.type, record.value)


def test_the_readme_shows_the_snippet_of_the_default_settings() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### DNS records", 1)[1].split("\n## ", 1)[0]
    records = expected_records("example.com", settings=Settings())
    snippet = zone_snippet(
        records, ascii_domain="example.com", shown_domain="example.com", ttl=3600
    )
    assert "```\n" + snippet + "```\n" in section
