"""HAProxy in front of several controllers, as an operator runs it: TLS at the proxy,
`X-Forwarded-Proto: https` to the controllers, a health check on `/healthz`.

/healthz, not /readyz: with no database primary every controller is unready, and HAProxy
would answer 503 itself; the controllers' own 503 says what is wrong
(database-unavailable). Used by the cluster database test and `bench.cluster`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def haproxy_config(
    *,
    bind: str,
    pem: Path,
    controllers: Sequence[tuple[str, str]],
    balance: str = "roundrobin",
    served_by: str | None = None,
) -> str:
    """The configuration of a proxy listening on `bind` ("address:port") with the
    certificate and key in `pem`, balancing over `controllers` ((name, "address:port")).
    `served_by`: a response header naming the controller that answered."""
    servers = "\n".join(
        f"    server {name} {address} check inter 1s fall 2 rise 1" for name, address in controllers
    )
    header = f"    http-response set-header {served_by} %[srv_name]\n" if served_by else ""
    return f"""
global
    maxconn 256
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend api
    bind {bind} ssl crt {pem}
    http-request set-header X-Forwarded-Proto https
{header}    default_backend controllers
backend controllers
    balance {balance}
    option httpchk
    http-check send meth GET uri /healthz
{servers}
"""
