"""The customer's address list with 100,000 addresses, on both databases: each page (the
first, one deep in the list, the previous one, a search by address or by domain) costs the
same few statements, and the page's own query is answered from an index, never by reading
the whole table. Behaviour, not timings: the timings are in bench/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import SchedulerSettings, Settings, WebhookSettings
from postmeister.db import unit_of_work
from postmeister.models import Address, Domain
from postmeister.scheduler.jobs import JOBS
from tests.support.factories import Tenant
from tests.web.conftest import Browser

SEEDED = 100_000
ROW = re.compile(r'<td class="address"><a href="/ui/customer/addresses/(\d+)">([^<]+)</a>')


def _seed(sessions: sessionmaker[Session], tenant: Tenant, count: int) -> None:
    """`count` forwards in the tenant's domain, in one multi-row insert per 10,000."""
    with unit_of_work(sessions) as session:
        domain_id = session.scalar(select(Domain.id).where(Domain.name == tenant.domain))
        rows = [
            {"domain_id": domain_id, "address": f"user{n:06d}@{tenant.domain}",
             "local_part": f"user{n:06d}", "kind": "forward"}
            for n in range(count)
        ]  # fmt: skip
        for start in range(0, count, 10_000):
            session.execute(insert(Address), rows[start : start + 10_000])


def _statistics(sessions: sessionmaker[Session]) -> None:
    """What the scheduler's hourly `database-statistics` job does (its catch-up at start runs
    it too). SQLite without table statistics reads the customer's addresses through the
    domain index and sorts all of them for the first page (a sort of 100,000 rows, see
    bench/web_addresses.py); with them it walks the primary key and stops at the page's end.
    PostgreSQL needs nothing (its autovacuum gathers them; its planner walks the index
    without them too)."""
    job = next(job for job in JOBS if job.name == "database-statistics")
    with unit_of_work(sessions) as session:
        job.run(session, None)  # type: ignore[arg-type]  # the job needs no context


@pytest.fixture
def quiet_browser(settings: Settings) -> Iterator[Browser]:
    """A browser on an app without its background workers (scheduler, webhook outbox), so
    every statement sent while a page loads is the page's own."""
    quiet = settings.model_copy(update={"scheduler": SchedulerSettings(enabled=False),
                                        "webhooks": WebhookSettings(enabled=False)})  # fmt: skip
    with TestClient(create_app(quiet), base_url="https://testserver") as client:
        yield Browser(client)


@contextmanager
def _statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement the app's own engine sends while the block runs. Only that engine:
    the session-long apps of the e2e stacks tick their schedulers in the same process."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _page_query(seen: list[tuple[str, Any]]) -> tuple[str, Any]:
    """The statement that reads the page's rows: the one with a LIMIT over addresses."""
    found = [(s, p) for s, p in seen if "FROM addresses" in s and "LIMIT" in s]
    assert found, [s for s, _ in seen]
    return max(found, key=lambda item: len(item[0]))


def _plan(engine: Engine, statement: str, parameters: Any) -> str:
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        cursor.execute(f"EXPLAIN {statement}", parameters)
        return "\n".join(str(row[0]) for row in cursor.fetchall())


def _no_full_scan(engine: Engine, plan: str) -> None:
    if engine.dialect.name == "sqlite":
        # SQLite prints a walk along the primary key as "SCAN addresses" too: it reads the
        # rows in id order and stops at the LIMIT. Reading every row shows as a sort of
        # them all ("TEMP B-TREE FOR ORDER BY"), or as a scan of the table with no order.
        # The page's ids are picked first (`loading.fetch`); after "SCAN page" only the
        # page's own rows are joined to their details and put in order.
        picking, page, _ = plan.partition("SCAN page")
        assert page and "TEMP B-TREE" not in picking, plan
    else:
        assert "Seq Scan on addresses" not in plan, plan


