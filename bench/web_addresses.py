"""Issue 15: how long the customer menu's address list takes at N addresses.

For each backend, one scratch database is bulk-loaded (`bench.load`: domains of 70 mailboxes
and 30 forwards, one customer owning them all); a customer web user logs in to the real app
(in process, over the ASGI test transport) and each page is fetched `--repeat` times: the
first page, one deep in the list (`after=` an id near the end), a search for one address,
and a search for one domain. Reported per page: the median and the slowest in milliseconds.
Benchmarks are not tests: nothing here asserts a number (tests/web/test_web_address_list_scale.py
asserts the statements and the query plans).

    python -m bench.web_addresses --backend sqlite --backend postgresql --addresses 100000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from bench.common import Json, create_database, ensure_postgres, log
from bench.load import BULK_PASSWORD, PER_DOMAIN, Shape, create_tenant, domain_name, load, mailbox
from postmeister.api.app import create_app
from postmeister.config import PasswordSettings, Settings
from postmeister.db import make_engine, make_session_factory, unit_of_work
from postmeister.domain.passwords.service import Passwords
from postmeister.domain.web_users import service as web_users


def _pages(domains: int) -> dict[str, str]:
    last = domains * PER_DOMAIN
    return {
        "first": "/ui/customer/addresses",
        "deep": f"/ui/customer/addresses?after={last - 200}",
        "one address": f"/ui/customer/addresses?q={mailbox(5, domains // 2)}",
        "one domain": f"/ui/customer/addresses?q={domain_name(domains // 2)}",
    }


def run(backend: str, addresses: int, repeat: int, workdir: Path) -> Json:
    database = create_database(backend, workdir, "webaddr")
    try:
        shape = Shape(domains=max(1, addresses // PER_DOMAIN))
        tenant = create_tenant(database.url)
        fast = PasswordSettings(argon2_memory_kib=1024, argon2_time_cost=1)
        hashed = Passwords(fast).hash(BULK_PASSWORD)
        started = time.perf_counter()
        load(database.url, customer_id=tenant.customer_id, package_id=tenant.package_id,
             shape=shape, password_hash=hashed)  # fmt: skip
        log(f"{backend}: {shape.addresses} addresses in {time.perf_counter() - started:.1f} s")
        settings = Settings(data_dir=workdir, database_url=database.url, passwords=fast)
        engine = make_engine(database.url)
        with unit_of_work(make_session_factory(engine)) as session:
            issued = web_users.create_user(session, email="bench@web.example",
                                           passwords=Passwords(fast),
                                           customer_id=tenant.customer_id)  # fmt: skip
            email, password = issued.user.email, issued.password
        engine.dispose()
        figures: dict[str, Json] = {}
        with TestClient(create_app(settings), base_url="https://testserver") as client:
            login = client.get("/ui/login")
            csrf = login.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            client.post("/ui/login", data={"email": email, "password": password, "csrf": csrf},
                        headers={"Origin": "https://testserver"})  # fmt: skip
            for name, path in _pages(shape.domains).items():
                took: list[float] = []
                for _ in range(repeat):
                    begun = time.perf_counter()
                    answer = client.get(path)
                    took.append((time.perf_counter() - begun) * 1000)
                    assert answer.status_code == 200, (path, answer.status_code)
                figures[name] = {"median_ms": round(statistics.median(took), 2),
                                 "max_ms": round(max(took), 2)}  # fmt: skip
        return {"backend": backend, "addresses": shape.addresses, "pages": figures}
    finally:
        database.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--addresses", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    arguments = parser.parse_args()
    if "postgresql" in (arguments.backend or []):
        ensure_postgres()
    with tempfile.TemporaryDirectory(prefix="pm-bench-web-") as scratch:
        results = [run(b, arguments.addresses, arguments.repeat, Path(scratch))
                   for b in arguments.backend or ["sqlite"]]  # fmt: skip
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
