"""What the renderers are given: a complete, explicit description of one installation.

Renderers are pure functions of a `Site`; everything that depends on the machine (free ports,
the current directory, the environment) is resolved before a `Site` is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from postmeister.db import is_sqlite


@dataclass(frozen=True)
class SqliteDatabase:
    path: Path

    @property
    def dialect(self) -> str:
        return "sqlite"


@dataclass(frozen=True)
class PostgresDatabase:
    host: str
    port: int
    dbname: str
    user: str
    password: str | None

    @property
    def dialect(self) -> str:
        return "postgresql"


Database = SqliteDatabase | PostgresDatabase


class UnsupportedDatabaseError(ValueError):
    """The database URL names something Postfix and Dovecot cannot read."""


def database_from_url(url: str) -> Database:
    """The connection facts Postfix and Dovecot need, from a SQLAlchemy URL.

    Only a file-backed SQLite database or PostgreSQL over TCP can be shared with the mail
    servers; an in-memory SQLite database cannot.
    """
    parsed = make_url(url)
    if is_sqlite(url):
        if not parsed.database or parsed.database == ":memory:":
            raise UnsupportedDatabaseError("the data plane needs an SQLite database file")
        return SqliteDatabase(path=Path(parsed.database).resolve())
    if parsed.get_backend_name() != "postgresql":
        raise UnsupportedDatabaseError(f"the data plane cannot use {parsed.drivername}")
    return PostgresDatabase(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        dbname=parsed.database or "postgres",
        user=parsed.username or "postgres",
        password=parsed.password,
    )


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        host, _, port = text.rpartition(":")
        return cls(host=host.strip("[]") or "127.0.0.1", port=int(port))


@dataclass(frozen=True)
class Instance:
    """A private, self-contained Postfix + Dovecot pair living under one directory.

    Present only for `dataplane up`: then the renderer also writes complete main.cf, master.cf
    and dovecot.conf with their own queue, state, run and log directories and loopback ports.
    """

    root: Path
    listen: str
    smtp_port: int
    submission_port: int
    imap_port: int

    @property
    def postfix_queue(self) -> Path:
        return self.root / "postfix" / "queue"

    @property
    def postfix_data(self) -> Path:
        return self.root / "postfix" / "data"

    @property
    def dovecot_base(self) -> Path:
        return self.root / "run" / "dovecot"

    @property
    def dovecot_state(self) -> Path:
        return self.root / "state" / "dovecot"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    # Compiled rspamd regular expressions (hyperscan): a cache keyed by the rules' hashes, so
    # stacks on one machine may share it; compiling the stock rules takes seconds.
    rspamd_cache_dir: Path | None = None

    @property
    def milter_pid_file(self) -> Path:
        return self.root / "run" / "milter.pid"

    @property
    def rspamd_state(self) -> Path:
        return self.root / "state" / "rspamd"

    @property
    def rspamd_pid_file(self) -> Path:
        return self.root / "run" / "rspamd" / "rspamd.pid"

    @property
    def rspamd_hyperscan_cache(self) -> Path:
        return self.rspamd_cache_dir or self.rspamd_state


@dataclass(frozen=True)
class Tls:
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class Site:
    """One installation of the data plane, as the renderers see it.

    `config_dir` is where the rendered files will live on the mail server: the files name
    each other by absolute path, so render with the final location.
    """

    database: Database
    config_dir: Path
    hostname: str
    mail_root: Path
    mail_user: str
    sqlite_group: str
    lmtp: Endpoint
    milter: Endpoint
    sasl_socket: Path
    postfix_sasl_path: str
    tls: Tls | None = None
    instance: Instance | None = None
    # The numeric uid of mail_user, when known: Dovecot refuses mail uids below its
    # first_valid_uid (500), and system users usually have smaller ones.
    mail_uid: int | None = None
    # The zone whose local midnight opens and closes autoresponder windows. Dovecot runs
    # with it as TZ, so Sieve's `currentdate` reads the local date itself.
    timezone: str = "Europe/Berlin"
    # Dovecot's quota-status policy service, asked by Postfix at RCPT time.
    quota_status: Endpoint = Endpoint("127.0.0.1", 10030)
    # The Postmeister antispam milter on the SMTP port (per-recipient policy, asks rspamd).
    antispam_milter: Endpoint = Endpoint("127.0.0.1", 10031)
    # An rspamd "normal" worker (its HTTP scan protocol); Debian's rspamd listens here.
    rspamd: Endpoint = Endpoint("127.0.0.1", 11333)
    # Where Sieve sends autoreplies over SMTP; None: through the local sendmail.
    submission_host: Endpoint | None = None


@dataclass(frozen=True)
class RenderedFile:
    """One output file: path relative to the output directory, text, and file mode.

    Files that hold a database password are `secret` (mode 0640, group of the mail servers).
    """

    path: str
    content: str
    secret: bool = False
