"""Issue 11: the memory an admin's plain `GET /mail/account/` of N accounts costs the server.

For each N, one scratch database is bulk-loaded with N/100 domains of 70 mailboxes and 30
forwards each (`bench.load`, plain SQL), so N addresses of which 70 % are accounts. Then,
for each way of answering, a fresh server process (uvicorn serving the real ASGI app, on
loopback, behind a "TLS proxy" header) answers one admin request for the whole list, which
the parent reads as a stream and only counts:
- `streamed`: the code as it is (keyset chunks of 1,000, written out chunk by chunk);
- `materialised`: the same route with the list built in memory first (every address loaded,
  rendered to a list, one JSONResponse), i.e. what the route did before issue 11.
Reported per run: the server's resident memory after a warm-up request for one account
(`rss_before_mib`) and its peak while answering (`peak_rss_mib`, VmHWM), the bytes and the
seconds. Benchmarks are not tests: nothing here asserts a number.

    python -m bench.list_memory --backend sqlite --addresses 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, Json, create_database, log
from bench.load import PER_DOMAIN, create_tenant
from bench.servers import LOOPBACK, free_port

MODES = ("streamed", "materialised")


def _vm(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no {key} for {pid}")


def serve(url: str, port: int, mode: str) -> None:
    """The child: the real app, with the pre-issue-11 list if `mode` is `materialised`."""
    import uvicorn
    from fastapi.responses import JSONResponse

    from postmeister.api.app import create_app
    from postmeister.api.common import transaction
    from postmeister.api.controller import routes
    from postmeister.config import HttpSettings, Settings
    from postmeister.domain.addresses import service

    if mode == "materialised":

        def materialised(request: Any, actor: Any, *, kind: Any, domain: Any, render: Any) -> Any:
            with transaction(request) as session:
                found = service.list_addresses(session, actor, kind=kind, domain=domain)
                return JSONResponse([render(address) for address in found])

        setattr(routes, "address_list", materialised)  # noqa: B010 (replace the route helper)
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="pm-listmem-")),
        database_url=url,
        http=HttpSettings(behind_tls_proxy=True),
    )
    uvicorn.run(create_app(settings), host=LOOPBACK, port=port, log_level="warning")


def measure(url: str, token: str, mode: str) -> Json:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.list_memory", "--serve", mode, "--url", url,
         "--port", str(port)],
        cwd=ROOT,
    )  # fmt: skip
    base = f"http://{LOOPBACK}:{port}"
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-Proto": "https"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=3600) as client:
            for _ in range(200):
                try:
                    client.get("/mail/account/user000@d00000.bench.example/").raise_for_status()
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            before = _vm(process.pid, "VmRSS")
            started = time.perf_counter()
            received = 0
            with client.stream("GET", "/mail/account/") as response:
                response.raise_for_status()
                for piece in response.iter_bytes():
                    received += len(piece)
            seconds = time.perf_counter() - started
            peak = _vm(process.pid, "VmHWM")
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {
        "mode": mode,
        "rss_before_mib": before,
        "peak_rss_mib": peak,
        "bytes": received,
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--addresses", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.url, args.port, args.serve)
        return
    from postmeister.db import make_engine, make_session_factory, unit_of_work
    from postmeister.domain.tokens.service import create_token

    rows: list[Json] = []
    with tempfile.TemporaryDirectory(prefix="pm-listmem-") as workdir:
        for addresses in args.addresses:
            database = create_database(args.backend, Path(workdir), f"list{addresses}")
            try:
                tenant = create_tenant(database.url)
                log(f"loading {addresses:,} addresses ({args.backend})")
                subprocess.run(
                    [sys.executable, "-m", "bench.load", "--url", database.url,
                     "--customer", str(tenant.customer_id), "--package",
                     str(tenant.package_id), "--domains", str(addresses // PER_DOMAIN)],
                    cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                )  # fmt: skip
                engine = make_engine(database.url)
                with unit_of_work(make_session_factory(engine)) as session:
                    admin = create_token(session, admin=True, label="bench").secret
                engine.dispose()
                for mode in MODES:
                    row = {"backend": args.backend, "addresses": addresses, **measure(
                        database.url, admin, mode
                    )}  # fmt: skip
                    log(f"  {mode:<12} {row}")
                    rows.append(row)
            finally:
                database.drop()
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
