"""All process and file I/O of the data plane: writing rendered files, starting and stopping
a private Postfix + Dovecot (IMAP, POP3) + sender milter under one directory.

The renderers stay pure; this module resolves what depends on the machine (free ports, user
ids, file ownership), writes the files and runs the daemons. Each daemon is stopped by the pid
in its own pid file, after checking that the pid still belongs to that daemon.

The layout of a stack directory is defined once, in `render.model.StackLayout`.

rspamd's compiled regular expressions are cached machine-wide (RSPAMD_CACHE_DIR): compiling
Debian's rules takes several seconds of CPU, and the cache is keyed by the rules themselves.
"""

from __future__ import annotations

import contextlib
import grp
import http.client
import json
import os
import pwd
import secrets
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from postmeister.config import Settings
from postmeister.dataplane.contract import DOMAINS
from postmeister.dataplane.render import render_site
from postmeister.dataplane.render.model import (
    AuthPolicy,
    Database,
    DkimSigner,
    Endpoint,
    Instance,
    NodeRole,
    PostgresDatabase,
    Relay,
    RenderedFile,
    Site,
    SqliteDatabase,
    Srs,
    StackLayout,
    Tls,
    database_from_url,
)
from postmeister.dataplane.render.opendkim import config_path, working_directory
from postmeister.dataplane.render.postfix import relay_password_entry, relay_password_map
from postmeister.dataplane.render.srs import POSTSRSD, postsrsd_arguments
from postmeister.tls import write_self_signed

LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 20.0
# rspamd compiles its rules at the first start on a machine (hyperscan); later starts reuse them.
RSPAMD_READY_TIMEOUT = 90.0
RSPAMD_USER = "_rspamd"
RSPAMD_CACHE_DIR = Path("/var/cache/postmeister/rspamd")
# postsrsd drops root after binding its ports (it reads its secret before).
POSTSRSD_STACK_USER = "nobody"
# Where a production auth policy service listens (`postmeister dataplane authpolicy`).
# The private stack's own clients (the test suite, the benchmarks) connect from 127.0.0.1,
# the way a webmail host would: other loopback addresses are treated as the internet.
STACK_TRUSTED_NETWORKS = ("127.0.0.1/32",)


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
        milter_metrics=Endpoint.parse(dp.milter_metrics_address),
        sasl_socket=dp.sasl_socket,
        postfix_sasl_path=dp.postfix_sasl_path,
        tls=tls,
        timezone=settings.scheduler.timezone,
        dkim_signers=_dkim_signers(
            settings,
            {"rsa": dp.dkim_milter_address, "ed25519": dp.dkim_ed25519_milter_address},
        ),
        relay=relay_of(settings),
        srs=srs_of(
            settings,
            default_domain=dp.hostname,
            forward=Endpoint(settings.srs.listen_host, settings.srs.forward_port),
            reverse=Endpoint(settings.srs.listen_host, settings.srs.reverse_port),
        ),
        auth_policy=AuthPolicy(
            endpoint=Endpoint.parse(dp.auth_policy_address),
            hash_nonce=kept_secret(settings.data_dir / "dataplane-auth-policy-nonce"),
            trusted_networks=tuple(str(network) for network in dp.trusted_networks),
        ),
        node=node_role(settings),
    )


def node_role(settings: Settings) -> NodeRole | None:
    dp = settings.dataplane
    if not dp.node_name:
        return None
    networks = tuple(str(network) for network in dp.node_networks)
    return NodeRole(name=dp.node_name, address=dp.node_address, networks=networks)


def _dkim_signers(settings: Settings, addresses: dict[str, str]) -> tuple[DkimSigner, ...]:
    return tuple(
        DkimSigner(algorithm=algorithm, endpoint=Endpoint.parse(addresses[algorithm]))
        for algorithm in settings.dkim.algorithms
    )


def relay_of(settings: Settings) -> Relay | None:
    dp = settings.dataplane
    if dp.outbound_relay is None:
        return None
    return Relay(
        host=dp.outbound_relay,
        username=dp.outbound_relay_username,
        password_file=dp.outbound_relay_password_file,
    )


def srs_of(
    settings: Settings, *, default_domain: str, forward: Endpoint, reverse: Endpoint
) -> Srs | None:
    """SRS as configured (None when switched off); its secret is created on first use
    (0600) and kept, so that every render and restart signs with the same one."""
    srs = settings.srs
    if not srs.enabled:
        return None
    secret_file = (srs.secret_file or settings.data_dir / "srs-secret").resolve()
    kept_secret(secret_file)
    return Srs(
        domain=srs.domain or default_domain,
        forward=forward,
        reverse=reverse,
        secret_file=secret_file,
    )