def _range_of_addresses(engine: Engine, plan: str) -> None:
    """A prefix search reads the range of addresses that start with it from an index (on
    SQLite the customer's domain's part of `ix_addresses_domain_address`, sorting just the
    matches; on PostgreSQL the code point index of migration 0018), never the table."""
    if engine.dialect.name == "sqlite":
        assert re.search(
            r"SEARCH addresses USING (COVERING )?INDEX \S+ \(.*address>\? AND address<\?\)", plan
        ), plan
    else:
        assert "Seq Scan on addresses" not in plan, plan
        assert "ix_addresses_address_bytes" in plan or "ix_addresses_domain_address" in plan, plan


def test_a_hundred_thousand_addresses_page_and_search_from_an_index(
    quiet_browser: Browser, alice: Tenant, bob: Tenant, alice_user: tuple[str, str],
    sessions: sessionmaker[Session], engine: Engine,
) -> None:  # fmt: skip
    _seed(sessions, alice, SEEDED)
    _seed(sessions, bob, 3)
    _statistics(sessions)
    browser = quiet_browser
    browser.login(*alice_user)
    pages: dict[str, tuple[int, str, Any]] = {}

    def visit(name: str, path: str) -> list[tuple[int, str]]:
        with _statements(browser.client.app.state.engine) as seen:  # type: ignore[attr-defined]
            shown = browser.get(path)
        assert shown.status_code == 200, shown.text
        statement, parameters = _page_query(seen)
        pages[name] = (len(seen), statement, parameters)
        return [(int(i), a) for i, a in ROW.findall(shown.text)]

    first = visit("first", "/ui/customer/addresses")
    assert len(first) == 50 and first[0][1] == f"user000000@{alice.domain}"
    assert all(address.endswith("@" + alice.domain) for _, address in first)
    deep_cursor = first[0][0] + 70_000
    deep = visit("deep", f"/ui/customer/addresses?after={deep_cursor}")
    assert [i for i, _ in deep] == list(range(deep_cursor + 1, deep_cursor + 51))
    back = visit("back", f"/ui/customer/addresses?before={deep[0][0]}")
    assert [i for i, _ in back] == list(range(deep_cursor - 49, deep_cursor + 1))
    one = visit("address", f"/ui/customer/addresses?q=User054321@{alice.domain.upper()}")
    assert [a for _, a in one] == [f"user054321@{alice.domain}"]
    domain = visit("domain", f"/ui/customer/addresses?q={alice.domain}")
    assert len(domain) == 50
    # The beginning of an address: the addresses starting with it, in address order, paged
    # by the address the page's link carries (an @ in it is %40).
    prefix = visit("prefix", "/ui/customer/addresses?q=User0543")
    assert [a for _, a in prefix] == [f"user0543{n:02d}@{alice.domain}" for n in range(50)]
    assert (
        f"after=user054349%40{alice.domain}"
        in browser.get("/ui/customer/addresses?q=user0543").text
    )
    onward = visit(
        "prefix-next", f"/ui/customer/addresses?q=user0543&after=user054349%40{alice.domain}"
    )
    assert [a for _, a in onward] == [f"user0543{n:02d}@{alice.domain}" for n in range(50, 100)]
    earlier = visit(
        "prefix-back", f"/ui/customer/addresses?q=user0543&before=user054350%40{alice.domain}"
    )
    assert earlier == prefix
    # Bob has user000000..2 too; Alice's prefix search finds only her ten.
    assert len(visit("prefix-own", "/ui/customer/addresses?q=user00000")) == 10
    # Bob's addresses are on no page of Alice's, even searched for by name; his domain is
    # as unknown to her as one that does not exist: no match, not an error page.
    assert visit("other", f"/ui/customer/addresses?q=user000001@{bob.domain}") == []
    for nothing in (bob.domain, "missing.example"):
        answer = browser.get(f"/ui/customer/addresses?q={nothing}")
        assert answer.status_code == 200 and "No address matches this search." in answer.text
        assert ROW.findall(answer.text) == []

    counts = {name: count for name, (count, _, _) in pages.items()}
    assert max(counts.values()) <= 12, counts
    assert counts["first"] == counts["domain"] - 1 or counts["first"] == counts["domain"], counts
    assert counts["deep"] == counts["back"], counts
    for name, (_, statement, parameters) in pages.items():
        plan = _plan(engine, statement, parameters)
        if name.startswith("prefix"):
            _range_of_addresses(engine, plan)
        else:
            _no_full_scan(engine, plan)
