"""Alembic environment: the URL comes from the caller (see `postmeister.store.migrate`)."""

from __future__ import annotations

from alembic import context

from postmeister.db import is_sqlite, make_engine
from postmeister.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "postmeister.store.migrate sets sqlalchemy.url"

engine = make_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=is_sqlite(url),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
