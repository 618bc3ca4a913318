"""Fetching the Basic JSON document from a real HTTPS server on loopback with its own test CA."""

from __future__ import annotations

import gzip
import ipaddress
import socket
import threading
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from postmeister.sync.fetch import (
    MAX_REDIRECTS,
    FetchFailed,
    FetchResult,
    address_refusal,
    fetch_document,
)
from tests.support.docserver import DOCUMENT, DocumentServer, Reply
from tests.support.processes import free_port
from tests.support.tls import TestPki, make_test_pki

ETAG = '"v1-5f3a"'
LAST_MODIFIED = "Tue, 01 Jul 2025 10:00:00 GMT"
LIMIT = 64 * 1024


def fetch(
    url: str,
    pki: TestPki,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    ca_bundle: Path | bool | None = True,
    timeout: float = 5.0,
    max_bytes: int = LIMIT,
) -> FetchResult:
    bundle = pki.ca_cert if ca_bundle is True else (ca_bundle or None)
    return fetch_document(
        url,
        etag=etag,
        last_modified=last_modified,
        ca_bundle=bundle,
        timeout=timeout,
        max_bytes=max_bytes,
    )


def fails(url: str, pki: TestPki, **options: object) -> str:
    with pytest.raises(FetchFailed) as caught:
        fetch(url, pki, **options)  # type: ignore[arg-type]
    assert caught.value.reason == str(caught.value)
    return caught.value.reason


def conditional(headers: Message) -> Reply:
    """A document server that honours If-None-Match / If-Modified-Since like a web server."""
    if headers.get("If-None-Match") == ETAG or headers.get("If-Modified-Since") == LAST_MODIFIED:
        return Reply(status=304, body=b"", headers={"ETag": ETAG})
    return Reply(headers={"ETag": ETAG, "Last-Modified": LAST_MODIFIED})


def test_document_and_its_validators_are_returned(server: DocumentServer, pki: TestPki) -> None:
    server.routes["/sync.json"] = conditional
    result = fetch(server.url("/sync.json"), pki)
    assert result == FetchResult(
        not_modified=False,
        body=DOCUMENT,
        etag=ETAG,
        last_modified=LAST_MODIFIED,
        url=server.url("/sync.json"),
    )
    (_path, headers) = server.requests[0]
    assert headers.get("If-None-Match") is None


def test_unchanged_document_answers_304_and_is_not_downloaded(
    server: DocumentServer, pki: TestPki
) -> None:
    server.routes["/sync.json"] = conditional
    result = fetch(server.url("/sync.json"), pki, etag=ETAG, last_modified=LAST_MODIFIED)
    assert result.not_modified
    assert result.body == b""
    assert (result.etag, result.last_modified) == (ETAG, LAST_MODIFIED)
    (_path, headers) = server.requests[0]
    assert headers.get("If-None-Match") == ETAG
    assert headers.get("If-Modified-Since") == LAST_MODIFIED


def test_changed_document_is_downloaded_despite_an_old_etag(
    server: DocumentServer, pki: TestPki
) -> None:
    server.routes["/sync.json"] = conditional
    result = fetch(server.url("/sync.json"), pki, etag='"v0-old"')
    assert not result.not_modified
    assert result.body == DOCUMENT
    assert result.etag == ETAG


def test_gzip_encoded_document_arrives_decoded(server: DocumentServer, pki: TestPki) -> None:
    server.routes["/sync.json"] = lambda _: Reply(
        body=gzip.compress(DOCUMENT), headers={"Content-Encoding": "gzip"}
    )
    assert fetch(server.url("/sync.json"), pki).body == DOCUMENT


def test_http_error_status_fails_with_the_status(server: DocumentServer, pki: TestPki) -> None:
    server.routes["/sync.json"] = lambda _: Reply(status=500, body=b"oops\n")
    reason = fails(server.url("/sync.json"), pki)
    assert reason == f"{server.url('/sync.json')} answered HTTP 500 Internal Server Error"


def test_missing_document_fails_with_404(server: DocumentServer, pki: TestPki) -> None:
    assert "answered HTTP 404 Not Found" in fails(server.url("/nothing-here.json"), pki)


def test_oversized_document_with_content_length_fails_before_download(
    server: DocumentServer, pki: TestPki
) -> None:
    server.routes["/big.json"] = lambda _: Reply(body=b" " * (LIMIT + 1) + DOCUMENT)
    reason = fails(server.url("/big.json"), pki)
    assert f"larger than the limit of {LIMIT} bytes" in reason
    assert f"declares {LIMIT + 1 + len(DOCUMENT)} bytes" in reason


