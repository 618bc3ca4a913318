"""Section 1: API throughput and latency, Postmeister beside a bare FastAPI endpoint.

Both are real uvicorn processes over HTTPS on loopback (`postmeister serve` as shipped, and
`bench.bare` with the same settings and certificate), driven by wrk. For each operation the
two are measured one after the other in the same run, `rounds` times in alternating order;
each side reports its best round (noise on a shared machine only ever slows a run down).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bench.common import Json, log, process_cpu_seconds
from bench.http_load import Operation, run_wrk
from bench.load import FORWARDS, MAILBOXES, Shape, Tenant, domain_name
from bench.servers import Server

PAGE_SIZE = 50  # the hosting dialect's default page size
JSON = "application/json"
JSONAPI = "application/vnd.api+json"
NEW_PASSWORD = "Fjord-Lantern-Quasar-Velvet-83"  # passes the default password policy

_GET = """
  local path = string.format("{prefix}/account/user%03d@%s/",
    math.random(0, mailboxes - 1), dom(math.random(0, domains - 1)))
  return wrk.format("GET", path)"""
_CREATE = """
  local body = string.format('{{"name": "n%s%d", "domain": "%s", "password": "%s"}}',
    tag, counter, dom(math.random(0, domains - 1)), password)
  return wrk.format("POST", "{prefix}/account/", nil, body)"""
# Aliases are visited in a scrambled but collision-free order (a prime stride through all of
# them), so that concurrent requests never update the same alias: two transactions replacing
# the same alias's targets at once would make one of them fail, on either side.
_UPDATE = """
  local n = (start + counter * 7919) % (domains * forwards)
  local d = dom(math.floor(n / forwards))
  local body = string.format('{{"to": "user%03d@%s"}}', math.random(0, mailboxes - 1), d)
  return wrk.format("PUT", string.format("{prefix}/alias/alias%03d@%s/", n % forwards, d),
    nil, body)"""
_LIST_OURS = """
  local after = math.random(first_id - 1, last_id - page_size)
  return wrk.format("GET", string.format(
    "/email-addresses?page%%5Bsize%%5D=%d&page%%5Bafter%%5D=%d", page_size, after))"""
_LIST_BARE = """
  local after = math.random(first_id - 1, last_id - page_size)
  return wrk.format("GET", string.format("/bare/addresses?size=%d&after=%d", page_size, after))"""


@dataclass(frozen=True)
class Pair:
    """One operation as Postmeister serves it and as the bare baseline serves it."""

    label: str
    ours: Operation
    bare: Operation


PAIRS = (
    Pair(
        "get one address (GET /mail/account/{id}/)",
        Operation("get", "GET", _GET.format(prefix="/mail")),
        Operation("get", "GET", _GET.format(prefix="/bare")),
    ),
    Pair(
        f"list a page of {PAGE_SIZE} (GET /email-addresses, random keyset page)",
        Operation("list", "GET", _LIST_OURS, accept=JSONAPI),
        Operation("list", "GET", _LIST_BARE),
    ),
    Pair(
        "create a mailbox, argon2id (POST /mail/account/)",
        Operation("create", "POST", _CREATE.format(prefix="/mail"), content_type=JSON),
        Operation("create", "POST", _CREATE.format(prefix="/bare"), content_type=JSON),
    ),
    Pair(
        "update an alias (PUT /mail/alias/{id}/)",
        Operation("update", "PUT", _UPDATE.format(prefix="/mail"), content_type=JSON),
        Operation("update", "PUT", _UPDATE.format(prefix="/bare"), content_type=JSON),
    ),
)


@dataclass(frozen=True)
class Load:
    seconds: int
    warmup_seconds: int
    rounds: int
    connections: int


def _sanity_check(server: Server, token: str | None) -> None:
    """One request of each kind must succeed, or the figures would measure error pages."""
    prefix = "/mail" if server.name == "postmeister" else "/bare"
    d = domain_name(0)
    with server.client(token) as client:
        checks = [
            client.get(f"{prefix}/account/user000@{d}/"),
            client.put(f"{prefix}/alias/alias000@{d}/", json={"to": f"user001@{d}"}),
            client.post(
                f"{prefix}/account/",
                json={"name": f"sanity{server.pid}", "domain": d, "password": NEW_PASSWORD},
            ),
        ]
        if server.name == "postmeister":
            checks.append(client.get("/email-addresses", headers={"Accept": JSONAPI}))
        else:
            checks.append(client.get("/bare/addresses"))
    for response in checks:
        if response.status_code >= 300:
            raise RuntimeError(
                f"{server.name}: {response.request.method} {response.request.url} answered "
                f"{response.status_code}: {response.text[:300]}"
            )


def variables(shape: Shape, id_range: tuple[int, int]) -> dict[str, int | str]:
    """What the Lua request functions need to know about the loaded data."""
    return {
        "domains": shape.domains,
        "mailboxes": MAILBOXES,
        "forwards": FORWARDS,
        "password": NEW_PASSWORD,
        "page_size": PAGE_SIZE,
        "first_id": id_range[0],
        "last_id": id_range[1],
        "start": random.randrange(shape.domains * FORWARDS),
    }


def measure(
    *,
    ours: Server,
    bare: Server,
    tenant: Tenant,
    shape: Shape,
    id_range: tuple[int, int],
    load: Load,
) -> list[Json]:
    """Every operation on a database holding `shape`; one row per operation."""
    values = variables(shape, id_range)
    _sanity_check(ours, tenant.token)
    _sanity_check(bare, None)
    rows: list[Json] = []
    for pair in PAIRS:
        best: dict[str, Json] = {}
        sides = [(ours, pair.ours, tenant.token), (bare, pair.bare, None)]
        for round_number in range(load.rounds):
            order = sides if round_number % 2 == 0 else sides[::-1]
            for server, operation, token in order:
                if round_number == 0 and load.warmup_seconds:
                    run_wrk(
                        server.base_url,
                        operation,
                        token=token,
                        variables=values,
                        seconds=load.warmup_seconds,
                        connections=load.connections,
                    )
                cpu_before = process_cpu_seconds(server.pid)
                figures = run_wrk(
                    server.base_url,
                    operation,
                    token=token,
                    variables=values,
                    seconds=load.seconds,
                    connections=load.connections,
                )
                cpu = process_cpu_seconds(server.pid) - cpu_before
                figures["server_cpu_ms_per_request"] = (
                    round(cpu * 1000 / figures["requests"], 2) if figures["requests"] else None
                )
                if server.name not in best or figures["rps"] > best[server.name]["rps"]:
                    best[server.name] = figures
        ours_rps, bare_rps = best["postmeister"]["rps"], best["bare"]["rps"]
        row = {
            "operation": pair.ours.name,
            "label": pair.label,
            "addresses": shape.addresses,
            "postmeister": best["postmeister"],
            "bare": best["bare"],
            "overhead_ratio": round(bare_rps / ours_rps, 2) if ours_rps else None,
        }
        rows.append(row)
        log(
            f"  {pair.ours.name:<7} {shape.addresses:>9,} addresses: "
            f"postmeister {ours_rps:>7.1f}/s p50 {best['postmeister']['p50_ms']:.1f} "
            f"p99 {best['postmeister']['p99_ms']:.1f} ms | bare {bare_rps:>7.1f}/s "
            f"| x{row['overhead_ratio']}"
        )
    return rows
