"""Fixtures for sync tests: a test CA and a real HTTPS document server on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.support.docserver import DocumentServer
from tests.support.tls import TestPki, make_test_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(pki: TestPki) -> Iterator[DocumentServer]:
    srv = DocumentServer(pki.server_context())
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.stopping.set()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)
