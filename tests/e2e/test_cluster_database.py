"""Two controllers behind HAProxy on a PostgreSQL primary + synchronous standby managed by
pg_auto_failover; the primary is killed mid-stream. PostgreSQL only (the whole point is
PostgreSQL's replication and advisory locks; SQLite has one file on one machine).

Seven network namespaces on a bridge of this module's own (`tests/support/pgcluster.py`):
the pg_auto_failover monitor, node-a (primary), node-b (standby), HAProxy, controller-1 and
controller-2. The controllers know nothing of each other or of the failover: each has the
same multi-host database URL (`host=a&host=b&target_session_attrs=read-write`), the only
thing an operator configures for a controller. HAProxy terminates TLS and balances them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import Engine, text

from postmeister.config import Settings
from postmeister.db import make_engine, make_session_factory
from postmeister.scheduler.clock import Calendar
from postmeister.scheduler.jobs import JOBS, Daily, Every
from postmeister.store import migrate
from tests.e2e.conftest import shared_tmp_dir
from tests.support.factories import make_tenant
from tests.support.haproxy import haproxy_config
from tests.support.pgcluster import Bridge, FailoverCluster, Host
from tests.support.processes import BIN
from tests.support.tls import make_test_pki

pytestmark = pytest.mark.e2e

CONTROLLER_PORT = 8080
PROXY_PORT = 8443
TICK_SECONDS = 1

# Every committed change to `job_state` (the row a job's run updates inside its own
# transaction) copied into a table of the test's own, with the session's application_name
# (which controller ran it): the database's record of every run, replicated like the rest.
RUN_LOG = """
CREATE TABLE test_job_runs (
    name text NOT NULL,
    last_run_at timestamptz NOT NULL,
    ran_by text NOT NULL DEFAULT current_setting('application_name')
);
CREATE FUNCTION test_record_job_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_job_runs (name, last_run_at) VALUES (NEW.name, NEW.last_run_at);
    RETURN NEW;
END $$;
CREATE TRIGGER test_record_job_run AFTER INSERT OR UPDATE OF last_run_at ON job_state
    FOR EACH ROW EXECUTE FUNCTION test_record_job_run();
