"""Section 4: scale. Loading 1,000,000 addresses on 10,000 domains, and paging through them.

Two ways in, each timed in a process of its own so that its peak memory is its own:
- bulk SQL: the rows inserted with executemany in batches (`bench.load`), then ANALYZE. This
  is the database's own floor, and the data the API sections run on;
- Basic JSON sync: the same addresses as one customer document applied by the controller's
  sync (`sync_document`, as `postmeister sync run --file` does), into a fresh database whose
  domains exist already. Parsing, validation, planning and the ORM writes are all in it.

Page latency: one client, one request at a time (wrk, one connection), against the hosting
dialect's `GET /email-addresses` of the customer who owns all the addresses: the first page,
and the last page of the bulk load (`page[after]` = the id 50 before its end).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from bench.common import Json, create_database, log, run_child
from bench.http_load import Operation, run_wrk
from bench.load import FORWARDS, MAILBOXES, Shape, create_tenant, domain_name
from bench.servers import Server
from bench.sync_import import HASH

JSONAPI = "application/vnd.api+json"
PAGE = 50


def page_latency(*, server: Server, token: str, last_id: int, seconds: int) -> list[Json]:
    pages = {
        "first page": "/email-addresses",
        f"deep page (after id {last_id - PAGE:,})": (
            f"/email-addresses?page%5Bafter%5D={last_id - PAGE}"
        ),
    }
    rows: list[Json] = []
    for label, path in pages.items():
        operation = Operation(
            "page", "GET", f'  return wrk.format("GET", "{path}")', accept=JSONAPI
        )
        figures = run_wrk(
            server.base_url, operation, token=token, variables={}, seconds=seconds, connections=1
        )
        rows.append({"page": label, "path": path, **figures})
        log(f"  {label:<34} p50 {figures['p50_ms']:.1f} ms  p99 {figures['p99_ms']:.1f} ms")
    return rows


def _document(shape: Shape) -> Iterator[bytes]:
    """The Basic JSON document of `shape`, written piece by piece (it is large)."""
    yield b"{"
    for d in range(shape.domains):
        name = domain_name(d)
        entry = {
            "account": [{"name": f"user{n:03d}", "password": HASH} for n in range(MAILBOXES)],
            "alias": [
                {"name": f"alias{n:03d}", "to": f"user{n:03d}@{name}"} for n in range(FORWARDS)
            ],
        }
        yield (b"," if d else b"") + json.dumps(name).encode() + b":" + json.dumps(entry).encode()
    yield b"}"


def sync_load(*, backend: str, shape: Shape, workdir: Path) -> Json:
    """Apply a document of `shape` to a fresh database; time and peak RSS of that process."""
    document = workdir / f"sync-{shape.addresses}.json"
    with document.open("wb") as out:
        for chunk in _document(shape):
            out.write(chunk)
    database = create_database(backend, workdir, "syncload")
    try:
        tenant = create_tenant(database.url)
        run_child(
            "bench.load",
            "--url",
            database.url,
            "--customer",
            str(tenant.customer_id),
            "--package",
            str(tenant.package_id),
            "--domains",
            str(shape.domains),
            "--domains-only",
        )
        measured, peak = run_child(
            "bench.sync_import",
            "--phase",
            "initial",
            "--url",
            database.url,
            "--doc",
            str(document),
            "--customer",
            str(tenant.customer_id),
        )
    finally:
        database.drop()
    size = document.stat().st_size
    document.unlink()
    return {
        "seconds": round(float(measured["seconds"]), 1),
        "peak_rss_mib": peak,
        "result": measured["result"],
        "document_mb": round(size / 1e6, 1),
    }
