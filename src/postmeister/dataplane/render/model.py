"""What the renderers are given: a complete, explicit description of one installation.

Renderers are pure functions of a `Site`; everything that depends on the machine (free ports,
the current directory, the environment) is resolved before a `Site` is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from postmeister.dataplane.authpolicy import Limits
from postmeister.db import is_sqlite


@dataclass(frozen=True)
class SqliteDatabase:
    path: Path

    @property
    def dialect(self) -> str:
        return "sqlite"


@dataclass(frozen=True)
class PostgresDatabase:
    """PostgreSQL, on one host or on several (a primary and its standbys, in the order the
    URL lists them): `host`/`port` is the first, `more_hosts` the others.

    `target_session_attrs` is the URL's (libpq's `read-write`, `primary`, ...), if any. A
    component that writes asks for `writer_session_attrs`; one that only reads may use any
    host that answers (see docs/cluster.md for what each component does).
    """

    host: str
    port: int
    dbname: str
    user: str
    password: str | None
    more_hosts: tuple[Endpoint, ...] = ()
    target_session_attrs: str | None = None

    @property
    def dialect(self) -> str:
        return "postgresql"

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return (Endpoint(self.host, self.port), *self.more_hosts)

    @property
    def libpq_host(self) -> str:
        """libpq's `host`: one name, or several separated by commas (libpq 10+)."""
        return ",".join(endpoint.host for endpoint in self.endpoints)

    @property
    def libpq_port(self) -> str:
        """libpq's `port`, one per host of `libpq_host`."""
        return ",".join(str(endpoint.port) for endpoint in self.endpoints)

    @property
    def writer_session_attrs(self) -> str | None:
        """What a writer's connection asks for: with several hosts, the writable one
        (`read-write` unless the URL names `primary`, the stricter form); with one host,
        only what the URL says (usually nothing)."""
        if self.target_session_attrs in ("read-write", "primary"):
            return self.target_session_attrs
        return "read-write" if self.more_hosts else self.target_session_attrs


Database = SqliteDatabase | PostgresDatabase


class UnsupportedDatabaseError(ValueError):
    """The database URL names something Postfix and Dovecot cannot read."""


def database_from_url(url: str) -> Database:
    """The connection facts Postfix and Dovecot need, from a SQLAlchemy URL.

    Only a file-backed SQLite database or PostgreSQL over TCP can be shared with the mail
    servers; an in-memory SQLite database cannot. PostgreSQL may name several hosts in
    either of psycopg's spellings: `?host=a:p&host=b:q` or `?host=a,b&port=p,q`.
    """
    parsed = make_url(url)
    if is_sqlite(url):
        if not parsed.database or parsed.database == ":memory:":
            raise UnsupportedDatabaseError("the data plane needs an SQLite database file")
        return SqliteDatabase(path=Path(parsed.database).resolve())
    if parsed.get_backend_name() != "postgresql":
        raise UnsupportedDatabaseError(f"the data plane cannot use {parsed.drivername}")
    first, *more = _endpoints(parsed.host, parsed.port, parsed.query)
    attrs = parsed.query.get("target_session_attrs")
    return PostgresDatabase(
        host=first.host,
        port=first.port,
        dbname=parsed.database or "postgres",
        user=parsed.username or "postgres",
        password=parsed.password,
        more_hosts=tuple(more),
        target_session_attrs=attrs if isinstance(attrs, str) else None,
    )


def _values(value: str | tuple[str, ...] | None) -> list[str]:
    """A query parameter given once, repeated, or as a comma-separated list: its items."""
    given = (value,) if isinstance(value, str) else value or ()
    return [item.strip() for text in given for item in text.split(",") if item.strip()]


