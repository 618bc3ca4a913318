"""Section 6: how the API scales with worker processes (`postmeister serve --workers`).

On the small database, for 1 worker and for one per core: `postmeister serve` and the bare
baseline with the same number of workers, each driven by wrk with the section-1 load, for
the read operations (get one, list a page). Writes are left out on purpose: on SQLite they
serialise on the one write lock however many processes there are. The latency percentiles
are reported next to the throughput because extra workers behind TLS have been seen to add
a fixed delay to every request (issue 16): a mean alone would hide it.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.api import PAIRS, Load, variables
from bench.common import Json, log
from bench.http_load import run_wrk
from bench.load import Shape, Tenant
from bench.servers import api_servers

READS = ("get", "list")
WARMUP_SECONDS = 2  # every worker has imported, connected and answered before we measure


def worker_counts() -> list[int]:
    return sorted({1, len(os.sched_getaffinity(0))})


def measure(
    *,
    database_url: str,
    tenant: Tenant,
    shape: Shape,
    id_range: tuple[int, int],
    load: Load,
    data_dir: Path,
) -> list[Json]:
    values = variables(shape, id_range)
    rows: list[Json] = []
    for workers in worker_counts():
        with api_servers(
            database_url, tenant.customer_id, data_dir / f"workers-{workers}", workers=workers
        ) as (ours, bare):
            for pair in (p for p in PAIRS if p.ours.name in READS):
                best: dict[str, Json] = {}
                for server, operation, token in (
                    (ours, pair.ours, tenant.token),
                    (bare, pair.bare, None),
                ):
                    run_wrk(server.base_url, operation, token=token, variables=values,
                            seconds=WARMUP_SECONDS, connections=load.connections)  # fmt: skip
                    for _ in range(load.rounds):
                        figures = run_wrk(server.base_url, operation, token=token,
                                          variables=values, seconds=load.seconds,
                                          connections=load.connections)  # fmt: skip
                        if server.name not in best or figures["rps"] > best[server.name]["rps"]:
                            best[server.name] = figures
                ours_rps, bare_rps = best["postmeister"]["rps"], best["bare"]["rps"]
                row = {
                    "workers": workers,
                    "operation": pair.ours.name,
                    "label": pair.label,
                    "postmeister": best["postmeister"],
                    "bare": best["bare"],
                    "share_of_bare": round(ours_rps / bare_rps, 2) if bare_rps else None,
                }
                rows.append(row)
                log(
                    f"  {workers} worker(s) {pair.ours.name:<5} postmeister {ours_rps:>7.1f}/s "
                    f"p50 {best['postmeister']['p50_ms']:.1f} p99 "
                    f"{best['postmeister']['p99_ms']:.1f} ms | bare {bare_rps:>7.1f}/s p50 "
                    f"{best['bare']['p50_ms']:.1f} p99 {best['bare']['p99_ms']:.1f} ms"
                )
    return rows
