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

import ipaddress
import socket
import ssl
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

MAX_REDIRECTS: Final = 3
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_USER_AGENT: Final = "postmeister-sync"
# zlib window bits: 32 + 15 accepts gzip and zlib framing alike.
_GZIP_OR_ZLIB: Final = 32 + zlib.MAX_WBITS
_DECODE_STEP: Final = 64 * 1024

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# IPv6 ranges that carry an IPv4 address in their last 32 bits: NAT64's well-known prefix
# (RFC 6052), IPv4-translated addresses (SIIT, RFC 2765) and the deprecated IPv4-compatible
# form (RFC 4291; `::` and `::1` are in it too and are refused for what they are).
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_TRANSLATED: Final = ipaddress.IPv6Network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")
# Local-use NAT64 (RFC 8215): translated by the operator's own gateway, where the IPv4 part
# sits depends on the prefix length chosen there; never a public destination.
_NAT64_LOCAL: Final = ipaddress.IPv6Network("64:ff9b:1::/48")


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


class FetchFailed(Exception):
    """The document could not be fetched; `reason` says why, for an operator or customer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    context = _ssl_context(ca_bundle)
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
            raise FetchFailed(f"{_show(target)} did not answer within {timeout:g} seconds") from exc
        except httpx.TransportError as exc:
            raise FetchFailed(_transport_reason(exc, target, ca_bundle)) from exc
    raise FetchFailed(f"{_show(url)} redirected more than {MAX_REDIRECTS} times; giving up")


@contextmanager
def _get(
    target: httpx.URL,
    addresses: list[IpAddress],
    headers: dict[str, str],
    *,
    context: ssl.SSLContext,
    timeout: float,
) -> Iterator[httpx.Response]:
    """GET `target` from the first of `addresses` that accepts a connection.

    The request URL names the address, so the client never resolves the name again; the
    `Host` header and the `sni_hostname` extension carry the name, so the server sees the
    usual request and the certificate is verified against the name. A TLS failure is final
    (the next address would present the same certificate); a refused or unreachable address
    moves on to the next one.
    """
    hostname = target.raw_host.decode("ascii")
    pinned_headers = {**headers, "Host": target.netloc.decode("ascii")}
    failure: httpx.ConnectError | None = None
    # A fresh client per hop: its pool is keyed by address, and a connection verified for
    # one name must not serve a redirect to another name on the same address.
    with httpx.Client(
        verify=context,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
    ) as client:
        for address in addresses:
            request = client.build_request(
                "GET",
                target.copy_with(host=str(address)),
                headers=pinned_headers,
                extensions={"sni_hostname": hostname},
            )
            try:
                response = client.send(request, stream=True)
            except httpx.ConnectError as exc:
                if any(isinstance(cause, ssl.SSLError) for cause in _causes(exc)):
                    raise
                failure = exc
                continue
            try:
                yield response
            finally:
                response.close()
            return
    assert failure is not None, "a resolved host has at least one address"
    raise failure


def _resolve(url: httpx.URL, *, public_only: bool) -> list[IpAddress]:
    """The addresses of the URL's host, once; with `public_only`, refuse the host unless all
    of them are public (one private answer among public ones is still a way in)."""
    host = url.raw_host.decode("ascii")
    try:
        infos = socket.getaddrinfo(
            host, url.port or 443, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchFailed(f"the host name {url.host} cannot be resolved ({exc})") from exc
    addresses: list[IpAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchFailed(f"the host name {url.host} cannot be resolved (no addresses)")
    if public_only:
        for address in addresses:
            reason = address_refusal(address)
            if reason is not None:
                raise FetchFailed(
                    f"{url.host} resolves to the non-public address {address} ({reason}); sync "
                    "sources must be on the public internet (an operator may allow private "
                    "networks with POSTMEISTER_SYNC__ALLOW_PRIVATE_NETWORKS=true)"
                )
    return addresses


def address_refusal(address: IpAddress) -> str | None:
    """Why a customer's URL may not lead the controller to `address`; None for a public
    unicast address.

    IPv6 forms that reach an IPv4 address (IPv4-mapped and -translated, NAT64's well-known
    prefix, 6to4) are judged by the IPv4 address inside them, so `64:ff9b::7f00:1` is
    loopback. Forms whose destination cannot be judged here (Teredo, local-use NAT64,
    the deprecated IPv4-compatible form) are refused outright.
    """
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if isinstance(inner, str):
            return inner
        if inner is not None:
            reason = address_refusal(inner)
            return None if reason is None else f"it leads to {inner}, {reason}"
    if address.is_multicast:
        return "a multicast address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private-network address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "an address that is not globally routable"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | str | None:
    """The IPv4 address an IPv6 address leads to, a reason to refuse it outright, or None."""
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _IPV4_TRANSLATED or address in _NAT64:
        return low32
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return "a Teredo tunnel address"
    if address in _NAT64_LOCAL:
        return "a local-use NAT64 address"
    if address in _IPV4_COMPATIBLE:
        return "a deprecated IPv4-compatible IPv6 address"
    return None


def _https_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise FetchFailed(f"the sync URL is not a valid URL ({exc})") from exc
    if parsed.scheme != "https":
        raise FetchFailed(
            f"the sync URL must start with https:// (got {parsed.scheme or 'no'} scheme); "
            "documents hold password hashes and are fetched only over HTTPS"
        )
    if not parsed.host:
        raise FetchFailed("the sync URL has no host name")
    return parsed


def _ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    except (OSError, ssl.SSLError) as exc:
        raise FetchFailed(f"the CA bundle {ca_bundle} cannot be used: {exc}") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _redirect_target(response: httpx.Response, current: httpx.URL) -> httpx.URL:
    location = response.headers.get("Location")
    if not location:
        raise FetchFailed(
            f"{_show(current)} answered HTTP {response.status_code} without a Location to go to"
        )
    try:
        nxt = current.join(location)
    except httpx.InvalidURL as exc:
        raise FetchFailed(f"{_show(current)} redirected to an invalid URL ({exc})") from exc
    if nxt.scheme != "https":
        raise FetchFailed(
            f"{_show(current)} redirected to {_show(nxt)}, which is not HTTPS; "
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
    where = _show(url)
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
    where = _show(url)
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
        raise FetchFailed(f"fetching {_show(url)} took longer than {timeout:g} seconds")


def _too_large(where: str, max_bytes: int, detail: str) -> str:
    return f"the document at {where} is larger than the limit of {max_bytes} bytes ({detail})"


def _transport_reason(exc: httpx.TransportError, url: httpx.URL, ca_bundle: Path | None) -> str:
    host = url.host
    where = _show(url)
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            trusted_by = f"the CA bundle {ca_bundle}" if ca_bundle else "the system's CA store"
            detail = cause.verify_message or str(cause)
            return f"the TLS certificate of {host} is not trusted by {trusted_by} ({detail})"
        if isinstance(cause, ssl.SSLError):
            return f"the TLS handshake with {host} failed ({cause.reason or cause})"
        if isinstance(cause, socket.gaierror):
            return f"the host name {host} cannot be resolved ({cause.strerror})"
        if isinstance(cause, ConnectionRefusedError):
            return f"{host} refused the connection to port {url.port or 443}"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {where} ({exc})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{where} broke the HTTP protocol ({exc})"
    return f"fetching {where} failed ({exc or type(exc).__name__})"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it was raised from, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _show(url: httpx.URL | str) -> str:
    """The URL for messages: scheme, host, port and path; no credentials, no query."""
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"
