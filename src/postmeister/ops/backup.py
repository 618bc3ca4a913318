"""Backup and restore: a consistent copy of the database and, optionally, the mail store.

A backup is a directory:

    manifest.json       format, versions, schema revision, row counts, SHA-256 of each file
    database.sqlite3    SQLite: a copy made with SQLite's online backup API, or
    database.pgdump     PostgreSQL: `pg_dump --format=custom`
    mail.tar            the mail store (Maildirs), when asked for

**Consistency while everything runs.** SQLite: the copy is taken inside one read
transaction on the source, so it is the database at one instant (WAL mode: writers go on,
and the copy is never restarted by them). PostgreSQL: one REPEATABLE READ transaction
exports its snapshot; `pg_dump --snapshot` dumps exactly that snapshot, and the manifest's
schema revision and row counts are read from it too. The mail store is copied file by file:
Maildir never changes a message file in place, so every copied message is whole, but one
delivered, moved or deleted during the copy may be missing or present (Dovecot's index
files are rebuilt from the messages when they disagree). Files in `tmp/` (deliveries in
progress) and Dovecot's lock files are left out.

**Restore** checks everything before it writes anything: the manifest's format, every
file's checksum (a tampered or damaged backup is refused), that the schema revision is one
this Postmeister knows (a backup from a newer version is refused; an older one is migrated
after the restore), that the database kind matches, and that the target is empty (an SQLite
file that does not exist or is empty; a PostgreSQL database without tables; an empty or
missing mail store). After restoring it compares the row counts with the manifest.

Not in a backup: the configuration (environment, rendered data-plane files) and the TLS
key; they belong to the operator's configuration management.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import pwd
import sqlite3
import stat
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url

from postmeister.config import Settings
from postmeister.db import create_private_file, make_engine, normalise_url, sqlite_file
from postmeister.models import Base
from postmeister.store import alembic_config, migrate

FORMAT: Final = 1
MANIFEST: Final = "manifest.json"
SQLITE_FILE: Final = "database.sqlite3"
PG_FILE: Final = "database.pgdump"
MAIL_FILE: Final = "mail.tar"
# Pages per step of SQLite's backup: 4 MiB at the default page size, then a progress line.
_SQLITE_STEP_PAGES: Final = 1024
_MAIL_PROGRESS_EVERY: Final = 1000
_CHUNK: Final = 1 << 20

Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore cannot be made; the message says why and what to do."""


class BackupRefused(BackupError):
    """A restore that would be wrong: tampered files, a newer schema, a non-empty target."""


def _quiet(_message: str) -> None:
    pass


# ------------------------------------------------------------------------------- backup


