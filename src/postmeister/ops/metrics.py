"""The controller's Prometheus metrics (`GET /metrics`, admin token), one process's view.

Every metric is defined here, so the list below is the whole catalogue:

- `postmeister_http_requests_total{method,route,status}` and
  `postmeister_http_request_duration_seconds{method,route}`: `route` is the route's template
  (`/mail/account/{account_id}/`), `unmatched` for paths no route serves, so a scanner
  cannot create a time series per URL.
- `postmeister_db_statements_total{operation}` and
  `postmeister_db_statement_duration_seconds{operation}`: every SQL statement the
  controller's engine runs (`SELECT`, `INSERT`, `UPDATE`, `DELETE`, `BEGIN`, ... `OTHER`);
  `postmeister_db_statement_errors_total{operation}` for the ones the database refused.
- `postmeister_sync_runs_total{result}` and `postmeister_sync_run_duration_seconds{result}`:
  every recorded Basic JSON sync run (`applied`, `unchanged`, `held`, `rejected`, `failed`,
  ...), counted when its run row is written.
- `postmeister_scheduler_job_runs_total{job,outcome}` (`ran`, `not-due`, `locked`,
  `failed`) and `postmeister_scheduler_job_duration_seconds{job}`.
- `postmeister_password_hashes_total{scheme}` and
  `postmeister_password_verifications_total{scheme,result}`: password hashing done by the
  controller. Logins are verified by Dovecot, not here: see the README for its exporter.
- `postmeister_build_info{version}`, and the client library's `process_*` and `python_*`.

Webhook deliveries have no metric yet: webhooks do not exist.

Values live in the default registry of the process. Under `postmeister serve` with several
worker processes (`http.workers`), the server points `PROMETHEUS_MULTIPROC_DIR` at a fresh
folder before the workers start, every worker writes its values there, and a scrape (which
any one worker answers) adds up all of them: the client library's multiprocess mode. The
per-process `process_*` and `python_*` series are then left out. With several controllers,
scrape each; Prometheus adds them up.
"""

from __future__ import annotations

import os
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from sqlalchemy import Engine, event

from postmeister.models import SyncRun

# `*_created` series only double the output; counters' resets are what rate() handles.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Request latencies: from a cached read (a few ms) to an argon2id write under load (seconds).
_HTTP_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_DB_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
_JOB_BUCKETS: Final = (0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0)
_SQL_OPERATIONS: Final = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT",
     "RELEASE", "WITH", "PRAGMA"}
)  # fmt: skip
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

HTTP_REQUESTS = Counter(
    "postmeister_http_requests", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "postmeister_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response",
    ["method", "route"],
    buckets=_HTTP_BUCKETS,
)
DB_STATEMENTS = Counter("postmeister_db_statements", "SQL statements executed", ["operation"])
DB_DURATION = Histogram(
    "postmeister_db_statement_duration_seconds",
    "Time the database took for one statement",
    ["operation"],
    buckets=_DB_BUCKETS,
)
DB_ERRORS = Counter(
    "postmeister_db_statement_errors", "SQL statements that raised an error", ["operation"]
)
SYNC_RUNS = Counter("postmeister_sync_runs", "Recorded Basic JSON sync runs", ["result"])
SYNC_DURATION = Histogram(
    "postmeister_sync_run_duration_seconds",
    "Duration of a sync run, fetch included",
    ["result"],
    buckets=_JOB_BUCKETS,
)
JOB_RUNS = Counter(
    "postmeister_scheduler_job_runs", "Scheduler job attempts by outcome", ["job", "outcome"]
)
JOB_DURATION = Histogram(
    "postmeister_scheduler_job_duration_seconds",
    "Duration of scheduler jobs that ran",
    ["job"],
    buckets=_JOB_BUCKETS,
)
PASSWORD_HASHES = Counter(
    "postmeister_password_hashes", "Passwords hashed by the controller", ["scheme"]
)
PASSWORD_VERIFICATIONS = Counter(
    "postmeister_password_verifications",
    "Password hash verifications by the controller",
    ["scheme", "result"],
)
# The build is the same in every worker process, and `Info` has no multiprocess mode: it
# lives in a registry of its own that every scrape adds to the counters' registry.
_BUILD_REGISTRY: Final = CollectorRegistry(auto_describe=True)
BUILD = Info("postmeister_build", "The running Postmeister", registry=_BUILD_REGISTRY)
try:
    BUILD.info({"version": version("postmeister")})
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    BUILD.info({"version": "unknown"})


MULTIPROCESS_DIR: Final = "PROMETHEUS_MULTIPROC_DIR"  # the client library's variable


def exposition() -> bytes:
    """The text format of every metric: this process's, or with several worker processes
    the sum over all of them (see the module docstring)."""
    if os.environ.get(MULTIPROCESS_DIR):
        workers = CollectorRegistry()
        multiprocess.MultiProcessCollector(workers)  # type: ignore[no-untyped-call]
        counters = generate_latest(workers)
    else:
        counters = generate_latest()
    return counters + generate_latest(_BUILD_REGISTRY)


def observe_request(*, method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


def observe_job(job: str, outcome: str, seconds: float) -> None:
    JOB_RUNS.labels(job, outcome).inc()
    if outcome == "ran":
        JOB_DURATION.labels(job).observe(seconds)


def sql_operation(statement: str) -> str:
    word = statement.lstrip(" \t\r\n(").split(None, 1)[0].upper() if statement.strip() else ""
    return word if word in _SQL_OPERATIONS else "OTHER"


_STARTED: Final = "postmeister.metrics.started"


def instrument_engine(engine: Engine) -> None:
    """Count and time every statement `engine` runs (idempotent per engine)."""
    if event.contains(engine, "before_cursor_execute", _before):
        return
    event.listen(engine, "before_cursor_execute", _before)
    event.listen(engine, "after_cursor_execute", _after)
    event.listen(engine, "handle_error", _failed)


def _before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    conn.info.setdefault(_STARTED, []).append(time.perf_counter())


def _after(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    started = conn.info.get(_STARTED)
    operation = sql_operation(statement)
    DB_STATEMENTS.labels(operation).inc()
    if started:
        DB_DURATION.labels(operation).observe(time.perf_counter() - started.pop())


def _failed(exception_context: Any) -> None:
    connection = exception_context.connection
    if connection is not None:
        started = connection.info.get(_STARTED)
        if started:
            started.pop()
    operation = sql_operation(exception_context.statement or "")
    DB_STATEMENTS.labels(operation).inc()
    DB_ERRORS.labels(operation).inc()


@event.listens_for(SyncRun, "after_insert")
def _sync_run_recorded(_mapper: Any, _connection: Any, run: SyncRun) -> None:
    """Every sync run, whoever ran it, is recorded by writing its row: count it there."""
    result = str(run.result)
    SYNC_RUNS.labels(result).inc()
    if run.started_at is not None and run.finished_at is not None:
        seconds = max(0.0, (run.finished_at - run.started_at).total_seconds())
        SYNC_DURATION.labels(result).observe(seconds)


def observe_hash(scheme: str) -> None:
    PASSWORD_HASHES.labels(scheme).inc()


def observe_verification(scheme: str, *, ok: bool) -> None:
    PASSWORD_VERIFICATIONS.labels(scheme, "ok" if ok else "mismatch").inc()