def _endpoints(
    host: str | None, port: int | None, query: Mapping[str, str | tuple[str, ...]]
) -> list[Endpoint]:
    hosts = _values(query.get("host")) or [host or "127.0.0.1"]
    ports = [int(item) for item in _values(query.get("port"))] or [port or 5432]
    if len(ports) not in (1, len(hosts)):
        raise UnsupportedDatabaseError(
            f"the database URL names {len(hosts)} hosts but {len(ports)} ports"
        )
    endpoints = []
    for number, name in enumerate(hosts):
        default = ports[number if len(ports) > 1 else 0]
        # `host=a:p` (psycopg's repeated form) carries its own port; `[v6]:p` likewise.
        bare, colon, own = name.rpartition(":")
        if colon and own.isdigit() and (name.startswith("[") or ":" not in bare):
            endpoints.append(Endpoint(bare.strip("[]"), int(own)))
        else:
            endpoints.append(Endpoint(name.strip("[]"), default))
    return endpoints


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
class StackLayout:
    """Where everything of a private stack (`dataplane up --dir ROOT`) lives: the one
    definition that the renderers, `stack.py` (start, stop) and the tests all read.

        ROOT/etc/{postfix,dovecot,rspamd}/, milter.json, authpolicy.json   configuration
        ROOT/postfix/{queue,data}/   Postfix queue (its pid file in queue/pid/) and data
        ROOT/run/dovecot/            Dovecot base_dir (pid, auth and dict sockets)
        ROOT/run/milter.pid, ROOT/run/authpolicy.pid   the Postmeister services
        ROOT/run/opendkim-<algorithm>.pid   the DKIM signers (config in etc/opendkim/)
        ROOT/run/postsrsd.pid        the SRS lookup tables (render/srs.py)
        ROOT/run/rspamd/, ROOT/state/rspamd/   rspamd pid file and state (user _rspamd)
        ROOT/state/dovecot/  ROOT/log/ (all logs)  ROOT/mail/ (Maildirs)  ROOT/tls/
        ROOT/stack.json              the ports, as printed by `up`
    """

    root: Path

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def postfix_config(self) -> Path:
        return self.etc / "postfix"

    @property
    def dovecot_config(self) -> Path:
        return self.etc / "dovecot" / "dovecot.conf"

    @property
    def rspamd_config(self) -> Path:
        return self.etc / "rspamd" / "rspamd.conf"

    @property
    def milter_config(self) -> Path:
        return self.etc / "milter.json"

    @property
    def authpolicy_config(self) -> Path:
        return self.etc / "authpolicy.json"

    @property
    def postfix_queue(self) -> Path:
        return self.root / "postfix" / "queue"

    @property
    def postfix_data(self) -> Path:
        return self.root / "postfix" / "data"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def dovecot_base(self) -> Path:
        return self.run_dir / "dovecot"

    @property
    def sasl_socket(self) -> Path:
        return self.dovecot_base / "auth-postfix"

    @property
    def dovecot_state(self) -> Path:
        return self.root / "state" / "dovecot"

    @property
    def rspamd_state(self) -> Path:
        return self.root / "state" / "rspamd"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def mail_root(self) -> Path:
        return self.root / "mail"

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def tls(self) -> Tls:
        return Tls(cert_file=self.tls_dir / "cert.pem", key_file=self.tls_dir / "key.pem")

    @property
    def state_file(self) -> Path:
        return self.root / "stack.json"

    @property
    def postfix_pid(self) -> Path:
        return self.postfix_queue / "pid" / "master.pid"

    @property
    def dovecot_pid(self) -> Path:
        return self.dovecot_base / "master.pid"

    @property
    def milter_pid(self) -> Path:
        return self.run_dir / "milter.pid"

    @property
    def authpolicy_pid(self) -> Path:
        return self.run_dir / "authpolicy.pid"

    @property
    def rspamd_pid(self) -> Path:
        return self.run_dir / "rspamd" / "rspamd.pid"

    def opendkim_pid(self, algorithm: str) -> Path:
        return self.run_dir / f"opendkim-{algorithm}.pid"

    @property
    def postsrsd_pid(self) -> Path:
        return self.run_dir / "postsrsd.pid"

    def pid_files(self) -> dict[str, Path]:
        """Each daemon's pid file, in the order they are stopped (Postfix first: it stops
        taking mail before its milters, its auth policy and its LMTP target go away).
        The OpenDKIM processes run only for the configured algorithms, postsrsd only with
        SRS enabled."""
        return {
            "postfix": self.postfix_pid,
            "milter": self.milter_pid,
            "opendkim-rsa": self.opendkim_pid("rsa"),
            "opendkim-ed25519": self.opendkim_pid("ed25519"),
            "postsrsd": self.postsrsd_pid,
            "authpolicy": self.authpolicy_pid,
            "rspamd": self.rspamd_pid,
            "dovecot": self.dovecot_pid,
        }


