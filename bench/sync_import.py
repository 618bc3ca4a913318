"""Benchmark: applying a large Basic JSON document (issue 6).

100,000 accounts and 50,000 aliases on 1,000 domains; measured phases, each in a fresh
process so that its peak memory (max RSS) is its own:

- parse:   reading and validating the document only (the baseline of the ratios)
- initial: the first sync into empty domains
- noop:    the same document again (must write nothing)
- change:  1 % of the entries changed (half new hashes, half new alias targets)

Run: `.venv/bin/python -m bench.sync_import [--scale 0.1] [--backend sqlite|postgresql]
[--repeat 3] [--compare-with DIR]`. With `--repeat N` the parse and no-op phases are run N
times and the fastest run is kept (a busy machine only ever makes a run slower). With
`--compare-with` a checkout of other code (say `git worktree add /tmp/base HEAD~1`) runs the
parse and no-op phases too, alternating with this code's runs on the same document and
database, so that a change is measured side by side in one run (`baseline_rows`).
Prints a table and writes bench/results/sync_import.json. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import (
    BACKENDS,
    RESULTS,
    ROOT,
    Database,
    Json,
    create_database,
    log,
    own_peak_rss_mib,
    run_child,
)

# Real sha512-crypt hashes (`openssl passwd -6`), so the parser validates them as usual.
HASH = (
    "$6$benchsaltbenchsa$"
    "9lUXo4zp.EkcsFdXpiWCe5mA8FmWU6.9akEvAUH2N6d6CEDDe240xToqY6Fij8dMhbAZJyJkucydAarrDSG6y0"
)
ALT_HASH = (
    "$6$benchsaltbenchsa$"
    "NcbUU8LjFJffS98IkyUz8hJYERpd5UZr51g2WByMBIxfYiESCBGhGBc2.yWTZ6j2wuqgl1nslMu1ay3vsHlfn/"
)


def make_document(scale: float, *, changed: bool = False) -> bytes:
    domains = max(1, int(1000 * scale))
    accounts_per_domain, aliases_per_domain = 100, 50
    document: dict[str, dict[str, list[dict[str, str]]]] = {}
    counter = 0
    for d in range(domains):
        name = f"d{d:05d}.bench.example"
        accounts = []
        for a in range(accounts_per_domain):
            counter += 1
            flip = changed and counter % 200 == 0  # 0.5 % of accounts
            accounts.append({"name": f"user{a:03d}", "password": ALT_HASH if flip else HASH})
        aliases = []
        for a in range(aliases_per_domain):
            counter += 1
            flip = changed and counter % 200 == 0
            target = f"user{(a + (2 if flip else 1)) % accounts_per_domain:03d}@{name}"
            aliases.append({"name": f"alias{a:03d}", "to": f"user{a:03d}@{name},{target}"})
        document[name] = {"account": accounts, "alias": aliases}
    return json.dumps(document).encode()


def phase(name: str, url: str, doc_path: str, customer_id: int) -> Json:
    """Runs in a child process; prints its own timing as JSON."""
    from postmeister.config import SyncSettings
    from postmeister.db import make_engine, make_session_factory, unit_of_work
    from postmeister.sync.document import parse_document
    from postmeister.sync.service import sync_document

    raw = Path(doc_path).read_bytes()
    started = time.perf_counter()
    if name == "parse":
        parse_document(raw)
        result = "parsed"
    else:
        engine = make_engine(url)
        with unit_of_work(make_session_factory(engine)) as session:
            outcome = sync_document(
                session,
                customer_id=customer_id,
                raw=raw,
                settings=SyncSettings(),
                allow_mass_deletion=True,
            )
            result = outcome.result
        engine.dispose()
    seconds = time.perf_counter() - started
    import postmeister  # which checkout ran, for `--compare-with`

    return {
        "seconds": seconds,
        "result": result,
        "peak_rss_mib": own_peak_rss_mib(),
        "code": str(Path(postmeister.__file__).parent),
    }


def _prepare_database(backend: str, workdir: Path, domains: int) -> tuple[Database, int]:
    from postmeister.db import make_engine, make_session_factory, unit_of_work
    from postmeister.domain.customers.service import create_customer
    from postmeister.domain.domains.service import add_domain

    database = create_database(backend, workdir, "sync")
    engine = make_engine(database.url)
    with unit_of_work(make_session_factory(engine)) as session:
        customer = create_customer(session, name="Bench")
        for d in range(domains):
            add_domain(session, customer_id=customer.id, name=f"d{d:05d}.bench.example")
        customer_id = customer.id
    engine.dispose()
    return database, customer_id


def measure(
    scale: float, backends: Sequence[str], *, repeat: int = 1, baseline: Path | None = None
) -> Json:
    """Every phase on every backend; the report that `main` writes as JSON."""
    rows: list[Json] = []
    baseline_rows: list[Json] = []
    with tempfile.TemporaryDirectory(prefix="pm-bench-") as tmp:
        workdir = Path(tmp)
        base, changed = workdir / "base.json", workdir / "changed.json"
        base.write_bytes(make_document(scale))
        changed.write_bytes(make_document(scale, changed=True))
        entries = sum(
            len(d["account"]) + len(d["alias"]) for d in json.loads(base.read_bytes()).values()
        )
        log(f"document: {entries} entries, {base.stat().st_size / 1e6:.1f} MB")
        for backend in backends:
            database, customer_id = _prepare_database(backend, workdir, max(1, int(1000 * scale)))
            try:
                trees = {"current": None, **({"baseline": baseline} if baseline else {})}
                parse = _best("parse", database.url, base, customer_id, trees, repeat)
                runs = {code: {"parse": parse[code]} for code in trees}
                runs["current"]["initial"] = _child("initial", database.url, base, customer_id)
                noop = _best("noop", database.url, base, customer_id, trees, repeat)
                for code in trees:
                    runs[code]["noop"] = noop[code]
                runs["current"]["change"] = _child("change", database.url, changed, customer_id)
                for code, phases in runs.items():
                    for name, measured in phases.items():
                        row = _row(backend, name, measured, phases["parse"])
                        (rows if code == "current" else baseline_rows).append(row)
                        log(
                            f"{backend:<11} {name:<8} {row['seconds']:>8} s  "
                            f"x{row['ratio_to_parse']:<6} {row['peak_rss_mib']:>7} MiB  "
                            f"{row['result']}" + (f" ({code})" if baseline else "")
                        )
            finally:
                database.drop()
    return {
        "benchmark": "sync_import",
        "entries": entries,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "max_rss_limit_note": "peak RSS (VmHWM) of each phase's own process",
        "rows": rows,
        **({"baseline": str(baseline), "baseline_rows": baseline_rows} if baseline else {}),
        "repeat": repeat,
        "self_rss_mib": own_peak_rss_mib(),
    }


def _row(backend: str, name: str, measured: Json, parse: Json) -> Json:
    return {
        "backend": backend,
        "phase": name,
        "seconds": round(float(measured["seconds"]), 2),
        "ratio_to_parse": round(float(measured["seconds"]) / float(parse["seconds"]), 2),
        "peak_rss_mib": measured["peak_rss_mib"],
        "result": measured["result"],
    }


def _best(
    name: str, url: str, doc: Path, customer_id: int, trees: dict[str, Path | None], repeat: int
) -> dict[str, Json]:
    """The fastest of `repeat` runs of a phase that writes nothing, for each checkout in
    `trees`, the checkouts taking turns (so that a busy spell slows both alike); the peak
    RSS is the largest of the runs."""
    runs: dict[str, list[Json]] = {code: [] for code in trees}
    for _ in range(repeat):
        for code, tree in trees.items():
            runs[code].append(_child(name, url, doc, customer_id, tree))
    return {
        code: {
            **min(measured, key=lambda r: float(r["seconds"])),
            "peak_rss_mib": max(float(r["peak_rss_mib"]) for r in measured),
        }
        for code, measured in runs.items()
    }


def _child(name: str, url: str, doc: Path, customer_id: int, tree: Path | None = None) -> Json:
    """One phase in a process of its own; `tree`: the checkout whose code it runs."""
    env = None
    if tree is not None:
        env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree}"}
    measured, peak = run_child(
        "bench.sync_import",
        "--phase",
        name,
        "--url",
        url,
        "--doc",
        str(doc),
        "--customer",
        str(customer_id),
        env=env,
    )
    measured["peak_rss_mib"] = peak
    expected = (tree or ROOT) / "src" / "postmeister"
    if Path(measured.pop("code")).resolve() != expected.resolve():
        raise RuntimeError(f"the {name} phase ran other code than {expected}")
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 150,000 entries")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--repeat", type=int, default=1, help="best of N for parse and no-op")
    parser.add_argument("--compare-with", type=Path, help="a checkout to measure side by side")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--doc", help=argparse.SUPPRESS)
    parser.add_argument("--customer", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.url, args.doc, args.customer)))
        return

    report = measure(
        args.scale, args.backend or list(BACKENDS), repeat=args.repeat, baseline=args.compare_with
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sync_import.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
