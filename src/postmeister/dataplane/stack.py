"""All process and file I/O of the data plane: writing rendered files, starting and stopping
a private Postfix + Dovecot + sender milter under one directory.

The renderers stay pure; this module resolves what depends on the machine (free ports, user
ids, file ownership), writes the files and runs the daemons. Each daemon is stopped by the pid
in its own pid file, after checking that the pid still belongs to that daemon.

Layout of a stack directory DIR (`dataplane up --dir DIR`):
    DIR/etc/{postfix,dovecot,rspamd}/  rendered configuration   DIR/mail/  Maildirs (vmail)
    DIR/postfix/{queue,data}/   Postfix queue and data       DIR/log/       all logs
    DIR/run/dovecot/            Dovecot base_dir (pid, auth and dict sockets)
    DIR/run/milter.pid          both Postmeister milters (one process)
    DIR/run/rspamd/, DIR/state/rspamd/  rspamd pid file and state (user _rspamd)
    DIR/tls/                    self-signed certificate
    DIR/stack.json              the ports, as printed by `up`

rspamd's compiled regular expressions are cached machine-wide (RSPAMD_CACHE_DIR): compiling
Debian's rules takes several seconds of CPU, and the cache is keyed by the rules themselves.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import grp
import http.client
import json
import os
import pwd
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postmeister.config import Settings
from postmeister.dataplane.contract import DOMAINS
from postmeister.dataplane.render import render_site
from postmeister.dataplane.render.model import (
    Database,
    Endpoint,
    Instance,
    PostgresDatabase,
    RenderedFile,
    Site,
    SqliteDatabase,
    Tls,
    database_from_url,
)

LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 20.0
# rspamd compiles its rules at the first start on a machine (hyperscan); later starts reuse them.
RSPAMD_READY_TIMEOUT = 90.0
RSPAMD_USER = "_rspamd"
RSPAMD_CACHE_DIR = Path("/var/cache/postmeister/rspamd")


class StackError(RuntimeError):
    """The stack could not be started or stopped; the message says what to do."""


# --- rendering to a directory ------------------------------------------------------------------


def production_site(settings: Settings, *, config_dir: Path) -> Site:
    """The site an operator renders for an existing Postfix/Dovecot (`dataplane render`)."""
    dp = settings.dataplane
    tls = None
    if dp.tls_cert_file and dp.tls_key_file:
        tls = Tls(cert_file=dp.tls_cert_file, key_file=dp.tls_key_file)
    return Site(
        database=database_from_url(settings.resolved_database_url),
        config_dir=config_dir,
        hostname=dp.hostname,
        mail_root=dp.mail_root,
        mail_user=dp.mail_user,
        mail_uid=_uid_or_none(dp.mail_user),
        sqlite_group=dp.sqlite_group,
        lmtp=Endpoint.parse(dp.lmtp_address),
        milter=Endpoint.parse(dp.milter_address),
        quota_status=Endpoint.parse(dp.quota_status_address),
        antispam_milter=Endpoint.parse(dp.antispam_milter_address),
        rspamd=Endpoint.parse(dp.rspamd_address),
        sasl_socket=dp.sasl_socket,
        postfix_sasl_path=dp.postfix_sasl_path,
        tls=tls,
        timezone=settings.scheduler.timezone,
    )


def write_files(out_dir: Path, files: list[RenderedFile], *, reader_group: str) -> list[Path]:
    """Write rendered files; files holding a database password get mode 0640 and the group
    of the mail servers (they read them after dropping root)."""
    written = []
    gid = _gid_or_none(reader_group)
    for rendered in files:
        path = out_dir / rendered.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered.content)
        if rendered.secret:
            os.chmod(path, 0o640)
            if gid is not None and os.geteuid() == 0:
                os.chown(path, 0, gid)
        else:
            os.chmod(path, 0o644)
        written.append(path)
    return written


def _uid_or_none(user: str) -> int | None:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def _gid_or_none(group: str) -> int | None:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None


# --- the private stack -------------------------------------------------------------------------


@dataclass(frozen=True)
class StackPaths:
    root: Path

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def state_file(self) -> Path:
        return self.root / "stack.json"

    @property
    def postfix_config(self) -> Path:
        return self.etc / "postfix"

    @property
    def dovecot_config(self) -> Path:
        return self.etc / "dovecot" / "dovecot.conf"

    @property
    def postfix_pid(self) -> Path:
        return self.root / "postfix" / "queue" / "pid" / "master.pid"

    @property
    def dovecot_pid(self) -> Path:
        return self.root / "run" / "dovecot" / "master.pid"

    @property
    def milter_pid(self) -> Path:
        return self.root / "run" / "milter.pid"

    @property
    def rspamd_pid(self) -> Path:
        return self.root / "run" / "rspamd" / "rspamd.pid"


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def stack_site(settings: Settings, root: Path, ports: dict[str, int]) -> Site:
    dp = settings.dataplane
    instance = Instance(
        root=root,
        listen=LOOPBACK,
        smtp_port=ports["smtp"],
        submission_port=ports["submission"],
        imap_port=ports["imap"],
        rspamd_cache_dir=RSPAMD_CACHE_DIR,
    )
    sasl_socket = instance.dovecot_base / "auth-postfix"
    return Site(
        database=database_from_url(settings.resolved_database_url),
        config_dir=root / "etc",
        hostname="mail.postmeister.test",
        mail_root=root / "mail",
        mail_user=dp.mail_user,
        mail_uid=_uid_or_none(dp.mail_user),
        sqlite_group=dp.sqlite_group,
        lmtp=Endpoint(LOOPBACK, ports["lmtp"]),
        milter=Endpoint(LOOPBACK, ports["milter"]),
        sasl_socket=sasl_socket,
        postfix_sasl_path=str(sasl_socket),
        tls=Tls(cert_file=root / "tls" / "cert.pem", key_file=root / "tls" / "key.pem"),
        instance=instance,
        timezone=settings.scheduler.timezone,
        quota_status=Endpoint(LOOPBACK, ports["quota_status"]),
        antispam_milter=Endpoint(LOOPBACK, ports["antispam"]),
        rspamd=Endpoint(LOOPBACK, ports["rspamd"]),
        submission_host=Endpoint(LOOPBACK, ports["smtp"]),
    )


def up(settings: Settings, root: Path) -> dict[str, Any]:
    """Start a private Postfix + Dovecot + milter under `root`; return their ports.

    Returns when every daemon answers on its port. If the stack is already running, returns
    its ports without starting anything.
    """
    if os.geteuid() != 0:
        raise StackError("dataplane up must run as root (Postfix and Dovecot drop privileges)")
    root = root.resolve()
    paths = StackPaths(root)
    if paths.state_file.exists() and _running(paths):
        return dict(json.loads(paths.state_file.read_text()))
    dp = settings.dataplane
    site_db = database_from_url(settings.resolved_database_url)
    _check_contract(site_db)
    _ensure_mail_user(dp.mail_user)
    names = ("smtp", "submission", "imap", "lmtp", "milter", "quota_status", "antispam", "rspamd")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    site = stack_site(settings, root, ports)
    _prepare_directories(site)
    if isinstance(site_db, SqliteDatabase):
        share_sqlite(site_db.path, dp.sqlite_group)
    assert site.tls is not None
    _self_signed_certificate(site.tls, site.hostname)
    write_files(site.config_dir, render_site(site), reader_group="postfix")
    try:
        # rspamd first: it takes longest to get ready, and starts while the others do.
        _start_rspamd(paths, site)
        _start_dovecot(paths)
        _wait_for_port(ports["imap"], "dovecot imap")
        _wait_for_port(ports["lmtp"], "dovecot lmtp")
        _wait_for_port(ports["quota_status"], "dovecot quota-status")
        _start_milter(paths)
        _wait_for_port(ports["milter"], "milter")
        _wait_for_port(ports["antispam"], "antispam milter")
        _wait_for_rspamd(ports["rspamd"])
        _start_postfix(paths)
        _wait_for_port(ports["smtp"], "postfix smtp")
        _wait_for_port(ports["submission"], "postfix submission")
    except BaseException:
        down(root)
        raise
    state: dict[str, Any] = {
        **ports,
        "host": LOOPBACK,
        "dir": str(root),
        "mail_root": str(site.mail_root),
    }
    paths.state_file.write_text(json.dumps(state, indent=2) + "\n")
    return state


def down(root: Path) -> list[str]:
    """Stop the stack's daemons by their pid files; returns what was stopped."""
    paths = StackPaths(root.resolve())
    stopped = []
    for name, pid_file, marker in _daemons(paths):
        pid = _read_pid(pid_file)
        if pid is not None and _is_process(pid, marker):
            _terminate(pid)
            stopped.append(name)
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()
    paths.state_file.unlink(missing_ok=True)
    return stopped


