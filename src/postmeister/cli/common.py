"""What every CLI command shares: settings, one unit of work, JSON output, error display."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session

from postmeister.config import Settings
from postmeister.db import make_engine, make_session_factory, unit_of_work
from postmeister.errors import DomainError, InvalidInput
from postmeister.ops import context
from postmeister.store import create_data_dir, migrate


def settings_for(data_dir: Path | None = None) -> Settings:
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    return settings


def prepare(settings: Settings) -> None:
    create_data_dir(settings.data_dir)
    migrate(settings.resolved_database_url)


@contextmanager
def session_for(settings: Settings) -> Iterator[Session]:
    """One transaction for one command; domain errors become a clear message and exit 1.

    What the command changes is the CLI's in the audit trail: the operating-system user
    and the command line's verbs (never its arguments: they may hold a password)."""
    prepare(settings)
    engine = make_engine(settings.resolved_database_url)
    click_context = click.get_current_context(silent=True)
    command = click_context.command_path if click_context is not None else "postmeister"
    try:
        with (
            context.acting("cli", origin_id=_os_user(), label=command),
            unit_of_work(make_session_factory(engine)) as session,
        ):
            yield session
    except DomainError as exc:
        details = ""
        if isinstance(exc, InvalidInput):
            details = "".join(f"\n  {p.field}: {p.message}" for p in exc.problems)
        raise click.ClickException(f"{exc.message}{details}" if details else str(exc)) from exc
    finally:
        engine.dispose()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (containers)
        return f"uid {os.getuid()}"


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str, ensure_ascii=False))
