"""Fetch a customer's Basic JSON document over HTTPS, safely and with one kind of failure.

The URL comes from a customer and the server at the other end is theirs, so every fetch is
bounded and verified:

- HTTPS only, certificate and host name always verified. Trust comes from the system's CA
  store, or, when `ca_bundle` is given, from that bundle alone (as `curl --cacert` does),
  so a private CA can be used without trusting it for anything else. Proxy variables,
  `SSL_CERT_FILE` and `.netrc` in the environment are ignored: what is verified must not
  depend on the environment the controller happens to run in.
- Redirects: at most `MAX_REDIRECTS` hops, each to an `https://` URL; a redirect to plain
  `http://` fails the fetch before anything is sent there. Following a few https hops lets
  customers move their document (e.g. to a CDN) without breaking the sync, and checking
  every hop ourselves (rather than letting the client follow them) is what makes the
  https-only rule hold for the whole chain.
- Conditional requests: the validators of the last good fetch are sent as `If-None-Match`
  and `If-Modified-Since`; `304 Not Modified` returns `FetchResult(not_modified=True)`.
- Size: `max_bytes` bounds both the bytes received and the decoded document. A declared
  `Content-Length` over the limit fails at once; the limit is enforced while streaming too,
  so a missing or lying `Content-Length` does not help. gzip is asked for (documents compress
  about tenfold) and decompressed here in bounded steps, so a small compressed body cannot
  expand into unbounded memory.
- Time: `timeout` bounds every connect and every read, and the whole fetch is abandoned once
  `timeout` seconds have passed. (A read already waiting when the overall time runs out may
  still take up to `timeout` itself, so the worst case is just under twice `timeout`.)

- Addresses: the host name is resolved once per hop, here, and the connection goes to one of
  exactly those addresses (in the order the resolver gave them), while TLS still sends the
  host name (SNI) and verifies the certificate against it. With `allow_private_networks=False`
  every resolved address must be a public unicast one (`address_refusal`), so a name whose
  DNS answer changes between the check and the connection (rebinding) cannot lead the
  controller anywhere else. Each hop gets a fresh connection: a pooled connection verified
  for one name is never reused for another name on the same address.

Every failure (DNS, connect, TLS, timeout, HTTP status, protocol, size, redirect) is raised
as `FetchFailed`, whose `reason` is a sentence an operator or a customer can act on. The
URL is shown without user name, password and query string, which may hold credentials.
"""

from __future__ import annotations

import ssl
import time
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from postmeister.outbound import (
    IpAddress,
    OutboundFailed,
    https_url,
    pinned_request,
    resolve,
    show,
    ssl_context,
    transport_reason,
)
from postmeister.outbound import (
    address_refusal as address_refusal,  # re-exported: the rule, for callers and tests
)