def test_oversized_document_without_content_length_fails_while_streaming(
    server: DocumentServer, pki: TestPki
) -> None:
    server.routes["/big.json"] = lambda _: Reply(body=b" " * (4 * LIMIT), content_length=False)
    reason = fails(server.url("/big.json"), pki)
    assert f"larger than the limit of {LIMIT} bytes (more was sent)" in reason


def test_small_compressed_body_that_expands_past_the_limit_fails(
    server: DocumentServer, pki: TestPki
) -> None:
    bomb = gzip.compress(b" " * (100 * LIMIT))
    assert len(bomb) < LIMIT  # Content-Length alone would let it through
    server.routes["/bomb.json"] = lambda _: Reply(body=bomb, headers={"Content-Encoding": "gzip"})
    reason = fails(server.url("/bomb.json"), pki)
    assert f"larger than the limit of {LIMIT} bytes (it decompresses to more)" in reason


def test_document_exactly_at_the_limit_is_accepted(server: DocumentServer, pki: TestPki) -> None:
    body = DOCUMENT + b" " * (LIMIT - len(DOCUMENT))
    server.routes["/edge.json"] = lambda _: Reply(body=body, content_length=False)
    assert fetch(server.url("/edge.json"), pki).body == body


def test_certificate_from_an_unknown_ca_is_rejected(
    server: DocumentServer, pki: TestPki, tmp_path: Path
) -> None:
    server.routes["/sync.json"] = conditional
    other = make_test_pki(tmp_path / "other")
    reason = fails(server.url("/sync.json"), pki, ca_bundle=other.ca_cert)
    assert reason.startswith("the TLS certificate of 127.0.0.1 is not trusted by the CA bundle")
    assert "unable to get local issuer certificate" in reason
    # Without a bundle the system's CA store is used, which does not know the test CA either.
    reason = fails(server.url("/sync.json"), pki, ca_bundle=False)
    assert "not trusted by the system's CA store" in reason
    assert server.requests == []  # no request was ever sent over the unverified connection


def test_certificate_for_another_host_name_is_rejected(tmp_path: Path) -> None:
    wrong = make_test_pki(tmp_path / "wrong", hosts=("mail.example.org",))
    srv = DocumentServer(wrong.server_context())
    srv.routes["/sync.json"] = conditional
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        reason = fails(srv.url("/sync.json"), wrong)
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)
    assert reason.startswith("the TLS certificate of 127.0.0.1 is not trusted")
    assert "certificate is not valid for '127.0.0.1'" in reason


def test_redirect_to_plain_http_is_refused_before_anything_is_sent_there(
    server: DocumentServer, pki: TestPki
) -> None:
    port = free_port()
    server.routes["/sync.json"] = lambda _: Reply(
        status=302, body=b"", headers={"Location": f"http://127.0.0.1:{port}/sync.json"}
    )
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        listener.settimeout(0.2)
        reason = fails(server.url("/sync.json"), pki)
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected to the plain-HTTP address
    assert f"redirected to http://127.0.0.1:{port}/sync.json, which is not HTTPS" in reason


def test_https_redirects_are_followed_a_few_times(server: DocumentServer, pki: TestPki) -> None:
    server.routes["/old.json"] = lambda _: Reply(
        status=301, body=b"", headers={"Location": "/moved.json"}
    )
    server.routes["/moved.json"] = lambda _: Reply(
        status=307, body=b"", headers={"Location": server.url("/sync.json")}
    )
    server.routes["/sync.json"] = conditional
    result = fetch(server.url("/old.json"), pki)
    assert result.body == DOCUMENT
    assert result.url == server.url("/sync.json")


def test_endless_redirects_give_up(server: DocumentServer, pki: TestPki) -> None:
    server.routes["/loop.json"] = lambda _: Reply(
        status=302, body=b"", headers={"Location": "/loop.json"}
    )
    reason = fails(server.url("/loop.json"), pki)
    assert f"redirected more than {MAX_REDIRECTS} times" in reason
    assert len(server.requests) == MAX_REDIRECTS + 1


def test_server_that_does_not_answer_times_out(server: DocumentServer, pki: TestPki) -> None:
    server.routes["/slow.json"] = lambda _: Reply(delay=5.0)
    reason = fails(server.url("/slow.json"), pki, timeout=0.5)
    assert reason == f"{server.url('/slow.json')} did not answer within 0.5 seconds"


