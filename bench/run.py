"""Postmeister benchmarks: every figure of issue 7 on SQLite and PostgreSQL, in one run.

    .venv/bin/python -m bench.run [--quick] [--backend sqlite|postgresql]… [--section NAME]…

Prints one table (Markdown) on stdout, progress on stderr, and writes bench/results/latest.json
(a quick run: quick.json) with every figure and the machine it ran on. Needs root (the data
plane), wrk, Postfix and Dovecot (bench/setup installs them) and PostgreSQL
(POSTMEISTER_TEST_PG_URL, else 127.0.0.1:5432, else scripts/ensure-postgres starts one). The
full run takes about 20 minutes on two cores, `--quick` under two. Benchmarks are not tests:
nothing is asserted, everything is reported. BENCH_KEEP_WORKDIR=1 keeps the scratch folder
(server and data-plane logs).

Per backend:
1. api          a database of 1,000 addresses, then one of 1,000,000 (bulk SQL): each with
                `postmeister serve` and the bare FastAPI baseline (bench.bare) side by side.
2. propagation  on the large database with a private Postfix + Dovecot: write → visible.
3. logins       on the same: IMAP logins/s per password scheme.
4. scale        bulk load and Basic JSON sync load of the large shape (time, peak memory),
                first and deep page of the hosting dialect for the customer owning them all.
5. sync         the Basic JSON sync benchmark (bench.sync_import), both backends.
6. workers      reads with 1 worker process and with one per core, both sides (bench.workers).
Then `profile`: py-spy on the server for the slowest API figure and for the largest overhead
(section 1 at the large size), and the SQL statements each request sends, on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import func, select

from bench import api, logins, propagation, scale, sync_import, workers
from bench.common import (
    BACKENDS,
    RESULTS,
    Database,
    Json,
    Stopwatch,
    create_database,
    ensure_postgres,
    load_average,
    log,
    machine_info,
    run_child,
    shared_workdir,
)
from bench.load import Shape, Tenant, bulk_hash, create_tenant
from bench.profile import profile
from bench.queries import statements_per_request
from bench.servers import Server, api_servers, dataplane
from postmeister.db import make_engine
from postmeister.models import Address

SECTIONS = ("api", "propagation", "logins", "scale", "sync", "profile", "workers")


@dataclass(frozen=True)
class Plan:
    """How much of everything: the full run, or the quick one."""

    small_domains: int
    large_domains: int
    api: api.Load
    page_seconds: int
    changes: int
    login_seconds: float
    sync_import_scale: float
    profile_seconds: int
    profile_overhead: bool  # also profile the operation with the largest overhead ratio
    profile_views: tuple[str, ...]  # bench.profile.VIEWS


FULL = Plan(
    small_domains=10,
    large_domains=10_000,
    api=api.Load(seconds=5, warmup_seconds=1, rounds=2, connections=8),
    page_seconds=3,
    changes=200,
    login_seconds=6,
    sync_import_scale=1.0,
    profile_seconds=8,
    profile_overhead=True,
    profile_views=("work", "under_load"),
)
QUICK = Plan(
    small_domains=10,
    large_domains=100,
    api=api.Load(seconds=1, warmup_seconds=0, rounds=1, connections=8),
    page_seconds=1,
    changes=5,
    login_seconds=0.5,
    sync_import_scale=0.02,
    profile_seconds=1,
    profile_overhead=False,
    profile_views=("work",),
)


def _loaded_database(
    backend: str, workdir: Path, shape: Shape, label: str
) -> tuple[Database, Tenant, tuple[int, int], Json]:
    database = create_database(backend, workdir, label)
    try:
        tenant = create_tenant(database.url)
        log(f"[{backend}] bulk-loading {shape.addresses:,} addresses on {shape.domains:,} domains")
        measured, peak = run_child(
            "bench.load",
            "--url",
            database.url,
            "--customer",
            str(tenant.customer_id),
            "--package",
            str(tenant.package_id),
            "--domains",
            str(shape.domains),
            "--password-hash",
            bulk_hash(),
        )
        engine = make_engine(database.url)
        with engine.connect() as connection:
            low, high = connection.execute(select(func.min(Address.id), func.max(Address.id))).one()
        engine.dispose()
    except BaseException:
        database.drop()
        raise
    figures = {"seconds": round(float(measured["seconds"]), 1), "peak_rss_mib": peak}
    return database, tenant, (int(low), int(high)), figures


def _profile_targets(rows: list[Json], *, overhead: bool) -> dict[str, Json]:
    """The slowest operation (fewest requests/s) and the one with the largest overhead."""
    slowest = min(rows, key=lambda r: r["postmeister"]["rps"])
    costliest = max(rows, key=lambda r: r["overhead_ratio"] or 0)
    targets = {"slowest": slowest}
    if overhead and costliest is not slowest:
        targets["largest overhead"] = costliest
    return targets


def _profiles(
    ours: Server,
    tenant: Tenant,
    rows: list[Json],
    shape: Shape,
    id_range: tuple[int, int],
    plan: Plan,
) -> list[Json]:
    found = []
    pairs = {pair.ours.name: pair for pair in api.PAIRS}
    for why, row in _profile_targets(rows, overhead=plan.profile_overhead).items():
        log(f"  profiling {row['operation']} ({why}) for {plan.profile_seconds} s")
        summary = profile(
            server=ours,
            operation=pairs[row["operation"]].ours,
            token=tenant.token,
            variables=api.variables(shape, id_range),
            seconds=plan.profile_seconds,
            connections=plan.api.connections,
            views=plan.profile_views,
        )
        found.append(
            {
                "why": why,
                "operation": row["operation"],
                "label": row["label"],
                "addresses": shape.addresses,
                **summary,
            }
        )
    return found


def _with_statements(
    rows: list[Json], database: Database, tenant: Tenant, id_range: tuple[int, int]
) -> list[Json]:
    """The statements each request sends (the same at any size: counted on the large
    database only)."""
    counts = statements_per_request(
        database_url=database.url,
        customer_id=tenant.customer_id,
        token=tenant.token,
        first_id=id_range[0],
    )
    for row in rows:
        row["sql_statements"] = counts.get(row["operation"])
    return rows


def _small_phase(
    backend: str, plan: Plan, sections: set[str], workdir: Path, results: Json
) -> None:
    """Sections 1 and 6 on a database of `plan.small_domains` domains."""
    small = Shape(plan.small_domains)
    database, tenant, id_range, _ = _loaded_database(backend, workdir, small, "small")
    try:
        if "api" in sections:
            log(f"[{backend}] section 1 at {small.addresses:,} addresses")
            data_dir = workdir / f"serve-{backend}-small"
            with api_servers(database.url, tenant.customer_id, data_dir) as (ours, bare):
                results["api"] += api.measure(
                    ours=ours, bare=bare, tenant=tenant, shape=small, id_range=id_range,
                    load=plan.api,
                )  # fmt: skip
        if "workers" in sections:
            log(f"[{backend}] section 6: worker processes {workers.worker_counts()}")
            results["workers"] = workers.measure(
                database_url=database.url, tenant=tenant, shape=small, id_range=id_range,
                load=plan.api, data_dir=workdir / f"serve-{backend}-workers",
            )  # fmt: skip
    finally:
        database.drop()


def _large_phase(
    backend: str, plan: Plan, sections: set[str], workdir: Path, results: Json
) -> None:
    """Everything that runs on the large database, one server pair for all of it."""
    large = Shape(plan.large_domains)
    database, tenant, id_range, bulk = _loaded_database(backend, workdir, large, "large")
    results["scale"]["bulk_sql_load"] = {"addresses": large.addresses, **bulk}
    try:
        data_dir = workdir / f"serve-{backend}-large"
        with ExitStack() as running:
            ours, bare = running.enter_context(
                api_servers(database.url, tenant.customer_id, data_dir)
            )
            if sections & {"api", "profile"}:
                log(f"[{backend}] section 1 at {large.addresses:,} addresses")
                rows = api.measure(
                    ours=ours, bare=bare, tenant=tenant, shape=large, id_range=id_range,
                    load=plan.api,
                )  # fmt: skip
                if "api" in sections:
                    results["api"] += _with_statements(rows, database, tenant, id_range)
                if "profile" in sections:
                    results["profile"] = _profiles(ours, tenant, rows, large, id_range, plan)
            if "scale" in sections:
                log(f"[{backend}] section 4: page latency, {large.addresses:,} addresses")
                results["scale"]["pages"] = scale.page_latency(
                    server=ours, token=tenant.token, last_id=id_range[1],
                    seconds=plan.page_seconds,
                )  # fmt: skip
            if sections & {"propagation", "logins"}:
                ports = running.enter_context(dataplane(database.url, workdir / f"dp-{backend}"))
                if "propagation" in sections:
                    log(f"[{backend}] section 2: propagation, {plan.changes} changes each")
                    results["propagation"] = propagation.measure(
                        server=ours, token=tenant.token, ports=ports, changes=plan.changes
                    )
                if "logins" in sections:
                    log(f"[{backend}] section 3: IMAP logins per second")
                    results["logins"] = logins.measure(
                        database_url=database.url, ports=ports, seconds=plan.login_seconds
                    )
    finally:
        database.drop()


def run_backend(backend: str, plan: Plan, sections: set[str], workdir: Path) -> Json:
    results: Json = {
        "api": [], "propagation": [], "logins": [], "scale": {}, "profile": [], "workers": []
    }  # fmt: skip
    if sections & {"api", "workers"}:
        _small_phase(backend, plan, sections, workdir, results)
    if sections - {"sync", "workers"}:
        _large_phase(backend, plan, sections, workdir, results)
    if "scale" in sections:
        shape = Shape(plan.large_domains)
        log(f"[{backend}] section 4: Basic JSON sync of {shape.addresses:,} addresses")
        results["scale"]["sync_load"] = {
            "addresses": shape.addresses,
            **scale.sync_load(backend=backend, shape=shape, workdir=workdir),
        }
    return results


# ---------------------------------------------------------------------------- the table


def _n(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _http(figures: Json) -> str:
    cell = f"{_n(figures['rps'])}/s · p50 {figures['p50_ms']:.1f} · p99 {figures['p99_ms']:.1f} ms"
    cpu = figures.get("server_cpu_ms_per_request")
    if cpu is not None:
        cell += f" · CPU {cpu:.1f} ms/req"
    if figures["errors"]:
        cell += f" · {figures['errors']} errors"
    return cell


def _statements(row: Json) -> str:
    counts = row.get("sql_statements")
    return f"{counts['postmeister']} / {counts['bare']}" if counts else "–"


def _propagation(row: Json) -> str:
    figures = row["propagation"]
    if not figures["n"]:
        return f"never seen within {propagation.GIVE_UP_SECONDS:.0f} s"
    seen = round(row["first_try_share"] * row["changes"])
    missed = row["not_seen_within_10s"]
    return (
        f"p50 {figures['p50_ms']:.0f} · p99 {figures['p99_ms']:.0f} ms"
        f" · first try {seen}/{row['changes']}" + (f" · {missed} never seen" if missed else "")
    )


def _logins(row: Json) -> str:
    failed = f" · {row['failures']} failed" if row["failures"] else ""
    return f"{_n(row['logins_per_second'])}/s · p50 {row['latency']['p50_ms']:.0f} ms" + failed


def _load(row: Json) -> str:
    return f"{row['seconds']} s · peak {row['peak_rss_mib']:,.0f} MiB"


def _sync(row: Json) -> str:
    return f"{row['seconds']} s (×{row['ratio_to_parse']} parse) · {row['peak_rss_mib']:,.0f} MiB"


def _matched(
    per_backend: dict[str, list[Json]], key: Callable[[Json], object]
) -> list[tuple[Json, dict[str, Json]]]:
    """Each row (in first-seen order) with the matching row of every backend that has one."""
    found: dict[object, tuple[Json, dict[str, Json]]] = {}
    for backend, rows in per_backend.items():
        for row in rows:
            found.setdefault(key(row), (row, {}))[1][backend] = row
    return list(found.values())


def table(report: Json) -> str:
    backends: list[str] = report["backends"]
    data: dict[str, Json] = report["results"]
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    header = " | ".join(names.get(b, b) for b in backends)
    lines = [f"| # | figure | {header} |", "|---|---|" + "---|" * len(backends)]

    def add(section: str, figure: str, cells: dict[str, str]) -> None:
        values = [cells.get(b, "–") for b in backends]
        lines.append(f"| {section} | {figure} | " + " | ".join(values) + " |")

    def section(name: str) -> dict[str, list[Json]]:
        return {b: data[b][name] for b in backends}

    api_rows = section("api")
    for row, cells in _matched(api_rows, lambda r: (r["operation"], r["addresses"])):
        what = f"{row['label']}, {row['addresses']:,} addresses"
        add("1", f"{what}: Postmeister", {b: _http(r["postmeister"]) for b, r in cells.items()})
        add(
            "1",
            f"{what}: bare FastAPI (× = bare ÷ ours)",
            {b: f"{_http(r['bare'])} (×{r['overhead_ratio']})" for b, r in cells.items()},
        )
    counted = {b: [r for r in rows if "sql_statements" in r] for b, rows in api_rows.items()}
    for row, cells in _matched(counted, lambda r: r["operation"]):
        add(
            "1",
            f"{row['label']}: SQL statements per request, Postmeister / bare",
            {b: _statements(r) for b, r in cells.items()},
        )
    for row, cells in _matched(section("propagation"), lambda r: r["change"]):
        add("2", f"{row['change']}", {b: _propagation(r) for b, r in cells.items()})
    for row, cells in _matched(section("logins"), lambda r: r["scheme"]):
        what = f"IMAP logins/s, {row['scheme']} ({row['clients']} clients, STARTTLS)"
        add("3", what, {b: _logins(r) for b, r in cells.items()})
    loads = {
        b: [
            {"how": how, **data[b]["scale"][how]}
            for how in ("bulk_sql_load", "sync_load")
            if how in data[b]["scale"]
        ]
        for b in backends
    }
    for row, cells in _matched(loads, lambda r: r["how"]):
        how = (
            "bulk SQL (executemany + ANALYZE)"
            if row["how"] == "bulk_sql_load"
            else f"Basic JSON sync of one {row['document_mb']} MB document"
        )
        add(
            "4",
            f"load {row['addresses']:,} addresses, {how}",
            {b: _load(r) for b, r in cells.items()},
        )
    pages = {b: data[b]["scale"].get("pages", []) for b in backends}
    for row, cells in _matched(pages, lambda r: r["page"]):
        add(
            "4",
            f"hosting list (GET /email-addresses), {row['page']}, one client",
            {b: f"p50 {p['p50_ms']:.1f} · p99 {p['p99_ms']:.1f} ms" for b, p in cells.items()},
        )
    scaling = {b: data[b].get("workers", []) for b in backends}
    for row, cells in _matched(scaling, lambda r: (r["operation"], r["workers"])):
        add(
            "6",
            f"{row['label']}, {row['workers']} worker process(es): Postmeister · bare "
            "(share of bare)",
            {
                b: f"{_http(r['postmeister'])} · {_http(r['bare'])} ({r['share_of_bare']:.0%})"
                for b, r in cells.items()
            },
        )
    sync = report.get("sync_import")
    if sync:
        by_phase = {b: [r for r in sync["rows"] if r["backend"] == b] for b in backends}
        for row, cells in _matched(by_phase, lambda r: r["phase"]):
            what = f"sync import (bench.sync_import), {sync['entries']:,} entries: {row['phase']}"
            add("5", what, {b: _sync(r) for b, r in cells.items()})
    return "\n".join(lines)


def _shares(pairs: list[list[object]], limit: int = 8) -> str:
    return ", ".join(f"{name} {share}%" for name, share in pairs[:limit])


def profile_text(report: Json) -> str:
    out = []
    for backend in report["backends"]:
        for found in report["results"][backend]["profile"]:
            if "skipped" in found:
                out.append(f"profile {backend}: skipped ({found['skipped']})")
                continue
            out.append(
                f"profile {backend}, {found['why']}: {found['label']} at {found['addresses']:,} "
                f"addresses (one argon2id hash: {found['argon2_ms_per_hash']} ms)"
            )
            for view in ("work", "under_load"):
                if view not in found:
                    continue
                data = found[view]
                if "skipped" in data:
                    out.append(f"  {view}: skipped ({data['skipped']})")
                    continue
                load = data["load_during_profile"]
                busy = f", server busy {data['busy_percent']}%" if "busy_percent" in data else ""
                out.append(
                    f"  {view} ({data['connections']} connections): {load.get('rps')} req/s, "
                    f"p50 {load.get('p50_ms')} ms, server CPU {data['server_cpu_ms_per_request']} "
                    f"ms/request{busy}, {data['samples']} samples"
                )
                out.append(f"    by category: {_shares(data['by_category_percent'])}")
                out.append(f"    innermost: {_shares(data['top_leaf_functions_percent'], 6)}")
                out.append(f"    Postmeister: {_shares(data['postmeister_inclusive_percent'])}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs (< 2 min)")
    parser.add_argument("--backend", choices=BACKENDS, action="append")
    parser.add_argument("--section", choices=SECTIONS, action="append")
    parser.add_argument(
        "--output",
        type=Path,
        help="default: bench/results/latest.json (quick runs: bench/results/quick.json)",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: the data plane (Postfix, Dovecot) needs it")
    missing = [tool for tool in ("wrk", "postfix", "dovecot") if shutil.which(tool) is None]
    if missing:
        parser.error(f"missing {', '.join(missing)}: run bench/setup first")
    plan = QUICK if args.quick else FULL
    output: Path = args.output or RESULTS / ("quick.json" if args.quick else "latest.json")
    backends: list[str] = args.backend or list(BACKENDS)
    sections = set(args.section or SECTIONS)
    if "postgresql" in backends:
        ensure_postgres()
    clock = Stopwatch()
    report: Json = {
        "mode": "quick" if args.quick else "full",
        "machine": machine_info(),
        "plan": asdict(plan),
        "backends": backends,
        "results": {},
    }
    log(f"machine: {json.dumps(report['machine'])}")
    with shared_workdir("pm-bench-") as workdir:
        for backend in backends:
            report["results"][backend] = run_backend(backend, plan, sections, workdir)
    if "sync" in sections:
        log(f"section 5: sync import at scale {plan.sync_import_scale}")
        report["sync_import"] = sync_import.measure(plan.sync_import_scale, backends)
    report["machine"]["load_average_at_end"] = load_average()
    report["duration_seconds"] = round(clock.seconds, 1)
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rendered = table(report)
    report["table_markdown"] = rendered
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(rendered)
    text = profile_text(report)
    if text:
        print("\n" + text)
    machine = report["machine"]
    print(
        f"\n{report['mode']} run, {report['duration_seconds']} s; {machine['cpu_model']}, "
        f"{machine['cores']} cores, {machine['memory_gib']} GiB, Python {machine['python']}, "
        f"SQLite {machine['sqlite']}, PostgreSQL {machine['postgresql']}, "
        f"load average {machine['load_average_at_start']} → {machine['load_average_at_end']}; "
        f"written to {output}",
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