"""


@dataclass
class ClusterStack:
    cluster: FailoverCluster
    controllers: list[Host]
    proxy: Host
    api: httpx.Client  # through HAProxy, as a customer
    token: str
    domain: str
    url: str  # the controllers' multi-host URL, for the test's own reads
    writes: dict[str, int] = field(default_factory=dict)  # alias name -> status

    def direct(self, controller: Host) -> httpx.Client:
        """A client of one controller, past HAProxy (plain HTTP, as HAProxy speaks to it)."""
        return httpx.Client(
            base_url=f"http://{controller.address}:{CONTROLLER_PORT}",
            headers={"Authorization": f"Bearer {self.token}", "X-Forwarded-Proto": "https"},
            timeout=10,
        )


def _wait_http(url: str, *, verify: ssl.SSLContext | bool = False, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, verify=verify, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 in {timeout}s")


@pytest.fixture(scope="module")
def stack() -> Iterator[ClusterStack]:
    root = shared_tmp_dir("pm-e2e-cluster-")
    bridge = Bridge()
    api: httpx.Client | None = None
    try:
        cluster = FailoverCluster(bridge, root)
        cluster.start()
        url = cluster.database_url(application_name="test")
        migrate(url)
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql(RUN_LOG)

        tenant = make_tenant(make_session_factory(engine), name="Cluster GmbH",
                             domain="cluster.example")  # fmt: skip
        engine.dispose()

        proxy = bridge.add_host("haproxy")
        controllers = [bridge.add_host(f"controller-{number}") for number in (1, 2)]
        for controller in controllers:
            data = root / controller.label
            serve_env = {
                **os.environ,
                "POSTMEISTER_DATA_DIR": str(data),
                "POSTMEISTER_DATABASE_URL": cluster.database_url(application_name=controller.label),
                "POSTMEISTER_HTTP__BEHIND_TLS_PROXY": "true",
                "POSTMEISTER_SCHEDULER__TICK_SECONDS": str(TICK_SECONDS),
            }
            controller.spawn(str(BIN / "postmeister"), "serve", "--host", controller.address,
                             "--port", str(CONTROLLER_PORT), "--workers", "1",
                             log=root / f"{controller.label}.log", env=serve_env)  # fmt: skip
        pki = make_test_pki(root / "pki", hosts=(proxy.address,))
        pem = root / "haproxy.pem"
        pem.write_text(pki.server_cert.read_text() + pki.server_key.read_text())
        config = root / "haproxy.cfg"
        config.write_text(
            haproxy_config(
                bind=f"{proxy.address}:{PROXY_PORT}",
                pem=pem,
                controllers=[(h.label, f"{h.address}:{CONTROLLER_PORT}") for h in controllers],
            )
        )
        for controller in controllers:
            _wait_http(f"http://{controller.address}:{CONTROLLER_PORT}/healthz")
        proxy.spawn("/usr/sbin/haproxy", "-db", "-f", str(config),
                    log=root / "haproxy.log")  # fmt: skip
        _wait_http(f"https://{proxy.address}:{PROXY_PORT}/healthz", verify=pki.client_context())
        api = httpx.Client(
            base_url=f"https://{proxy.address}:{PROXY_PORT}",
            verify=pki.client_context(),
            headers={"Authorization": f"Bearer {tenant.token}"},
            timeout=15,
        )
        yield ClusterStack(cluster, controllers, proxy, api, tenant.token, tenant.domain, url)
    finally:
        if api is not None:
            api.close()
        bridge.remove()
        shutil.rmtree(root, ignore_errors=True)


def _write(stack: ClusterStack, name: str) -> httpx.Response:
    response = stack.api.post(
        "/mail/alias/", data={"name": name, "domain": stack.domain, "to": "kept@elsewhere.example"}
    )
    stack.writes[name] = response.status_code
    return response


def _stored_aliases(stack: ClusterStack) -> set[str]:
    engine = make_engine(stack.url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT local_part FROM addresses"))
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def test_a_write_through_haproxy_is_read_by_the_other_controller(stack: ClusterStack) -> None:
    created = _write(stack, "first")
    assert created.status_code == 201, created.text
    for controller in stack.controllers:
        with stack.direct(controller) as client:
            listing = client.get("/mail/alias/", params={"domain": stack.domain})
        assert listing.status_code == 200, listing.text
        assert f"first@{stack.domain}" in listing.text


def _setting(engine: Engine, name: str) -> str:
    with engine.connect() as connection:
        return str(connection.execute(text(f"SHOW {name}")).scalar_one())


def test_killing_the_primary_promotes_the_standby_and_loses_no_acknowledged_write(
    stack: ClusterStack, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = stack.cluster
    old, new = cluster.nodes
    assert cluster.primary() is old
    # An acknowledged commit is on the standby's disk too: the primary's COMMIT waits until
    # the standby has flushed it (pg_auto_failover names its standby synchronous).
    engine = make_engine(stack.url)
    assert "pgautofailover_standby" in _setting(engine, "synchronous_standby_names")
    assert _setting(engine, "synchronous_commit") == "on"
    engine.dispose()

    for number in range(20):
        assert _write(stack, f"before-{number}").status_code == 201

    killed = old.host.crash()
    crashed = time.monotonic()
    failures: dict[str, int] = {}
    number, after, promoted_at = 0, 0, None
    deadline = crashed + 60
    while after < 20 and time.monotonic() < deadline:
        number += 1
        response = _write(stack, f"during-{number}")
        if response.status_code == 201:
            if promoted_at is None:
                promoted_at = time.monotonic()
            after += 1
            continue
        assert response.status_code == 503, response.text
        assert response.headers.get("Retry-After") == "1"
        problem = response.json()
        assert "database" in str(problem).lower(), problem
        assert "Traceback" not in response.text
        reason = f"{response.status_code} {problem.get('detail') or problem.get('title')}"
        failures[reason] = failures.get(reason, 0) + 1
        time.sleep(0.1)
    assert promoted_at is not None, "no write succeeded within 60 s of the crash"
    assert after == 20
    # Alone, the new primary waits for a standby (`wait_primary`) and commits without one.
    assert cluster.state(new) == "wait_primary"
    engine = make_engine(stack.url)
    assert _setting(engine, "synchronous_standby_names") == ""
    engine.dispose()

    stored = _stored_aliases(stack)
    acknowledged = {name for name, status in stack.writes.items() if status == 201}
    assert acknowledged <= stored, sorted(acknowledged - stored)
    with capsys.disabled():
        print(
            f"\ncluster: killed {len(killed)} processes of {old.host.label}; first write"
            f" acknowledged again after {promoted_at - crashed:.1f} s; {number - after}"
            f" writes answered 503 meanwhile ({failures}); {len(acknowledged)} acknowledged,"
            " all present"
        )


def test_each_job_ran_once_per_due_time_across_both_controllers(
    stack: ClusterStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Over the module's whole life, the failover included: a daily job ran once, a job due
    every N seconds never twice within N seconds, and the most frequent ones kept running."""
    calendar = Calendar.named(Settings().scheduler.timezone)  # the controllers' calendar
    intervals = {job.name: job.timing.interval for job in JOBS if isinstance(job.timing, Every)}
    frequent = {name for name, every in intervals.items() if every == min(intervals.values())}
    # Until the most frequent jobs came round three times (the first run is the catch-up
    # of the controller that started first).
    deadline = time.monotonic() + 60
    engine = make_engine(stack.url)
    try:
        while True:
            with engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT name, last_run_at, ran_by FROM test_job_runs ORDER BY 2")
                ).all()
            runs: dict[str, list[dt.datetime]] = {}
            for row in rows:
                runs.setdefault(row.name, []).append(row.last_run_at)
            if all(len(runs.get(name, [])) >= 3 for name in frequent):
                break
            assert time.monotonic() < deadline, runs
            time.sleep(1)
    finally:
        engine.dispose()

    for job in JOBS:
        times = runs.get(job.name, [])
        assert times, f"{job.name} never ran"
        if isinstance(job.timing, Daily):
            # Once a local day (twice only if the module ran across midnight in Berlin).
            assert len(times) == len({calendar.local_day(moment) for moment in times}), times
        else:
            gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
            assert all(gap >= job.timing.interval for gap in gaps), (job.name, times)
    with capsys.disabled():
        by = {name: sorted({row.ran_by for row in rows if row.name == name}) for name in runs}
        counts = {name: len(times) for name, times in runs.items()}
        print(f"\ncluster: job runs {counts}; ran by {by}")
