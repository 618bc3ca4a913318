"""Why a record is needed and why its state is not ok, as codes with parameters.

The services speak English (`Note.english`, what the API returns); a page in another
language looks the code up in its own catalogue (`web.messages.DNS_NOTES_DE`) and fills in
the same parameters: host names, tags and counts, which need no translation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, NamedTuple

ENGLISH: Final[dict[str, str]] = {
    # why each record is needed (`rules.expected_records`)
    "about.mx": "where other servers deliver the domain's mail",
    "about.spf": "SPF: the hosts allowed to send its mail",
    "about.dkim": "DKIM: the key outgoing mail is signed with",
    "about.dmarc": "DMARC: what receivers do with mail failing SPF and DKIM, where reports go",
    "about.mta-sts": "MTA-STS: announces the policy (RFC 8461); the id changes with the policy",
    "about.mta-sts-host": "MTA-STS: the host serving /.well-known/mta-sts.txt",
    "about.tls-rpt": "TLS-RPT: where senders report TLS failures (RFC 8460)",
    "about.autoconfig": "{client} asks this host for the client settings (A/AAAA of it also do)",
    "about.srv": "RFC 6186: where clients connect",
    "about.srv-none": "RFC 6186: not offered",
    # why a published record is not (known to be) right (`compare.judge`)
    "no_answer": "no answer to judge: {error}",
    "no_record": "no {type} record at {name}",
    "mx_also": "mail would also go to {others}, not only {ours}",
    "mx_elsewhere": "mail goes to {others}, not to {ours}",
    "srv_port": "expected port {port} on {target}",
    "cname_target": "expected a CNAME to {target}",
    "cname_missing": "no CNAME (nor A/AAAA) record at {name}",
    "cname_addresses": "A/AAAA records with the addresses of {target}",
    "cname_or_addresses": "expected a CNAME to {target} (or A/AAAA with its addresses)",
    "txt_missing": "no {kind} record at {name}",
    "txt_missing_others": "no {kind} record at {name} (only other TXT records: {count})",
    "txt_several": "{count} {kind} records: receivers use none",
    "spf_lacks": "lacks {term} before its all term",
    "spf_weaker": "its policy {theirs}all is weaker than {ours}all",
    "rua_lacks": "rua lacks {uri}",
    "dmarc_no_policy": "its policy p={policy} is no DMARC policy",
    "dmarc_weaker": "its policy p={theirs} is weaker than p={ours}",
    "dkim_version": "v={version} is not DKIM1",
    "dkim_key_type": "key type k={theirs}, not {ours}",
    "dkim_revoked": "the key is empty (p=): revoked",
    "dkim_other_key": "another key (p=) than the one mail is signed with",
    "mta_sts_id": "id={theirs} is not the policy's id {ours}",
}


class Note(NamedTuple):
    """One sentence: a code of `ENGLISH` and the values its placeholders take."""

    code: str
    params: tuple[tuple[str, str], ...] = ()

    def text(self, catalogue: dict[str, str]) -> str:
        return catalogue[self.code].format(**dict(self.params))

    def english(self) -> str:
        return self.text(ENGLISH)


def note(code: str, **params: object) -> Note:
    return Note(code, tuple((name, str(value)) for name, value in params.items()))


def joined(notes: Iterable[Note], catalogue: dict[str, str] | None = None) -> str:
    """Several notes as one text, as a record's state shows them (in English unless another
    catalogue is given)."""
    return "; ".join(item.text(catalogue or ENGLISH) for item in notes)
