"""The baseline: the same database work behind bare FastAPI endpoints, served the same way.

Each endpoint does what the matching Postmeister request cannot avoid: the same row lookups,
scoped to the customer, through the same SQLAlchemy engine settings, with the same argon2id
parameters for a new password, as sync handlers in FastAPI's thread pool, under the same
uvicorn settings and TLS certificate as `postmeister serve`. What it leaves out is what the
ratio measures: token authentication, the ORM and its eager loads, validation and the
password policy, the middleware, and the dialects' documents.

Run: `python -m bench.bare --url URL --customer ID --port P --cert C --key K [--workers N]`.
With several workers it is served the way `postmeister serve` serves them
(`postmeister.server.run_workers`), each worker building its app with
`app_from_environment`.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, bindparam, text

from postmeister.config import PasswordSettings
from postmeister.db import make_engine
from postmeister.domain.passwords.hashing import PasswordHashing
from postmeister.server import run_workers


class NewAccount(BaseModel):
    name: str
    domain: str
    password: str


class AliasTargets(BaseModel):
    to: str


def _writing(engine: Engine) -> Connection:
    # SQLite: take the write lock up front, as Postmeister's unit of work does.
    return engine.connect().execution_options(sqlite_begin="IMMEDIATE")


def create_bare_app(url: str, customer_id: int) -> FastAPI:
    engine = make_engine(url)
    hashing = PasswordHashing(PasswordSettings())
    app = FastAPI()
    scope = {"customer": customer_id}

    @app.get("/bare/account/{address}/")
    def get_account(address: str) -> dict[str, Any]:
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT a.id, a.local_part, d.display_name, a.password_hash, "
                    "a.submission_disabled FROM addresses a JOIN domains d ON d.id = a.domain_id "
                    "WHERE a.address = :address AND a.kind = 'mailbox' "
                    "AND d.customer_id = :customer"
                ),
                {"address": address.lower(), **scope},
            ).one_or_none()
            if row is None:
                raise HTTPException(404)
            patterns = connection.execute(
                text(
                    "SELECT pattern FROM sender_permissions WHERE address_id = :id "
                    "ORDER BY position"
                ),
                {"id": row.id},
            ).scalars()
            return {
                "id": f"{row.local_part}@{row.display_name}",
                "name": row.local_part,
                "domain": row.display_name,
                "password": row.password_hash or "",
                "spoofing_whitelist": ",".join(patterns),
                "submission_disabled": bool(row.submission_disabled),
            }

    @app.get("/bare/addresses")
    def list_page(after: int = 0, size: int = 50) -> dict[str, Any]:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT a.id, a.address, a.kind, a.description, a.antispam, "
                    "a.quota_bytes, a.submission_disabled FROM addresses a "
                    "WHERE a.domain_id IN (SELECT id FROM domains WHERE customer_id = :customer) "
                    "AND a.id > :after ORDER BY a.id LIMIT :size"
                ),
                {"after": after, "size": size + 1, **scope},
            ).all()
            page = rows[:size]
            targets: dict[int, list[str]] = {}
            if page:
                for address_id, target in connection.execute(
                    text(
                        "SELECT address_id, target FROM forward_targets "
                        "WHERE address_id IN :ids ORDER BY address_id, position"
                    ).bindparams(bindparam("ids", expanding=True)),
                    {"ids": [row.id for row in page]},
                ):
                    targets.setdefault(address_id, []).append(target)
            return {
                "data": [
                    {
                        "type": "email-address",
                        "id": str(row.id),
                        "attributes": {
                            "address": row.address,
                            "address_type": row.kind,
                            "description": row.description,
                            "antispam": row.antispam,
                            "quota": row.quota_bytes,
                            "submission_disabled": bool(row.submission_disabled),
                            "forward_to": targets.get(row.id, []),
                        },
                    }
                    for row in page
                ],
                "links": {
                    "next": f"/bare/addresses?after={page[-1].id}" if len(rows) > size else None
                },
            }

    @app.post("/bare/account/", status_code=201)
    def create_account(body: NewAccount) -> dict[str, Any]:
        hashed = hashing.hash(body.password)
        with _writing(engine) as connection, connection.begin():
            domain_id = connection.execute(
                text("SELECT id FROM domains WHERE name = :name AND customer_id = :customer"),
                {"name": body.domain.lower(), **scope},
            ).scalar_one_or_none()
            if domain_id is None:
                raise HTTPException(404)
            connection.execute(
                text(
                    "INSERT INTO addresses (domain_id, address, local_part, kind, antispam, "
                    "password_hash, submission_disabled) VALUES (:domain_id, :address, :local, "
                    "'mailbox', 'reject', :hash, :disabled)"
                ),
                {
                    "domain_id": domain_id,
                    "address": f"{body.name.lower()}@{body.domain.lower()}",
                    "local": body.name.lower(),
                    "hash": hashed,
                    "disabled": False,
                },
            )
        return {"id": f"{body.name}@{body.domain}", "password": hashed}

    @app.put("/bare/alias/{address}/")
    def update_alias(address: str, body: AliasTargets) -> dict[str, Any]:
        targets = [t.strip().lower() for t in body.to.split(",") if t.strip()]
        with _writing(engine) as connection, connection.begin():
            address_id = connection.execute(
                text(
                    "SELECT a.id FROM addresses a JOIN domains d ON d.id = a.domain_id "
                    "WHERE a.address = :address AND a.kind = 'forward' "
                    "AND d.customer_id = :customer"
                ),
                {"address": address.lower(), **scope},
            ).scalar_one_or_none()
            if address_id is None:
                raise HTTPException(404)
            connection.execute(
                text("DELETE FROM forward_targets WHERE address_id = :id"), {"id": address_id}
            )
            connection.execute(
                text(
                    "INSERT INTO forward_targets (address_id, position, target) "
                    "VALUES (:id, :position, :target)"
                ),
                [{"id": address_id, "position": i, "target": t} for i, t in enumerate(targets)],
            )
            connection.execute(
                text("UPDATE addresses SET updated_at = CURRENT_TIMESTAMP WHERE id = :id"),
                {"id": address_id},
            )
        return {"id": address, "to": ",".join(targets)}

    return app


def app_from_environment() -> FastAPI:
    """A worker's app, from the arguments `main` put into the environment."""
    return create_bare_app(os.environ["BENCH_BARE_URL"], int(os.environ["BENCH_BARE_CUSTOMER"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--customer", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # The same uvicorn settings as `postmeister serve` (postmeister.server.run).
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": args.port,
        "log_level": "info",
        "server_header": False,
        "ssl_certfile": args.cert,
        "ssl_keyfile": args.key,
    }
    if args.workers == 1:
        uvicorn.run(create_bare_app(args.url, args.customer), **options)
        return
    os.environ["BENCH_BARE_URL"] = args.url
    os.environ["BENCH_BARE_CUSTOMER"] = str(args.customer)
    run_workers("bench.bare:app_from_environment", workers=args.workers, **options)


if __name__ == "__main__":
    main()