@dataclass(frozen=True)
class Instance:
    """A private, self-contained Postfix + Dovecot pair living under one directory.

    Present only for `dataplane up`: then the renderer also writes complete main.cf, master.cf
    and dovecot.conf with their own queue, state, run and log directories and loopback ports.
    """

    layout: StackLayout
    listen: str
    smtp_port: int
    submission_port: int
    imap_port: int
    # POP3: STARTTLS on the first port, implicit TLS on the second.
    pop3_port: int
    pop3s_port: int
    # Implicit TLS (RFC 8314): IMAP and message submission. None: no such listener.
    imaps_port: int | None = None
    submissions_port: int | None = None
    # Compiled rspamd regular expressions (hyperscan): a cache keyed by the rules' hashes, so
    # stacks on one machine may share it; compiling the stock rules takes seconds.
    rspamd_cache_dir: Path | None = None

    @property
    def rspamd_hyperscan_cache(self) -> Path:
        return self.rspamd_cache_dir or self.layout.rspamd_state


@dataclass(frozen=True)
class Tls:
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class AuthPolicy:
    """The brute-force limits: Postmeister's auth policy service, which Dovecot asks
    before and after every password check (see `postmeister.dataplane.authpolicy`).

    `hash_nonce` salts the password hashes Dovecot sends it (the same on every mail node).
    `trusted_networks` are hosts that log in on behalf of others and pass on their
    addresses (a webmail host): Dovecot takes the client address from them and they are
    exempt from the per-address limits; the per-account limits still hold.
    """

    endpoint: Endpoint
    hash_nonce: str
    limits: Limits = field(default_factory=Limits)
    trusted_networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class DkimSigner:
    """One OpenDKIM process (`render.opendkim`): the algorithm it signs with, its milter."""

    algorithm: str  # rsa | ed25519
    endpoint: Endpoint


@dataclass(frozen=True)
class Relay:
    """A smarthost all outbound mail goes through (Postfix `relayhost`), TLS required.

    `password_file` holds the SASL password (one line); the renderer never reads it: the
    stack or installer writes Postfix's 0600 password map from it.
    """

    host: str  # `[host]:port` or `host:port`
    username: str | None = None
    password_file: Path | None = None


@dataclass(frozen=True)
class Srs:
    """postsrsd, the Sender Rewriting Scheme (`render.srs`): the domain of the rewritten
    senders, its two TCP lookup tables, and the file with its secret (the same on every
    mail node, or bounces to an address another node rewrote are refused)."""

    domain: str
    forward: Endpoint
    reverse: Endpoint
    secret_file: Path


@dataclass(frozen=True)
class NodeRole:
    """This installation as one of several mail nodes (issue 17): its name in the node
    registry, the address its LMTP listens on for the other nodes, and their network."""

    name: str
    address: str
    networks: tuple[str, ...]


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
    # Brute-force limits per client address and account (None: Dovecot's own penalty only).
    auth_policy: AuthPolicy | None = None
    # The milters' HTTP listener for `/metrics` and `/status` (None: none).
    milter_metrics: Endpoint | None = None
    # The DKIM signers on the submission services, in milter order (empty: no signing).
    dkim_signers: tuple[DkimSigner, ...] = ()
    # Outbound mail: None goes straight to each recipient domain's MX (a private stack
    # refuses off-machine mail then); a relay sends everything through that smarthost.
    relay: Relay | None = None
    # SRS for mail forwarded off the machine (None: envelope senders are left as they are).
    srs: Srs | None = None
    # One of several mail nodes (None: the only one; every mailbox is served here).
    node: NodeRole | None = None


@dataclass(frozen=True)
class RenderedFile:
    """One output file: path relative to the output directory, text, and file mode.

    Files that hold a database password are `secret` (mode 0640, group of the mail servers).
    """

    path: str
    content: str
    secret: bool = False
    # The group of a secret file when not the mail servers' (e.g. the webmail's www-data).
    group: str | None = None
