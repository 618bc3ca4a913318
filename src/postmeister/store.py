"""Schema management: Alembic migrations, run programmatically."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from postmeister.db import normalise_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the schema at `url` up to the newest revision (idempotent)."""
    command.upgrade(alembic_config(url), "head")
