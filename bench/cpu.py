"""CPU time per request: a steadier before/after figure than requests per second.

    .venv/bin/python -m bench.cpu [--backend sqlite|postgresql] [--seconds S] [--op NAME]…
        [--hold]

Requests per second on a shared two-core machine move with everything else that runs on
it; the CPU time the server process itself spends per request moves much less (it grows a
little with cache misses under load, it does not count time the server waits for a core).
This runs the operations of section 1 (bench.api) one at a time against `postmeister serve`
and the bare endpoint (one worker each) with ONE client connection, so nothing queues and
each request's cost is measured alone, and reports the server's CPU milliseconds per
request (user + system, all its threads, from /proc) next to requests per second.

`--hold` keeps both servers running after the figures and prints how to reach them (for
py-spy: `py-spy record --pid PID`); Ctrl-C stops them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench import api
from bench.common import (
    Json,
    create_database,
    ensure_postgres,
    log,
    process_cpu_seconds,
    run_child,
    shared_workdir,
)
from bench.http_load import run_wrk
from bench.load import Shape, bulk_hash, create_tenant
from bench.servers import api_servers
from postmeister.db import make_engine

DOMAINS = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--op", action="append", choices=[p.ours.name for p in api.PAIRS])
    parser.add_argument("--hold", action="store_true")
    args = parser.parse_args(argv)
    if args.backend == "postgresql":
        ensure_postgres()
    shape = Shape(DOMAINS)
    pairs = [p for p in api.PAIRS if not args.op or p.ours.name in args.op]
    with shared_workdir("pm-bench-cpu-") as workdir:
        database = create_database(args.backend, workdir, "cpu")
        try:
            tenant = create_tenant(database.url)
            run_child(
                "bench.load", "--url", database.url, "--customer", str(tenant.customer_id),
                "--package", str(tenant.package_id), "--domains", str(shape.domains),
                "--password-hash", bulk_hash(),
            )  # fmt: skip
            from sqlalchemy import func, select

            from postmeister.models import Address

            engine = make_engine(database.url)
            with engine.connect() as connection:
                low, high = connection.execute(
                    select(func.min(Address.id), func.max(Address.id))
                ).one()
            engine.dispose()
            values = api.variables(shape, (int(low), int(high)))
            with api_servers(database.url, tenant.customer_id, workdir / "data") as (ours, bare):
                rows: list[Json] = []
                for pair in pairs:
                    row: Json = {"operation": pair.ours.name}
                    for server, operation, token in (
                        (ours, pair.ours, tenant.token),
                        (bare, pair.bare, None),
                    ):
                        # A short warm-up: imports, statement caches, the first connections.
                        run_wrk(server.base_url, operation, token=token, variables=values,
                                seconds=1, connections=args.connections)  # fmt: skip
                        before = process_cpu_seconds(server.pid)
                        figures = run_wrk(server.base_url, operation, token=token,
                                          variables=values, seconds=args.seconds,
                                          connections=args.connections)  # fmt: skip
                        cpu = process_cpu_seconds(server.pid) - before
                        requests = figures["requests"] or 1
                        row[server.name] = {
                            "rps": figures["rps"],
                            "cpu_ms_per_request": round(cpu * 1000 / requests, 3),
                            "errors": figures["errors"],
                        }
                    row["cpu_ratio"] = round(
                        row["postmeister"]["cpu_ms_per_request"]
                        / max(row["bare"]["cpu_ms_per_request"], 1e-9),
                        2,
                    )
                    rows.append(row)
                    log(json.dumps(row))
                print(json.dumps({"backend": args.backend, "rows": rows}, indent=1))
                if args.hold:
                    info = {
                        "postmeister": {"url": ours.base_url, "pid": ours.pid},
                        "bare": {"url": bare.base_url, "pid": bare.pid},
                        "token": tenant.token,
                        "variables": values,
                        "cert": str(Path(ours.cert)),
                    }
                    print(json.dumps(info), flush=True)
                    try:
                        while True:
                            time.sleep(3600)
                    except KeyboardInterrupt:
                        pass
        finally:
            database.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
