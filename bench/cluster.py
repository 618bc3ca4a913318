"""Propagation across the cluster (issue 17): a change written through a controller behind
HAProxy, live on mail node 2 at the next SMTP/IMAP attempt there.

    .venv/bin/python -m bench.cluster [--changes N]

The topology is the placement test's (tests/e2e/two_nodes.py): two network namespaces, each
the installed data plane of one mail node on the standard ports, sharing one scratch
PostgreSQL database. In front of it, on this machine's loopback, two `postmeister serve`
processes (the controllers, plain HTTP, `behind_tls_proxy`) and HAProxy terminating TLS
(a test CA) and balancing them at random; it names the controller that answered in an
`X-Served-By` response header, so each row says how many changes went through which one.

Every change goes through HAProxy, and every check is made at node 2's address: a login
there for a mailbox homed on node 1 is proxied by node 2's Dovecot, a message for it is
relayed by node 2's Postfix over LMTP. The clock is bench/propagation.py's: from the API's
response to the end of the first attempt that shows the change. `N` changes of each kind
(default 200). Postfix's AUTH rate limit on node 2's submission port is lifted for the
benchmark's own client address (one client logging in 200 times a minute). Prints a
Markdown table, writes bench/results/cluster.json. Needs root (namespaces, the data plane)
and PostgreSQL (POSTMEISTER_TEST_PG_URL or 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from tests.e2e.installed import PORTS
from tests.e2e.two_nodes import Cluster, register_nodes, two_mail_nodes
from tests.support.haproxy import haproxy_config
from tests.support.tls import make_test_pki

from bench.common import RESULTS, Json, log, machine_info
from bench.mail import imap_login, maildir_has, rcpt_code, send, submission_code
from bench.propagation import SERVED_BY, Change, measure_kinds
from bench.servers import LOOPBACK, free_port
from bench.servers import _stop as stop

PASSWORD = "Harbor-Quill-Mango-Tundra-71"
NEW_PASSWORD = "Lantern-Oboe-Fjord-Pepper-38"


def _wait_ok(url: str, verify: object = False, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, verify=verify, timeout=2).status_code == 200:  # type: ignore[arg-type]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {seconds:.0f} s")


@contextmanager
def controllers_behind_haproxy(database_url: str, root: Path, token: str) -> Iterator[httpx.Client]:
    """Two controllers and HAProxy in front of them; yields a customer's client of HAProxy."""
    root.mkdir(parents=True, exist_ok=True)
    with ExitStack() as running:
        ports = [free_port(), free_port()]
        for number, port in enumerate(ports, start=1):
            env = {
                **os.environ,
                "POSTMEISTER_DATA_DIR": str(root / f"controller-{number}"),
                "POSTMEISTER_DATABASE_URL": database_url,
                "POSTMEISTER_HTTP__BEHIND_TLS_PROXY": "true",
            }
            with (root / f"controller-{number}.log").open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "postmeister.cli.main", "serve", "--host", LOOPBACK,
                     "--port", str(port), "--workers", "1"],
                    env=env, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            running.callback(stop, process, f"controller {number}")
        for port in ports:
            _wait_ok(f"http://{LOOPBACK}:{port}/healthz")
        pki = make_test_pki(root / "pki", hosts=(LOOPBACK,))
        pem = root / "haproxy.pem"
        pem.write_text(pki.server_cert.read_text() + pki.server_key.read_text())
        pem.chmod(0o600)
        proxy_port = free_port()
        config = root / "haproxy.cfg"
        config.write_text(
            haproxy_config(
                bind=f"{LOOPBACK}:{proxy_port}",
                pem=pem,
                controllers=[
                    (f"controller-{n}", f"{LOOPBACK}:{p}") for n, p in enumerate(ports, 1)
                ],
                balance="random",
                served_by=SERVED_BY,
            )
        )
        with (root / "haproxy.log").open("wb") as out:
            haproxy = subprocess.Popen(
                ["/usr/sbin/haproxy", "-db", "-f", str(config)],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        running.callback(stop, haproxy, "HAProxy")
        base = f"https://{LOOPBACK}:{proxy_port}"
        _wait_ok(f"{base}/healthz", verify=pki.client_context())
        client = httpx.Client(
            base_url=base,
            verify=pki.client_context(),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        running.callback(client.close)
        yield client


def _kinds(cluster: Cluster) -> dict[str, Callable[[int], Change]]:
    """bench/propagation.py's five kinds, each checked at node 2."""
    node2 = cluster.nodes["node2"]
    host, source = node2.host, node2.namespace.client()
    domain = cluster.first.stack.domain
    run = uuid.uuid4().hex[:6]
    stores = [plane.root / "vmail" for plane in cluster.nodes.values()]

    def address(kind: str, i: int) -> str:
        return f"c{run}{kind}{i}@{domain}"

    def create(api: httpx.Client, mailbox: str) -> None:
        name, _, _ = mailbox.partition("@")
        document = {"name": name, "domain": domain, "password": PASSWORD}
        answer = api.post("/mail/account/", json=document)
        if answer.status_code != 201:
            raise RuntimeError(f"creating {mailbox}: {answer.status_code} {answer.text[:300]}")

    def new_mailbox(i: int) -> Change:
        mailbox = address("n", i)
        name, _, _ = mailbox.partition("@")
        return Change(
            write=lambda api: api.post(
                "/mail/account/", json={"name": name, "domain": domain, "password": PASSWORD}
            ),
            seen=lambda: imap_login(PORTS["imap"], mailbox, PASSWORD, host=host),
        )

    def new_password(i: int) -> Change:
        mailbox = address("p", i)
        return Change(
            before=lambda api: create(api, mailbox),
            write=lambda api: api.post(
                f"/mail/account/{mailbox}/set_password/", json={"password": NEW_PASSWORD}
            ),
            seen=lambda: imap_login(PORTS["imap"], mailbox, NEW_PASSWORD, host=host),
        )

    def deleted_account(i: int) -> Change:
        mailbox = address("d", i)
        return Change(
            before=lambda api: create(api, mailbox),
            write=lambda api: api.delete(f"/mail/account/{mailbox}/"),
            seen=lambda: rcpt_code(PORTS["smtp"], mailbox, host=host, source=source) == 550,
        )

    def new_alias_target(i: int) -> Change:
        alias, old, new = address("a", i), address("o", i), address("t", i)
        token = f"bench-{run}-{i}"

        def before(api: httpx.Client) -> None:
            create(api, old)
            create(api, new)
            name, _, _ = alias.partition("@")
            answer = api.post("/mail/alias/", json={"name": name, "domain": domain, "to": old})
            if answer.status_code != 201:
                raise RuntimeError(f"creating {alias}: {answer.status_code} {answer.text[:300]}")

        return Change(
            before=before,
            write=lambda api: api.put(f"/mail/alias/{alias}/", json={"to": new}),
            then=lambda: send(PORTS["smtp"], alias, token, host=host, source=source),
            # Delivered to the target's home, whichever node that is.
            seen=lambda: any(maildir_has(store, new, token) for store in stores),
        )

    def submission_disabled(i: int) -> Change:
        mailbox = address("s", i)
        return Change(
            before=lambda api: create(api, mailbox),
            write=lambda api: api.post(f"/mail/account/{mailbox}/disable_submission/"),
            seen=lambda: (
                submission_code(PORTS["submission"], mailbox, PASSWORD, host=host, source=source)
                == 554
            ),
        )

    return {
        "new mailbox → IMAP LOGIN at node 2 works": new_mailbox,
        "new password → IMAP LOGIN at node 2 with it works": new_password,
        "deleted account → SMTP RCPT at node 2 550": deleted_account,
        "new alias target → next message via node 2 lands there": new_alias_target,
        "submission disabled → submission RCPT at node 2 554": submission_disabled,
    }


def _exempt_from_auth_rate_limit(cluster: Cluster) -> None:
    """The installed submission service allows a client address a few AUTH commands a
    minute (brute-force protection); the submission kind makes 200 logins from one address
    in about a minute, as no real client does. Exempt the benchmark's own address on node 2
    (Postfix's smtpd_client_event_limit_exceptions) so that the figure is propagation, not
    the rate limit."""
    node2 = cluster.nodes["node2"]
    run = node2.namespace.run
    exception = f"smtpd_client_event_limit_exceptions = {node2.namespace.client()}/32"
    run("/usr/sbin/postconf", "-e", exception)
    run("/usr/sbin/postfix", "reload")


def table(rows: list[Json]) -> str:
    lines = [
        "| change (written via HAProxy, seen at mail node 2) | p50 | p99 | first try "
        "| not seen | controllers |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        figures = row["propagation"]
        served_by = sorted(row.get("served_by", {}).items())
        served = ", ".join(f"{name} {count}" for name, count in served_by)
        lines.append(
            f"| {row['change']} | {figures['p50_ms']:.1f} ms | {figures['p99_ms']:.1f} ms "
            f"| {row['first_try_share'] * 100:.0f} % | {row['not_seen_within_10s']} | {served} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--changes", type=int, default=200, help="changes of each kind")
    parser.add_argument("--output", type=Path, default=RESULTS / "cluster.json")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench.cluster needs root: network namespaces and the data plane")
    started = time.monotonic()
    machine = machine_info()
    log("starting two mail nodes, two controllers and HAProxy")
    with two_mail_nodes() as cluster:
        register_nodes(cluster)
        _exempt_from_auth_rate_limit(cluster)
        token = cluster.first.stack.tenant.token
        with controllers_behind_haproxy(
            cluster.database_url, cluster.first.root / "controllers", token
        ) as api:
            log(f"measuring {args.changes} changes of each kind")
            rows = measure_kinds(api, _kinds(cluster), args.changes)
    report: Json = {
        "machine": machine,
        "changes_per_kind": args.changes,
        "results": rows,
        "duration_seconds": round(time.monotonic() - started, 1),
        "table_markdown": table(rows),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(report["table_markdown"])
    log(f"wrote {args.output}")


if __name__ == "__main__":
    main()