def create_backup(
    settings: Settings,
    out: Path,
    *,
    mail_root: Path | None = None,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Write a backup of the configured database (and of `mail_root`, if given) to `out`,
    which must not exist or be empty; returns the manifest."""
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: give a new directory for the backup")
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out, 0o700)  # the copy holds password hashes, like the database
    url = normalise_url(settings.resolved_database_url)
    database = sqlite_file(url)
    if database is not None:
        progress(f"copying SQLite database {database}")
        db_info = _backup_sqlite(database, out / SQLITE_FILE, progress)
    elif make_url(url).get_backend_name() == "postgresql":
        progress(f"dumping PostgreSQL database {make_url(url).database}")
        db_info = _backup_postgres(url, out / PG_FILE, progress)
    else:
        raise BackupError(f"cannot back up {make_url(url).get_backend_name()} databases")
    mail_info = None
    if mail_root is not None:
        progress(f"copying mail store {mail_root}")
        mail_info = _backup_mail(mail_root, out / MAIL_FILE, progress)
    files = {}
    for name in (db_info["file"], *([MAIL_FILE] if mail_info else [])):
        progress(f"checksum of {name}")
        files[name] = {"sha256": sha256_of(out / name), "bytes": (out / name).stat().st_size}
    manifest = {
        "format": FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "postmeister_version": version("postmeister"),
        "python_version": platform.python_version(),
        "database": db_info,
        "mail_store": mail_info,
        "files": files,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    progress(f"backup complete in {out}")
    return manifest


def _counts(run: Callable[[str], Any]) -> dict[str, int]:
    return {
        # Table names come from the models, never from input.
        table.name: int(run(f'SELECT count(*) FROM "{table.name}"'))  # noqa: S608
        for table in Base.metadata.sorted_tables
    }


def _backup_sqlite(source: Path, target: Path, progress: Progress) -> dict[str, Any]:
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    create_private_file(target)
    with (
        contextlib.closing(sqlite3.connect(source, isolation_level=None)) as src,
        contextlib.closing(sqlite3.connect(target, isolation_level=None)) as dst,
    ):
        src.execute(f"PRAGMA busy_timeout={5000}")
        # One read transaction for the whole copy: a snapshot that writers cannot change.
        src.execute("BEGIN")
        revision = _sqlite_revision(src)
        counts = _counts(lambda sql: src.execute(sql).fetchone()[0])

        def step(_status: int, remaining: int, total: int) -> None:
            progress(f"  {total - remaining}/{total} pages")

        src.backup(dst, pages=_SQLITE_STEP_PAGES, progress=step)
        src.execute("COMMIT")
        # Self-contained: no -wal file next to the copy.
        dst.execute("PRAGMA journal_mode=DELETE")
        check = dst.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the copy of {source} failed SQLite's check: {check}")
        engine_version = sqlite3.sqlite_version
    return {
        "dialect": "sqlite",
        "file": SQLITE_FILE,
        "schema_revision": revision,
        "engine_version": f"SQLite {engine_version}",
        "row_counts": counts,
    }


def _sqlite_revision(connection: sqlite3.Connection) -> str:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the database has no schema revision ({exc}): not migrated?") from exc
    if row is None:
        raise BackupError("the database has no schema revision: not migrated?")
    return str(row[0])


@dataclass(frozen=True)
class _Pg:
    """libpq connection facts of a URL; the password travels in the environment only."""

    host: str
    port: int
    user: str
    dbname: str
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> _Pg:
        parsed = make_url(url)
        return cls(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            dbname=parsed.database or "postgres",
            password=parsed.password,
        )

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.dbname,
        }
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env


def _pg_tool(name: str) -> str:
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return name  # from PATH


def _run_streaming(command: list[str], env: dict[str, str], progress: Progress) -> None:
    """Run a PostgreSQL tool, passing its `--verbose` lines on as progress."""
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    last: list[str] = []
    for line in process.stderr:
        line = line.rstrip()
        progress(f"  {line}")
        last = [*last[-9:], line]
    if process.wait() != 0:
        tail = "\n".join(last)
        raise BackupError(f"{Path(command[0]).name} failed ({process.returncode}):\n{tail}")


def _backup_postgres(url: str, target: Path, progress: Progress) -> dict[str, Any]:
    import psycopg

    pg = _Pg.from_url(url)
    try:
        connection = psycopg.connect(
            host=pg.host, port=pg.port, user=pg.user, dbname=pg.dbname, password=pg.password,
            connect_timeout=10, autocommit=True,
        )  # fmt: skip
    except psycopg.Error as exc:
        raise BackupError(f"cannot connect to the database: {exc}") from exc
    with connection:
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = connection.execute("SELECT pg_export_snapshot()").fetchone()
        assert snapshot is not None
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except psycopg.Error as exc:
            raise BackupError(f"the database has no schema revision ({exc})") from exc
        if row is None:
            raise BackupError("the database has no schema revision: not migrated?")
        counts = _counts(lambda sql: connection.execute(sql).fetchone()[0])  # type: ignore[index]
        server = connection.execute("SHOW server_version").fetchone()
        dump = _pg_tool("pg_dump")
        tool_version = subprocess.run(
            [dump, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        create_private_file(target)
        # pg_dump reads the exported snapshot while this transaction holds it open.
        _run_streaming(
            [dump, "--format=custom", "--no-owner", "--no-privileges", "--verbose",
             f"--snapshot={snapshot[0]}", f"--file={target}"],
            pg.env(), progress,
        )  # fmt: skip
        connection.execute("COMMIT")
    return {
        "dialect": "postgresql",
        "file": PG_FILE,
        "schema_revision": str(row[0]),
        "engine_version": f"PostgreSQL {server[0] if server else '?'}",
        "dump_tool": tool_version,
        "row_counts": counts,
    }


def _walk(root: Path) -> Iterator[Path]:
    """Every directory and file under `root`, leaving out the contents of Maildir `tmp/`
    and Dovecot's lock files (`dovecot-uidlist.lock`, ...): a lock held by a delivery on
    this machine while the copy ran would make Dovecot wait for it on the restored one."""
    for directory, subdirectories, files in os.walk(root):
        here = Path(directory)
        yield here
        if here.name == "tmp" and here != root:
            subdirectories[:] = []
            continue
        subdirectories.sort()
        for name in sorted(files):
            if not name.endswith(".lock"):
                yield here / name


def _backup_mail(mail_root: Path, target: Path, progress: Progress) -> dict[str, Any]:
    if not mail_root.is_dir():
        raise BackupError(f"no mail store at {mail_root}")
    create_private_file(target)
    files = size = vanished = 0
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        for path in _walk(mail_root):
            arcname = "mail/" + str(path.relative_to(mail_root)) if path != mail_root else "mail"
            try:
                archive.add(path, arcname=arcname, recursive=False)
            except FileNotFoundError:
                vanished += 1  # moved or expunged while we walked
                continue
            if not path.is_dir():
                files += 1
                with contextlib.suppress(FileNotFoundError):
                    size += path.lstat().st_size
                if files % _MAIL_PROGRESS_EVERY == 0:
                    progress(f"  {files} files, {size / 2**20:.1f} MiB")
    progress(f"  {files} files, {size / 2**20:.1f} MiB")
    return {"file": MAIL_FILE, "files": files, "bytes": size, "vanished_during_copy": vanished}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------------------- restore


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of the backup in `directory`, after checking every file's checksum."""
    try:
        manifest: dict[str, Any] = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError as exc:
        raise BackupRefused(f"{directory} has no {MANIFEST}: not a Postmeister backup") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BackupRefused(f"{directory / MANIFEST} is not valid JSON") from exc
    if manifest.get("format") != FORMAT:
        raise BackupRefused(
            f"backup format {manifest.get('format')!r} is not the one this Postmeister "
            f"reads ({FORMAT})"
        )
    files = manifest.get("files")
    database = manifest.get("database")
    if not isinstance(files, dict) or not isinstance(database, dict):
        raise BackupRefused(f"{MANIFEST} lists no files")
    if database.get("file") not in files:
        raise BackupRefused(f"{MANIFEST} lists no checksum for the database")
    for name, expected in files.items():
        path = directory / name
        if Path(name).name != name or not path.is_file():
            raise BackupRefused(f"{name} is missing from the backup")
        if sha256_of(path) != expected.get("sha256"):
            raise BackupRefused(
                f"{name} does not match its checksum in {MANIFEST}: the backup was changed "
                "or damaged"
            )
    return manifest


def _known_revisions() -> tuple[set[str], str]:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    known = {revision.revision for revision in scripts.walk_revisions()}
    return known, ",".join(sorted(scripts.get_heads()))


def check_schema(manifest: dict[str, Any]) -> None:
    revision = manifest["database"].get("schema_revision")
    known, head = _known_revisions()
    if revision not in known:
        raise BackupRefused(
            f"the backup has schema revision {revision!r}, which this Postmeister does not "
            f"know (its newest is {head}): it comes from a newer version; restore it with "
            "that version or a later one"
        )


def restore_backup(
    settings: Settings,
    directory: Path,
    *,
    mail_root: Path | None = None,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Restore the backup in `directory` into the configured (empty) database and, when the
    backup has one and `mail_root` is given, the mail store; returns the manifest."""
    progress(f"checking {directory}")
    manifest = read_manifest(directory)
    check_schema(manifest)
    url = normalise_url(settings.resolved_database_url)
    database = manifest["database"]
    target_file = sqlite_file(url)
    target_kind = "sqlite" if target_file is not None else make_url(url).get_backend_name()
    if database["dialect"] != target_kind:
        raise BackupRefused(
            f"the backup holds a {database['dialect']} database; the configured database "
            f"is {target_kind}"
        )
    if target_file is not None:
        _require_empty_sqlite(target_file)
    else:
        _require_empty_postgres(url)
    restore_mail = manifest.get("mail_store") is not None and mail_root is not None
    if restore_mail:
        assert mail_root is not None
        if mail_root.exists() and any(mail_root.iterdir()):
            raise BackupRefused(f"the mail store {mail_root} is not empty")
    if target_file is not None:
        progress(f"restoring SQLite database into {target_file}")
        _restore_sqlite(directory / SQLITE_FILE, target_file, progress)
    else:
        progress(f"restoring PostgreSQL database {make_url(url).database}")
        pg = _Pg.from_url(url)
        _run_streaming(
            [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
             "--single-transaction", "--verbose", f"--dbname={pg.dbname}",
             str(directory / PG_FILE)],
            pg.env(), progress,
        )  # fmt: skip
    _compare_counts(url, database.get("row_counts") or {})
    progress("bringing the schema up to date")
    migrate(url)
    if restore_mail:
        assert mail_root is not None
        progress(f"restoring mail store into {mail_root}")
        _restore_mail(directory / MAIL_FILE, mail_root, settings.dataplane.mail_user, progress)
    progress("restore complete")
    return manifest


def _require_empty_sqlite(path: Path) -> None:
    for suffix in ("", "-wal"):
        candidate = Path(f"{path}{suffix}")
        if candidate.exists() and candidate.stat().st_size > 0:
            raise BackupRefused(
                f"{candidate} exists and is not empty: restore into a new data folder"
            )


def _require_empty_postgres(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            tables = connection.execute(
                text(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                )
            ).scalar_one()
    except Exception as exc:
        raise BackupError(
            f"cannot open the target database ({type(exc).__name__}): create it first "
            "(createdb) and check POSTMEISTER_DATABASE_URL"
        ) from exc
    finally:
        engine.dispose()
    if tables:
        raise BackupRefused(
            f"the target database {make_url(url).database} is not empty ({tables} tables): "
            "restore into a new, empty database"
        )


def _restore_sqlite(source: Path, target: Path, progress: Progress) -> None:
    create_private_file(target)  # 0600 before any byte is written
    with (
        contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
        contextlib.closing(sqlite3.connect(target, isolation_level=None)) as dst,
    ):

        def step(_status: int, remaining: int, total: int) -> None:
            progress(f"  {total - remaining}/{total} pages")

        src.backup(dst, pages=_SQLITE_STEP_PAGES, progress=step)
        dst.execute("PRAGMA journal_mode=WAL")


def _compare_counts(url: str, expected: dict[str, int]) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            found = _counts(lambda sql: connection.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()
    wrong = {t: (n, found.get(t)) for t, n in expected.items() if found.get(t) != n}
    if wrong:
        raise BackupError(f"the restored database does not have the backed-up rows: {wrong}")


def _restore_mail(archive_path: Path, mail_root: Path, mail_user: str, progress: Progress) -> None:
    mail_root.mkdir(parents=True, exist_ok=True)
    os.chmod(mail_root, 0o700)
    owner = None
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(mail_user)
        owner = (entry.pw_uid, entry.pw_gid)
    count = 0
    with tarfile.open(archive_path, "r") as archive:
        for member in archive:
            if member.name != "mail" and not member.name.startswith("mail/"):
                raise BackupRefused(f"{MAIL_FILE} holds {member.name!r}, outside the mail store")
            if member.name == "mail":
                continue  # the mail root itself: created above
            member.name = member.name[len("mail/") :]
            archive.extract(member, mail_root, filter="tar")
            count += 1
            if count % _MAIL_PROGRESS_EVERY == 0:
                progress(f"  {count} entries")
    if owner is not None and os.geteuid() == 0:
        # The mail user's ids may differ on this machine: the files are the mail user's.
        for path in [mail_root, *mail_root.rglob("*")]:
            if not stat.S_ISLNK(path.lstat().st_mode):
                os.chown(path, *owner)
    progress(f"  {count} entries")