MAX_REDIRECTS: Final = 3
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_USER_AGENT: Final = "postmeister-sync"
# zlib window bits: 32 + 15 accepts gzip and zlib framing alike.
_GZIP_OR_ZLIB: Final = 32 + zlib.MAX_WBITS
_DECODE_STEP: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A successful fetch.

    `body` is the document (empty when `not_modified`). `etag` and `last_modified` are the
    validators to store and send next time: the new ones from the response, or, for a 304
    that does not repeat them, the ones that were sent. `url` is the final URL after
    redirects, for display.
    """

    not_modified: bool
    body: bytes
    etag: str | None
    last_modified: str | None
    url: str


# One kind of failure for every request to a customer's URL (`postmeister.outbound`).
FetchFailed = OutboundFailed

_PRIVATE_SETTING: Final = "POSTMEISTER_SYNC__ALLOW_PRIVATE_NETWORKS"


def fetch_document(
    url: str,
    *,
    etag: str | None,
    last_modified: str | None,
    ca_bundle: Path | None,
    timeout: float,
    max_bytes: int,
    allow_private_networks: bool = True,
) -> FetchResult:
    """GET `url` under the rules of this module; raise `FetchFailed` on any failure.

    With `allow_private_networks=False` (customer-supplied URLs), a host that resolves to a
    loopback, private, link-local or otherwise non-public address is refused before any
    connection, also on every redirect hop: a customer must not make the controller probe
    its own network. Either way the connection goes to an address resolved (and checked)
    here, never to a second answer from DNS.
    """
    target = _https_url(url)
    deadline = time.monotonic() + timeout
    headers = {
        "Accept": "application/json",
        "Accept-Encoding": "gzip",
        "User-Agent": _USER_AGENT,
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    context = ssl_context(ca_bundle)
    for _hop in range(MAX_REDIRECTS + 1):
        _check_deadline(deadline, timeout, target)
        addresses = _resolve(target, public_only=not allow_private_networks)
        try:
            with _get(target, addresses, headers, context=context, timeout=timeout) as response:
                if response.status_code in _REDIRECT_STATUSES:
                    target = _redirect_target(response, target)
                    continue
                return _result(
                    response,
                    target,
                    etag=etag,
                    last_modified=last_modified,
                    conditional=bool(etag or last_modified),
                    max_bytes=max_bytes,
                    deadline=deadline,
                    timeout=timeout,
                )
        except httpx.TimeoutException as exc:
            raise FetchFailed(f"{show(target)} did not answer within {timeout:g} seconds") from exc
        except httpx.TransportError as exc:
            raise FetchFailed(transport_reason(exc, target, ca_bundle)) from exc
    raise FetchFailed(f"{show(url)} redirected more than {MAX_REDIRECTS} times; giving up")


def _get(
    target: httpx.URL,
    addresses: list[IpAddress],
    headers: dict[str, str],
    *,
    context: ssl.SSLContext,
    timeout: float,
) -> AbstractContextManager[httpx.Response]:
    return pinned_request("GET", target, addresses, headers, context=context, timeout=timeout)


def _resolve(url: httpx.URL, *, public_only: bool) -> list[IpAddress]:
    return resolve(url, public_only=public_only, what="sync sources", setting=_PRIVATE_SETTING)


def _https_url(url: str) -> httpx.URL:
    return https_url(
        url,
        name="the sync URL",
        why="documents hold password hashes and are fetched only over HTTPS",
    )


def _redirect_target(response: httpx.Response, current: httpx.URL) -> httpx.URL:
    location = response.headers.get("Location")
    if not location:
        raise FetchFailed(
            f"{show(current)} answered HTTP {response.status_code} without a Location to go to"
        )
    try:
        nxt = current.join(location)
    except httpx.InvalidURL as exc:
        raise FetchFailed(f"{show(current)} redirected to an invalid URL ({exc})") from exc
    if nxt.scheme != "https":
        raise FetchFailed(
            f"{show(current)} redirected to {show(nxt)}, which is not HTTPS; "
            "redirects to plain http:// are refused"
        )
    return nxt


def _result(
    response: httpx.Response,
    url: httpx.URL,
    *,
    etag: str | None,
    last_modified: str | None,
    conditional: bool,
    max_bytes: int,
    deadline: float,
    timeout: float,
) -> FetchResult:
    where = show(url)
    status = response.status_code
    if status == 304 and conditional:
        return FetchResult(
            not_modified=True,
            body=b"",
            etag=response.headers.get("ETag", etag),
            last_modified=response.headers.get("Last-Modified", last_modified),
            url=str(url),
        )
    if status >= 400:
        raise FetchFailed(f"{where} answered HTTP {status} {response.reason_phrase}".rstrip())
    if status != 200:
        raise FetchFailed(
            f"{where} answered HTTP {status} {response.reason_phrase}; expected 200 OK".rstrip()
        )
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise FetchFailed(_too_large(where, max_bytes, f"it declares {int(declared)} bytes"))
    body = _read_body(response, url, max_bytes=max_bytes, deadline=deadline, timeout=timeout)
    return FetchResult(
        not_modified=False,
        body=body,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
        url=str(url),
    )


def _read_body(
    response: httpx.Response, url: httpx.URL, *, max_bytes: int, deadline: float, timeout: float
) -> bytes:
    where = show(url)
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
        raise FetchFailed(f"{where} sent the document in an unsupported encoding ({encoding})")
    decompressor = None if encoding == "identity" else zlib.decompressobj(_GZIP_OR_ZLIB)
    received = 0
    parts: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_raw():
            received += len(chunk)
            if received > max_bytes:
                raise FetchFailed(_too_large(where, max_bytes, "more was sent"))
            for piece in _decoded(decompressor, chunk):
                size += len(piece)
                if size > max_bytes:
                    raise FetchFailed(_too_large(where, max_bytes, "it decompresses to more"))
                parts.append(piece)
            _check_deadline(deadline, timeout, url)
        if decompressor is not None:
            tail = decompressor.flush()
            size += len(tail)
            if size > max_bytes:
                raise FetchFailed(_too_large(where, max_bytes, "it decompresses to more"))
            if not decompressor.eof:
                raise FetchFailed(f"{where} sent a compressed document that ends early")
            parts.append(tail)
    except zlib.error as exc:
        raise FetchFailed(f"{where} sent a compressed document that is corrupt ({exc})") from exc
    return b"".join(parts)


def _decoded(decompressor: zlib._Decompress | None, chunk: bytes) -> Iterator[bytes]:
    """The decoded bytes of one received chunk, in pieces of bounded size."""
    if decompressor is None:
        yield chunk
        return
    data = chunk
    while data:
        piece = decompressor.decompress(data, _DECODE_STEP)
        yield piece
        data = decompressor.unconsumed_tail
        if decompressor.eof:
            return


def _check_deadline(deadline: float, timeout: float, url: httpx.URL) -> None:
    if time.monotonic() > deadline:
        raise FetchFailed(f"fetching {show(url)} took longer than {timeout:g} seconds")


def _too_large(where: str, max_bytes: int, detail: str) -> str:
    return f"the document at {where} is larger than the limit of {max_bytes} bytes ({detail})"
