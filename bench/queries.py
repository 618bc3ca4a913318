"""SQL statements per request: one request of each operation, counted, on both sides.

Both applications run in this process (Starlette's TestClient, over "https" so that
Postmeister's transport check passes) against the same database as the measured servers, and
every statement SQLAlchemy sends to the driver is counted. On SQLite the count includes the
explicit BEGIN that `postmeister.db` issues per transaction (the baseline uses the same engine
settings, so it has them too); COMMIT is a driver call, not a statement, on both databases.
"""

from __future__ import annotations

import itertools
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, event

from bench.api import JSONAPI, NEW_PASSWORD, PAGE_SIZE
from bench.bare import create_bare_app
from bench.load import domain_name, forward, mailbox
from postmeister.api.app import create_app
from postmeister.config import SchedulerSettings, Settings

Call = Callable[[TestClient, str], Response]


@contextmanager
def _counting() -> Iterator[list[int]]:
    count = [0]

    def seen(*_: Any) -> None:
        count[0] += 1

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        yield count
    finally:
        event.remove(Engine, "before_cursor_execute", seen)


def _calls(first_id: int) -> dict[str, Call]:
    d = domain_name(1)
    after = first_id + 100

    def create(client: TestClient, prefix: str) -> Response:
        name = f"q{uuid.uuid4().hex[:10]}"
        body = {"name": name, "domain": d, "password": NEW_PASSWORD}
        response: Response = client.post(f"{prefix}/account/", json=body)
        return response

    def page(client: TestClient, prefix: str) -> Response:
        if prefix == "/bare":
            path, headers = f"/bare/addresses?size={PAGE_SIZE}&after={after}", {}
        else:
            query = f"page%5Bsize%5D={PAGE_SIZE}&page%5Bafter%5D={after}"
            path, headers = f"/email-addresses?{query}", {"Accept": JSONAPI}
        response: Response = client.get(path, headers=headers)
        return response

    targets = itertools.count(9)

    def update(client: TestClient, prefix: str) -> Response:
        # Another target each time: the counted request changes the list, as under load.
        body = {"to": mailbox(next(targets), 1)}
        response: Response = client.put(f"{prefix}/alias/{forward(3, 1)}/", json=body)
        return response

    return {
        "get": lambda client, prefix: client.get(f"{prefix}/account/{mailbox(5, 1)}/"),
        "list": page,
        "create": create,
        "update": update,
    }


def _ours_only(first_id: int) -> dict[str, Call]:
    """Operations the bare endpoint has no counterpart for: counted on Postmeister only."""
    d = domain_name(1)
    address_id = str(first_id + 7)

    def create_alias(client: TestClient, prefix: str) -> Response:
        body = {"name": f"q{uuid.uuid4().hex[:10]}", "domain": d, "to": mailbox(9, 1)}
        response: Response = client.post(f"{prefix}/alias/", json=body)
        return response

    def patch(client: TestClient, _prefix: str) -> Response:
        document = {
            "data": {
                "type": "email-address",
                "id": address_id,
                "attributes": {"description": f"bench {uuid.uuid4().hex[:8]}"},
            }
        }
        response: Response = client.patch(
            f"/email-addresses/{address_id}",
            json=document,
            headers={"Content-Type": JSONAPI, "Accept": JSONAPI},
        )
        return response

    return {"create alias": create_alias, "hosting patch": patch}


def statements_per_request(
    *, database_url: str, customer_id: int, token: str, first_id: int
) -> dict[str, dict[str, int]]:
    """{operation: {"postmeister": n, "bare": n}}, counted on the second request of each
    (`create alias` and `hosting patch`: Postmeister only)."""
    counts: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="pm-bench-queries-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=database_url,
            scheduler=SchedulerSettings(enabled=False),
        )
        apps = {
            "postmeister": (create_app(settings), "/mail", {"Authorization": f"Bearer {token}"}),
            "bare": (create_bare_app(database_url, customer_id), "/bare", {}),
        }
        for side, (app, prefix, headers) in apps.items():
            calls = _calls(first_id)
            if side == "postmeister":
                calls |= _ours_only(first_id)
            with TestClient(app, base_url="https://testserver", headers=headers) as client:
                for operation, call in calls.items():
                    call(client, prefix)  # the first one warms caches and the pool
                    with _counting() as count:
                        response = call(client, prefix)
                    if response.status_code >= 300:
                        raise RuntimeError(
                            f"{side} {operation}: {response.status_code} {response.text[:200]}"
                        )
                    counts.setdefault(operation, {})[side] = count[0]
    return counts