def test_server_that_drips_the_body_slowly_hits_the_overall_timeout(
    server: DocumentServer, pki: TestPki
) -> None:
    # Each piece arrives well within the read timeout; the whole takes far longer.
    server.routes["/drip.json"] = lambda _: Reply(body=b" " * 20 * 1024, drip=0.1)
    reason = fails(server.url("/drip.json"), pki, timeout=0.5)
    assert "took longer than 0.5 seconds" in reason


def test_nothing_listening_fails_with_connection_refused(pki: TestPki) -> None:
    port = free_port()
    reason = fails(f"https://127.0.0.1:{port}/sync.json", pki)
    assert reason == f"127.0.0.1 refused the connection to port {port}"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1/sync.json", "must start with https://"),
        ("ftp://example.com/sync.json", "must start with https://"),
        ("example.com/sync.json", "must start with https://"),
        ("https:///sync.json", "no host name"),
    ],
)
def test_anything_but_an_https_url_is_refused_up_front(url: str, message: str) -> None:
    with pytest.raises(FetchFailed, match=message):
        fetch_document(
            url, etag=None, last_modified=None, ca_bundle=None, timeout=1.0, max_bytes=LIMIT
        )


def test_credentials_in_the_url_stay_out_of_the_reason(
    server: DocumentServer, pki: TestPki
) -> None:
    server.routes["/sync.json"] = lambda _: Reply(status=403, body=b"")
    port = server.server_address[1]
    reason = fails(f"https://user:s3cret@127.0.0.1:{port}/sync.json?token=t0ken", pki)
    assert "s3cret" not in reason
    assert "t0ken" not in reason
    assert "answered HTTP 403 Forbidden" in reason


def test_unreadable_ca_bundle_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FetchFailed, match=r"CA bundle .* cannot be used"):
        fetch_document(
            "https://127.0.0.1/sync.json",
            etag=None,
            last_modified=None,
            ca_bundle=tmp_path / "missing.pem",
            timeout=1.0,
            max_bytes=LIMIT,
        )


# --- addresses: resolved once, checked, and connected to (finding 8 of issue 10) -------------

NAME = "docs.test"


