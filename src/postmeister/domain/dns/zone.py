"""The expected records as a zone-file snippet (RFC 1035 master file format). Pure.

Names are absolute A-labels (an IDN domain as `xn--...`), so the snippet pastes into any
zone file whatever its `$ORIGIN`. TXT data is quoted and split into strings of at most 255
bytes (RFC 1035 §3.3.14: a DKIM key is longer than one string); a resolver joins them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from postmeister.domain.dns.rules import ExpectedRecord

_STRING_BYTES: Final = 255


def txt_strings(text: str) -> str:
    """`text` as quoted character strings, escaped (`"`, `\\`, and every byte outside
    printable ASCII as `\\DDD`)."""
    data = text.encode("utf-8")
    chunks = [data[i : i + _STRING_BYTES] for i in range(0, len(data), _STRING_BYTES)] or [b""]
    return " ".join(f'"{_escaped(chunk)}"' for chunk in chunks)


def _escaped(chunk: bytes) -> str:
    out = []
    for byte in chunk:
        if byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return "".join(out)


def zone_line(record: ExpectedRecord, *, ttl: int) -> str:
    data = txt_strings(record.value) if record.type == "TXT" else record.value
    return f"{record.name}. {ttl} IN {record.type} {data}"


def zone_snippet(
    records: Sequence[ExpectedRecord], *, ascii_domain: str, shown_domain: str, ttl: int
) -> str:
    """The snippet: a comment naming the domain, then one line per record."""
    title = ascii_domain if shown_domain == ascii_domain else f"{ascii_domain} ({shown_domain})"
    lines = [f"; The DNS records of {title}, as Postmeister expects them."]
    lines.extend(zone_line(record, ttl=ttl) for record in records)
    return "\n".join(lines) + "\n"
