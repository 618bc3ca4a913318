"""Requests to URLs that customers supply: the SSRF guard, shared by sync and webhooks.

One rule for every outbound request the controller makes on a customer's behalf (fetching
a sync document, delivering a webhook), so that it cannot drift between the two:

- HTTPS only (`https_url`), certificate and host name always verified (`ssl_context`:
  the system's CA store, or a given bundle alone).
- The host name is resolved once, here (`resolve`); with `public_only` every address must be
  a public unicast one (`address_refusal`), and the connection goes to exactly one of those
  addresses (`pinned_request`), while TLS still sends and verifies the name. A DNS answer
  that changes between the check and the connection (rebinding) leads nowhere else.
- Every failure is `OutboundFailed`, whose `reason` is a sentence an operator or a customer
  can act on.

An operator can allow private networks per concern (`SyncSettings`, `WebhookSettings`).
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import httpx

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


class OutboundFailed(Exception):
    """The request could not be made; `reason` says why, for an operator or customer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def https_url(url: str, *, name: str, why: str) -> httpx.URL:
    """`url` parsed, or `OutboundFailed` unless it is an `https://` URL with a host.
    `name` says what the URL is ("the sync URL"), `why` why only HTTPS will do."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise OutboundFailed(f"{name} is not a valid URL ({exc})") from exc
    if parsed.scheme != "https":
        raise OutboundFailed(
            f"{name} must start with https:// (got {parsed.scheme or 'no'} scheme); {why}"
        )
    if not parsed.host:
        raise OutboundFailed(f"{name} has no host name")
    return parsed


def resolve(url: httpx.URL, *, public_only: bool, what: str, setting: str) -> list[IpAddress]:
    """The addresses of the URL's host, once; with `public_only`, refuse the host unless all
    of them are public (one private answer among public ones is still a way in). `what`
    names the URLs in the refusal ("sync sources"), `setting` the switch that allows them."""
    host = url.raw_host.decode("ascii")
    try:
        infos = socket.getaddrinfo(
            host, url.port or 443, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundFailed(f"the host name {url.host} cannot be resolved ({exc})") from exc
    addresses: list[IpAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutboundFailed(f"the host name {url.host} cannot be resolved (no addresses)")
    if public_only:
        for address in addresses:
            reason = address_refusal(address)
            if reason is not None:
                raise OutboundFailed(
                    f"{url.host} resolves to the non-public address {address} ({reason}); "
                    f"{what} must be on the public internet (an operator may allow private "
                    f"networks with {setting}=true)"
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


def ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """Verification against the system's CA store, or against `ca_bundle` alone."""
    try:
        context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    except (OSError, ssl.SSLError) as exc:
        raise OutboundFailed(f"the CA bundle {ca_bundle} cannot be used: {exc}") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@contextmanager
def pinned_request(
    method: str,
    target: httpx.URL,
    addresses: list[IpAddress],
    headers: dict[str, str],
    *,
    context: ssl.SSLContext,
    timeout: float,
    content: bytes | None = None,
) -> Iterator[httpx.Response]:
    """Send the request to the first of `addresses` that accepts a connection; the response
    is streamed (read it inside the block).

    The request URL names the address, so the client never resolves the name again; the
    `Host` header and the `sni_hostname` extension carry the name, so the server sees the
    usual request and the certificate is verified against the name. A TLS failure is final
    (the next address would present the same certificate); a refused or unreachable address
    moves on to the next one. Proxy variables, `SSL_CERT_FILE` and `.netrc` are ignored.
    User information in the URL (`https://user:secret@host/`) is sent as HTTP Basic
    authentication and kept out of the request URL, which the HTTP client logs.
    """
    hostname = target.raw_host.decode("ascii")
    pinned_headers = {**headers, "Host": target.netloc.decode("ascii")}
    if target.userinfo:
        # Sent as a header, never as part of the URL: the client logs the URL it requests.
        credentials = f"{target.username}:{target.password}".encode()
        pinned_headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
    failure: httpx.ConnectError | None = None
    # A fresh client per request: its pool is keyed by address, and a connection verified
    # for one name must not serve another name on the same address.
    with httpx.Client(
        verify=context,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
    ) as client:
        for address in addresses:
            request = client.build_request(
                method,
                target.copy_with(host=str(address), userinfo=b""),
                headers=pinned_headers,
                content=content,
                extensions={"sni_hostname": hostname},
            )
            try:
                response = client.send(request, stream=True)
            except httpx.ConnectError as exc:
                if any(isinstance(cause, ssl.SSLError) for cause in causes(exc)):
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


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it was raised from, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def transport_reason(exc: httpx.TransportError, url: httpx.URL, ca_bundle: Path | None) -> str:
    """A sentence saying why the request failed (TLS trust, DNS, refused, protocol)."""
    host = url.host
    where = show(url)
    for cause in causes(exc):
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


def show(url: httpx.URL | str) -> str:
    """The URL for messages: scheme, host, port and path; no credentials, no query."""
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"