class FakeDns:
    """Answers for NAME from a script (the last answer repeats); every other host, including
    the IP literals the client connects to, goes to the real resolver. Counts the lookups."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups = 0
        real = socket.getaddrinfo

        def getaddrinfo(host: object, port: object, *args: object, **kwargs: object) -> object:
            if host != NAME:
                return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
            answer = self.answers[min(self.lookups, len(self.answers) - 1)]
            self.lookups += 1
            return [
                (
                    socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    socket.SOCK_STREAM,
                    socket.IPPROTO_TCP,
                    "",
                    (ip, port, 0, 0) if ":" in ip else (ip, port),
                )
                for ip in answer
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def named_server(tmp_path: Path) -> Iterator[tuple[DocumentServer, TestPki]]:
    """A document server on 127.0.0.1 whose certificate names only NAME."""
    named = make_test_pki(tmp_path / "named", hosts=(NAME,))
    srv = DocumentServer(named.server_context())
    srv.routes["/sync.json"] = conditional
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv, named
    finally:
        srv.stopping.set()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)


def named_url(srv: DocumentServer) -> str:
    return f"https://{NAME}:{srv.server_address[1]}/sync.json"


def test_the_connection_goes_to_the_resolved_address_not_to_a_later_answer(
    named_server: tuple[DocumentServer, TestPki], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, named = named_server
    port = srv.server_address[1]
    # The name's answer changes right after the first lookup; a decoy listens there.
    dns = FakeDns(monkeypatch, ["127.0.0.1"], ["127.0.0.3"])
    with socket.socket() as decoy:
        decoy.bind(("127.0.0.3", port))
        decoy.listen()
        decoy.settimeout(0.2)
        result = fetch(named_url(srv), named)
        with pytest.raises(TimeoutError):
            decoy.accept()  # nobody came to the later answer
    assert result.body == DOCUMENT
    assert result.url == named_url(srv)  # shown with the name, not the address
    assert dns.lookups == 1
    (_path, headers) = srv.requests[0]
    assert headers.get("Host") == f"{NAME}:{port}"


def test_a_pinned_address_still_verifies_the_certificate_against_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: DocumentServer, pki: TestPki
) -> None:
    # `server` presents a certificate for 127.0.0.1 and localhost, not for NAME.
    FakeDns(monkeypatch, ["127.0.0.1"])
    reason = fails(f"https://{NAME}:{server.server_address[1]}/sync.json", pki)
    assert reason.startswith(f"the TLS certificate of {NAME} is not trusted")
    assert f"certificate is not valid for '{NAME}'" in reason
    assert server.requests == []


def test_a_rebinding_name_cannot_reach_a_refused_address(
    named_server: tuple[DocumentServer, TestPki], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, named = named_server
    port = srv.server_address[1]
    # Public at the check, loopback (where the server is) at any later lookup.
    dns = FakeDns(monkeypatch, ["93.184.215.14"], ["127.0.0.1"])
    connected: list[tuple[str, int]] = []
    real_connect = socket.create_connection

    def create_connection(address: tuple[str, int], *args: object, **kwargs: object) -> object:
        connected.append(address)
        if address[0] == "93.184.215.14":  # no test reaches out to the internet
            raise ConnectionRefusedError(111, "Connection refused")
        return real_connect(address, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "create_connection", create_connection)
    with pytest.raises(FetchFailed) as caught:
        fetch_document(
            named_url(srv),
            etag=None,
            last_modified=None,
            ca_bundle=named.ca_cert,
            timeout=2.0,
            max_bytes=LIMIT,
            allow_private_networks=False,
        )
    assert caught.value.reason == f"{NAME} refused the connection to port {port}"
    assert connected == [("93.184.215.14", port)]
    assert dns.lookups == 1
    assert srv.requests == []


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (["127.0.0.1"], "a loopback address"),
        (["93.184.215.14", "10.0.0.7"], "a private-network address"),  # one bad answer is enough
        (["64:ff9b::7f00:1"], "it leads to 127.0.0.1, a loopback address"),
        (["::ffff:127.0.0.1"], "it leads to 127.0.0.1, a loopback address"),
        (["2002:a00:1::1"], "it leads to 10.0.0.1, a private-network address"),
        (["::127.0.0.1"], "a deprecated IPv4-compatible IPv6 address"),
    ],
)
def test_names_resolving_to_a_refused_address_are_refused_before_connecting(
    named_server: tuple[DocumentServer, TestPki],
    monkeypatch: pytest.MonkeyPatch,
    answer: list[str],
    reason: str,
) -> None:
    srv, named = named_server
    FakeDns(monkeypatch, answer)
    with pytest.raises(FetchFailed) as caught:
        fetch_document(
            named_url(srv),
            etag=None,
            last_modified=None,
            ca_bundle=named.ca_cert,
            timeout=2.0,
            max_bytes=LIMIT,
            allow_private_networks=False,
        )
    refused = ipaddress.ip_address(answer[-1])
    assert caught.value.reason.startswith(
        f"{NAME} resolves to the non-public address {refused} ({reason}); sync sources must"
    )
    assert srv.requests == []


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
        ("64:ff9b::5db8:d70e", None),  # NAT64 of a public IPv4 address
        ("2002:5db8:d70e::1", None),  # 6to4 of a public IPv4 address
        ("0.0.0.0", "the unspecified address"),  # noqa: S104
        ("::", "the unspecified address"),
        ("127.0.0.2", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private-network address"),
        ("172.16.0.1", "a private-network address"),
        ("192.168.1.1", "a private-network address"),
        ("100.64.0.1", "an address that is not globally routable"),  # carrier-grade NAT
        ("169.254.169.254", "a link-local address"),  # cloud metadata
        ("fe80::1", "a link-local address"),
        ("fd00::1", "a private-network address"),
        ("224.0.1.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("ff0e::1", "a multicast address"),
        ("240.0.0.1", "a private-network address"),
        ("255.255.255.255", "a private-network address"),
        ("64:ff9b::a00:1", "it leads to 10.0.0.1, a private-network address"),
        ("64:ff9b::a9fe:a9fe", "it leads to 169.254.169.254, a link-local address"),
        ("64:ff9b:1::a00:1", "a local-use NAT64 address"),
        ("::ffff:10.0.0.1", "it leads to 10.0.0.1, a private-network address"),
        ("::ffff:0:7f00:1", "it leads to 127.0.0.1, a loopback address"),
        ("::10.0.0.1", "a deprecated IPv4-compatible IPv6 address"),
        ("::8.8.8.8", "a deprecated IPv4-compatible IPv6 address"),
        ("2002:7f00:1::", "it leads to 127.0.0.1, a loopback address"),
        ("2002:e000:0101::", "it leads to 224.0.1.1, a multicast address"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo tunnel address"),
        ("2001:db8::1", "a private-network address"),  # documentation
    ],
)
def test_address_policy(address: str, reason: str | None) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == reason