def _daemons(paths: StackPaths) -> list[tuple[str, Path, str]]:
    # Postfix first: it stops taking mail before its milter and LMTP target go away.
    return [
        ("postfix", paths.postfix_pid, "master"),
        ("milter", paths.milter_pid, "postmeister.dataplane.milter"),
        ("rspamd", paths.rspamd_pid, "rspamd"),
        ("dovecot", paths.dovecot_pid, "dovecot"),
    ]


def _running(paths: StackPaths) -> bool:
    return all(
        (pid := _read_pid(pid_file)) is not None and _is_process(pid, marker)
        for _name, pid_file, marker in _daemons(paths)
    )


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _is_process(pid: int, marker: str) -> bool:
    """True if `pid` is alive (not a zombie) and its command line contains `marker`."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    if "\nState:\tZ" in status:
        return False
    return marker in cmdline


def _terminate(pid: int, timeout: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_process(pid, ""):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _check_contract(database: Database) -> None:
    """Refuse to start against a database without the contract views (not migrated)."""
    hint = "run `postmeister migrate` first"
    if isinstance(database, SqliteDatabase):
        if not database.path.exists():
            raise StackError(f"no database at {database.path}: {hint}")
        with contextlib.closing(sqlite3.connect(database.path)) as connection:
            row = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = ?", (DOMAINS.name,)
            ).fetchone()
    else:
        row = _pg_fetch(database, "SELECT to_regclass(%s)", (DOMAINS.name,))
        row = row if row and row[0] else None
    if row is None:
        raise StackError(f"the database has no data-plane contract views: {hint}")


def _pg_fetch(database: PostgresDatabase, query: str, params: tuple[Any, ...]) -> Any:
    import psycopg

    with psycopg.connect(
        host=database.host,
        port=database.port,
        dbname=database.dbname,
        user=database.user,
        password=database.password,
        connect_timeout=5,
    ) as connection:
        return connection.execute(query, params).fetchone()


def share_sqlite(path: Path, group: str) -> None:
    """Let Postfix and Dovecot (in `group`) read an SQLite database in WAL mode.

    WAL readers write to the -shm file and may create -wal/-shm, so the group needs write
    access to the files and the directory. The directory gets the setgid bit so that new
    -wal/-shm files keep the group; SQLite gives them the database file's mode.
    """
    gid = _gid_or_none(group)
    if gid is None:
        raise StackError(f"group {group!r} does not exist (is Postfix installed?)")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise StackError(f"{path}: could not switch the database to WAL mode")
    directory = path.parent
    _require_traversable(directory)
    os.chown(directory, -1, gid)
    # Group rwx + setgid, for the mail servers' group only; others gain nothing.
    os.chmod(directory, stat.S_IMODE(directory.stat().st_mode) | 0o2070)  # noqa: S103
    for suffix in ("", "-wal", "-shm"):
        file = Path(f"{path}{suffix}")
        if file.exists():
            os.chown(file, -1, gid)
            os.chmod(file, stat.S_IMODE(file.stat().st_mode) | 0o060)


def _require_traversable(directory: Path) -> None:
    for parent in [directory, *directory.parents]:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise StackError(
                f"{parent} is not searchable by other users, so Postfix and Dovecot cannot "
                "reach the database or stack below it: use a directory with mode 0755 parents"
            )


def _ensure_mail_user(user: str) -> None:
    if _uid_or_none(user) is not None:
        return
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home",
         "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", user],
        check=True, capture_output=True,
    )  # fmt: skip
    print(f"created system user {user} to own the mail files", file=sys.stderr)


def _prepare_directories(site: Site) -> None:
    instance = site.instance
    assert instance is not None
    _require_traversable(instance.root.parent)
    instance.root.mkdir(parents=True, exist_ok=True)
    # Searchable by postfix, dovecot and vmail; nothing secret is readable through it.
    os.chmod(instance.root, 0o755)  # noqa: S103
    for directory in (
        site.config_dir / "postfix",
        site.config_dir / "dovecot",
        instance.postfix_queue,
        instance.dovecot_state,
        instance.log_dir,
        instance.root / "run",
        instance.root / "tls",
    ):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)  # noqa: S103
    rspamd = pwd.getpwnam(RSPAMD_USER)
    for directory in (
        instance.rspamd_state,
        instance.rspamd_pid_file.parent,
        instance.rspamd_hyperscan_cache,
    ):
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, rspamd.pw_uid, rspamd.pw_gid)
        os.chmod(directory, 0o755)  # noqa: S103
    instance.postfix_data.mkdir(parents=True, exist_ok=True)
    pw = pwd.getpwnam("postfix")
    os.chown(instance.postfix_data, pw.pw_uid, pw.pw_gid)
    site.mail_root.mkdir(parents=True, exist_ok=True)
    vmail = pwd.getpwnam(site.mail_user)
    os.chown(site.mail_root, vmail.pw_uid, vmail.pw_gid)
    os.chmod(site.mail_root, 0o700)


def _self_signed_certificate(tls: Tls, hostname: str) -> None:
    if tls.cert_file.exists() and tls.key_file.exists():
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    tls.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(tls.key_file, 0o600)
    tls.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _run(command: list[str], what: str) -> None:
    # Output goes to a file, not a pipe: the daemon forks and its child would keep a pipe
    # open, so reading it to the end would wait for the daemon to exit.
    with tempfile.TemporaryFile("w+") as output:
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=output, check=False
        )
        output.seek(0)
        text = output.read()
    if result.returncode != 0:
        raise StackError(f"{what} failed ({result.returncode}): {text}")
    if text:
        sys.stderr.write(text)


def _start_dovecot(paths: StackPaths) -> None:
    _run(["dovecot", "-c", str(paths.dovecot_config)], "starting dovecot")


def _start_postfix(paths: StackPaths) -> None:
    _run(["postfix", "-c", str(paths.postfix_config), "start"], "starting postfix")


def _start_rspamd(paths: StackPaths, site: Site) -> None:
    instance = site.instance
    assert instance is not None
    variables = {
        "LOCAL_CONFDIR": paths.etc / "rspamd",
        "DBDIR": instance.rspamd_state,
        "RUNDIR": instance.rspamd_pid_file.parent,
        "LOGDIR": instance.log_dir,
    }
    _run(
        [
            "rspamd",
            "-c",
            str(paths.etc / "rspamd" / "rspamd.conf"),
            "-u",
            RSPAMD_USER,
            "-g",
            RSPAMD_USER,
            *(f"--var={name}={value}" for name, value in variables.items()),
        ],
        "starting rspamd",
    )


def _wait_for_rspamd(port: int) -> None:
    """rspamd accepts connections before its worker has loaded the rules: ask it to answer."""
    deadline = time.monotonic() + RSPAMD_READY_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
            try:
                connection.request("GET", "/ping")
                if connection.getresponse().read().strip() == b"pong":
                    return
            finally:
                connection.close()
        time.sleep(0.1)
    raise StackError(f"rspamd did not answer on {LOOPBACK}:{port}; see log/rspamd.log")


def _start_milter(paths: StackPaths) -> None:
    log = (paths.root / "log" / "milter.log").open("ab")
    with log:
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "postmeister.dataplane.milter",
                "--config",
                str(paths.etc / "milter.json"),
                "--pid-file",
                str(paths.milter_pid),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def _wait_for_port(port: int, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=1):
            return
        time.sleep(0.05)
    raise StackError(f"{what} did not start listening on {LOOPBACK}:{port}; see the logs")