def write_relay_password(site: Site) -> None:
    """Postfix's smarthost password map (texthash, 0600 root): written from the password
    file, never rendered, so the password is in no rendered file and no log."""
    relay = site.relay
    if relay is None or relay.username is None:
        return
    if relay.password_file is None:
        raise StackError("outbound_relay_username is set but outbound_relay_password_file not")
    password = relay.password_file.read_text().strip()
    target = Path(relay_password_map(site))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(relay_password_entry(relay, password))
    os.chmod(target, 0o600)


def kept_secret(path: Path) -> str:
    """A random secret kept in `path` (0600), so that every render names the same one (the
    auth policy's hash nonce, the webmail's session key)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    nonce = secrets.token_hex(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(nonce + "\n")
    return nonce


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


def stack_site(settings: Settings, layout: StackLayout, ports: dict[str, int]) -> Site:
    dp = settings.dataplane
    instance = Instance(
        layout=layout,
        listen=LOOPBACK,
        smtp_port=ports["smtp"],
        submission_port=ports["submission"],
        imap_port=ports["imap"],
        pop3_port=ports["pop3"],
        pop3s_port=ports["pop3s"],
        imaps_port=ports["imaps"],
        submissions_port=ports["submissions"],
        rspamd_cache_dir=RSPAMD_CACHE_DIR,
    )
    hostname = "mail.postmeister.test"
    return Site(
        database=database_from_url(settings.resolved_database_url),
        config_dir=layout.etc,
        hostname=hostname,
        mail_root=layout.mail_root,
        mail_user=dp.mail_user,
        mail_uid=_uid_or_none(dp.mail_user),
        sqlite_group=dp.sqlite_group,
        lmtp=Endpoint(LOOPBACK, ports["lmtp"]),
        milter=Endpoint(LOOPBACK, ports["milter"]),
        sasl_socket=layout.sasl_socket,
        postfix_sasl_path=str(layout.sasl_socket),
        tls=layout.tls,
        instance=instance,
        timezone=settings.scheduler.timezone,
        quota_status=Endpoint(LOOPBACK, ports["quota_status"]),
        antispam_milter=Endpoint(LOOPBACK, ports["antispam"]),
        rspamd=Endpoint(LOOPBACK, ports["rspamd"]),
        milter_metrics=Endpoint(LOOPBACK, ports["milter_metrics"]),
        submission_host=Endpoint(LOOPBACK, ports["smtp"]),
        dkim_signers=_dkim_signers(
            settings,
            {
                algorithm: f"{LOOPBACK}:{ports[f'dkim_{algorithm}']}"
                for algorithm in ("rsa", "ed25519")
            },
        ),
        relay=relay_of(settings),
        srs=srs_of(
            settings,
            default_domain=hostname,
            forward=Endpoint(LOOPBACK, ports["srs_forward"]),
            reverse=Endpoint(LOOPBACK, ports["srs_reverse"]),
        ),
        # The production limits; a new nonce each start (the service forgets on restart too).
        auth_policy=AuthPolicy(
            endpoint=Endpoint(LOOPBACK, ports["authpolicy"]),
            hash_nonce=secrets.token_hex(16),
            trusted_networks=STACK_TRUSTED_NETWORKS,
        ),
    )


def up(settings: Settings, root: Path) -> dict[str, Any]:
    """Start a private Postfix + Dovecot + milters + auth policy under `root`; return their ports.

    Returns when every daemon answers on its port. If the stack is already running, returns
    its ports without starting anything.
    """
    if os.geteuid() != 0:
        raise StackError("dataplane up must run as root (Postfix and Dovecot drop privileges)")
    paths = StackLayout(root.resolve())
    if paths.state_file.exists() and _running(paths):
        return dict(json.loads(paths.state_file.read_text()))
    dp = settings.dataplane
    site_db = database_from_url(settings.resolved_database_url)
    _check_contract(site_db)
    _ensure_mail_user(dp.mail_user)
    names = (
        "smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "lmtp",
        "milter", "quota_status", "antispam", "rspamd", "authpolicy", "milter_metrics",
        "dkim_rsa", "dkim_ed25519", "srs_forward", "srs_reverse",
    )  # fmt: skip
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    site = stack_site(settings, paths, ports)
    _prepare_directories(site)
    if isinstance(site_db, SqliteDatabase):
        share_sqlite(site_db.path, dp.sqlite_group)
    assert site.tls is not None
    write_self_signed(site.tls.cert_file, site.tls.key_file, [site.hostname])
    write_files(site.config_dir, render_site(site), reader_group="postfix")
    write_relay_password(site)
    try:
        # rspamd first: it takes longest to get ready, and starts while the others do.
        _start_rspamd(paths, site)
        _start_python_service(
            "postmeister.dataplane.authpolicy",
            paths.authpolicy_config,
            paths.authpolicy_pid,
            paths.log_dir / "authpolicy.log",
        )
        _wait_for_port(ports["authpolicy"], "auth policy")
        _start_dovecot(paths)
        _wait_for_port(ports["imap"], "dovecot imap")
        _wait_for_port(ports["imaps"], "dovecot imaps")
        _wait_for_port(ports["pop3"], "dovecot pop3")
        _wait_for_port(ports["pop3s"], "dovecot pop3s")
        _wait_for_port(ports["lmtp"], "dovecot lmtp")
        _wait_for_port(ports["quota_status"], "dovecot quota-status")
        _start_python_service(
            "postmeister.dataplane.milter",
            paths.milter_config,
            paths.milter_pid,
            paths.log_dir / "milter.log",
        )
        _wait_for_port(ports["milter"], "milter")
        _wait_for_port(ports["antispam"], "antispam milter")
        _wait_for_port(ports["milter_metrics"], "milter metrics")
        for signer in site.dkim_signers:
            _start_opendkim(paths, site, signer.algorithm)
            _wait_for_port(signer.endpoint.port, f"opendkim ({signer.algorithm})")
        if site.srs is not None:
            _start_postsrsd(paths, site.srs)
            _wait_for_port(site.srs.forward.port, "postsrsd (forward)")
            _wait_for_port(site.srs.reverse.port, "postsrsd (reverse)")
        _wait_for_rspamd(ports["rspamd"])
        _start_postfix(paths)
        _wait_for_port(ports["smtp"], "postfix smtp")
        _wait_for_port(ports["submission"], "postfix submission")
        _wait_for_port(ports["submissions"], "postfix submissions")
    except BaseException:
        down(paths.root)
        raise
    running = {f"dkim_{signer.algorithm}" for signer in site.dkim_signers}
    if site.srs is not None:
        running |= {"srs_forward", "srs_reverse"}
    state: dict[str, Any] = {
        # Only the signers and tables that run: `dataplane status` checks what it names.
        **{k: v for k, v in ports.items() if not k.startswith(("dkim_", "srs_")) or k in running},
        "host": LOOPBACK,
        "dir": str(paths.root),
        "mail_root": str(site.mail_root),
    }
    paths.state_file.write_text(json.dumps(state, indent=2) + "\n")
    return state


def reload(root: Path | None) -> list[str]:
    """Make Postfix and Dovecot read their configuration and certificate files again,
    without a restart; returns what was reloaded.

    `root`: a private stack (its own configuration, so its own master processes); None: the
    system's daemons. This is what a certificate renewal needs (certbot's --deploy-hook):
    Postfix's master tells its running smtpd processes to exit after their session and new
    ones read the new certificate; Dovecot's master re-reads its configuration (`ssl_cert =
    <file` reads the file then) and new logins use it. Sessions already open keep theirs.
    """
    if root is None:
        postfix, dovecot = ["postfix", "reload"], ["doveadm", "reload"]
    else:
        paths = StackLayout(root.resolve())
        if not _running(paths):
            raise StackError(f"no running stack in {root}")
        postfix = ["postfix", "-c", str(paths.postfix_config), "reload"]
        dovecot = ["doveadm", "-c", str(paths.dovecot_config), "reload"]
    _run(postfix, "reloading postfix")
    _run(dovecot, "reloading dovecot")
    return ["postfix", "dovecot"]


def down(root: Path) -> list[str]:
    """Stop the stack's daemons by their pid files; returns what was stopped."""
    paths = StackLayout(root.resolve())
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


# What each daemon's command line contains: a pid file may outlive its process, and the pid
# may since belong to something else.
_MARKERS = {
    "postfix": "master",
    "milter": "postmeister.dataplane.milter",
    "authpolicy": "postmeister.dataplane.authpolicy",
    "rspamd": "rspamd",
    "dovecot": "dovecot",
    "opendkim-rsa": "opendkim",
    "opendkim-ed25519": "opendkim",
    "postsrsd": "postsrsd",
}
# Started only when configured: a missing pid file means "not part of this stack".
_OPTIONAL = frozenset({"opendkim-rsa", "opendkim-ed25519", "postsrsd"})


def _daemons(paths: StackLayout) -> list[tuple[str, Path, str]]:
    return [(name, pid_file, _MARKERS[name]) for name, pid_file in paths.pid_files().items()]


def _running(paths: StackLayout) -> bool:
    return all(
        (pid := _read_pid(pid_file)) is not None and _is_process(pid, marker)
        for name, pid_file, marker in _daemons(paths)
        if name not in _OPTIONAL or pid_file.exists()
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
    # The folder itself may be the data dir's 0700: the group bits below open it to the mail
    # servers' group; only the folders above it must already be searchable.
    _require_traversable(directory.parent)
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
    layout = instance.layout
    _require_traversable(layout.root.parent)
    layout.root.mkdir(parents=True, exist_ok=True)
    # Searchable by postfix, dovecot and vmail; nothing secret is readable through it.
    os.chmod(layout.root, 0o755)  # noqa: S103
    for directory in (
        layout.postfix_config,
        layout.dovecot_config.parent,
        layout.postfix_queue,
        layout.dovecot_state,
        layout.log_dir,
        layout.run_dir,
        layout.tls_dir,
    ):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)  # noqa: S103
    rspamd = pwd.getpwnam(RSPAMD_USER)
    for directory in (
        layout.rspamd_state,
        layout.rspamd_pid.parent,
        instance.rspamd_hyperscan_cache,
    ):
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, rspamd.pw_uid, rspamd.pw_gid)
        os.chmod(directory, 0o755)  # noqa: S103
    layout.postfix_data.mkdir(parents=True, exist_ok=True)
    pw = pwd.getpwnam("postfix")
    os.chown(layout.postfix_data, pw.pw_uid, pw.pw_gid)
    site.mail_root.mkdir(parents=True, exist_ok=True)
    vmail = pwd.getpwnam(site.mail_user)
    os.chown(site.mail_root, vmail.pw_uid, vmail.pw_gid)
    os.chmod(site.mail_root, 0o700)


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


def _start_dovecot(paths: StackLayout) -> None:
    _run(["dovecot", "-c", str(paths.dovecot_config)], "starting dovecot")


def _start_postfix(paths: StackLayout) -> None:
    _run(["postfix", "-c", str(paths.postfix_config), "start"], "starting postfix")


def _start_opendkim(paths: StackLayout, site: Site, algorithm: str) -> None:
    """OpenDKIM forks and writes its pid file; it runs in the database's directory because
    its SQLite DSN is relative (see render/opendkim.py)."""
    config = paths.etc / config_path(algorithm)
    with tempfile.TemporaryFile("w+") as output:
        result = subprocess.run(
            ["opendkim", "-x", str(config), "-P", str(paths.opendkim_pid(algorithm))],
            cwd=working_directory(site.database),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            check=False,
        )
        output.seek(0)
        text = output.read()
    if result.returncode != 0:
        raise StackError(f"starting opendkim ({algorithm}) failed ({result.returncode}): {text}")


def _start_postsrsd(paths: StackLayout, srs: Srs) -> None:
    """postsrsd forks (-D), writes its pid file and drops root once its ports are bound."""
    _run(
        [
            POSTSRSD,
            *postsrsd_arguments(srs, secret_file=str(srs.secret_file)),
            "-u",
            POSTSRSD_STACK_USER,
            "-p",
            str(paths.postsrsd_pid),
            "-D",
        ],
        "starting postsrsd",
    )


def _start_rspamd(paths: StackLayout, site: Site) -> None:
    del site  # everything rspamd needs is in the layout
    variables = {
        "LOCAL_CONFDIR": paths.rspamd_config.parent,
        "DBDIR": paths.rspamd_state,
        "RUNDIR": paths.rspamd_pid.parent,
        "LOGDIR": paths.log_dir,
    }
    _run(
        [
            "rspamd",
            "-c",
            str(paths.rspamd_config),
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


def _start_python_service(module: str, config: Path, pid_file: Path, log_file: Path) -> None:
    """Start one of Postmeister's own data-plane services (`python -m MODULE`) detached; it
    writes its pid file once it listens."""
    with log_file.open("ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", module, "--config", str(config), "--pid-file", str(pid_file)],
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
