"""`postmeister serve`: migrations, first-start bootstrap, then uvicorn over HTTPS.

Logging goes through `postmeister.ops.logs` (JSON lines by default); uvicorn's own access
log is off, the controller writes its own access line with the request id
(`postmeister.api.observe`)."""

from __future__ import annotations

import logging

import click
import uvicorn

from postmeister.api.app import create_app
from postmeister.config import Settings
from postmeister.db import make_engine, make_session_factory, unit_of_work
from postmeister.domain.tokens.service import any_token_exists, create_token
from postmeister.ops.logs import configure_logging
from postmeister.store import create_data_dir, migrate
from postmeister.tls import ensure_self_signed, fingerprint

log = logging.getLogger("postmeister")


def bootstrap_admin_token(settings: Settings) -> str | None:
    """On a database without any token, create one admin token and return its secret."""
    engine = make_engine(settings.resolved_database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            if any_token_exists(session):
                return None
            return create_token(session, admin=True, label="bootstrap").secret
    finally:
        engine.dispose()


def run(settings: Settings) -> None:
    configure_logging(settings.logging)
    create_data_dir(settings.data_dir)
    migrate(settings.resolved_database_url)
    secret = bootstrap_admin_token(settings)
    if secret is not None:
        # Printed once to the operator's terminal, never logged: it is not stored anywhere.
        click.echo(f"bootstrap admin token (shown once, store it now): {secret}")
    http = settings.http
    ssl: dict[str, str] = {}
    if not http.behind_tls_proxy:
        if http.tls_cert_file and http.tls_key_file:
            cert, key = http.tls_cert_file, http.tls_key_file
        else:
            cert, key, created = ensure_self_signed(settings.data_dir / "tls")
            verb = "created" if created else "using"
            click.echo(f"{verb} self-signed certificate {cert} (SHA-256 {fingerprint(cert)})")
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    scheme = "http (behind a TLS proxy)" if http.behind_tls_proxy else "https"
    click.echo(f"serving {scheme} on {http.host}:{http.port}", err=True)
    uvicorn.run(
        create_app(settings),
        host=http.host,
        port=http.port,
        log_level=settings.logging.level.lower(),
        log_config=None,
        access_log=False,
        server_header=False,
        **ssl,  # type: ignore[arg-type]
    )
