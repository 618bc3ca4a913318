"""The INSTALLED data plane (`postmeister dataplane install --root DIR`), run on the standard
ports in a network namespace (tests/support/netns.py), its daemons started the way their
service units start them.

The staging root is what a fresh Debian server holds: a copy of the host's /etc, with
Postfix's pristine main.cf/master.cf plus what Debian's postinst writes for an "Internet
Site" (Postfix was installed with "No configuration" here), and Debian's /etc/dovecot and
/etc/rspamd. `dataplane install` writes into it; inside the namespace it *is* /etc. The state
directories (/var/spool/postfix, /var/lib/postfix, /var/lib/dovecot, /var/lib/rspamd, /run)
are test-owned directories mounted over the machine's own, which stay untouched.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from postmeister.api.app import create_app
from postmeister.config import DataplaneSettings, Settings, WebhookSettings
from postmeister.dataplane import stack as dataplane_stack
from postmeister.db import make_engine, make_session_factory
from tests.conftest import fast_password_settings
from tests.e2e.conftest import Stack, shared_tmp_dir
from tests.support import netns, secrets
from tests.support.factories import make_tenant
from tests.support.tls import make_test_pki

HOSTNAME = "mail.postmeister.test"
# The client-facing listeners of the installed configuration (the standard ports).
PORTS = {
    "smtp": 25,
    "submission": 587,
    "submissions": 465,
    "imap": 143,
    "imaps": 993,
    "pop3": 110,
    "pop3s": 995,
}
# Loopback-only services inside the namespace, as the installed configuration names them.
# LMTP, the milters, quota-status, auth policy, metrics, rspamd, OpenDKIM (RSA), postsrsd.
INTERNAL_PORTS = (24, 10029, 10030, 10031, 10032, 10033, 11333, 8891, 10034, 10035)
# Debian's Internet Site main.cf lists $myhostname in mydestination: the SRS domain must be
# another name (README "SRS for forwards").
SRS_DOMAIN = "srs.postmeister.test"
TLS_DIR = "/etc/ssl/postmeister-test"
# What Debian's postinst adds to main.cf for an "Internet Site" (postfix.postinst).
DEBIAN_INTERNET_SITE = f"""
myhostname = {HOSTNAME}
alias_maps = hash:/etc/aliases
alias_database = hash:/etc/aliases
myorigin = $myhostname
mydestination = $myhostname, localhost
relayhost =
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128
mailbox_size_limit = 0
inet_interfaces = all
inet_protocols = all
"""
# Waits inside the namespace until every port answers and rspamd's worker says pong.
_WAIT = """
import http.client, socket, sys, time
deadline = time.monotonic() + float(sys.argv[1])
def ready(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    if port != 11333:
        return True
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/ping")
        return connection.getresponse().read().strip() == b"pong"
    except (OSError, http.client.HTTPException):
        return False
waiting = [int(port) for port in sys.argv[2:]]
while waiting and time.monotonic() < deadline:
    waiting = [port for port in waiting if not ready(port)]
    time.sleep(0.1)
if waiting:
    sys.exit(f"not answering inside the namespace: {waiting}")
"""


@dataclass
class InstalledPlane:
    namespace: netns.Namespace
    root: Path
    stack: Stack
    ca_file: Path

    @property
    def host(self) -> str:
        return self.namespace.address


def _staging_etc(root: Path) -> Path:
    etc = root / "etc"
    shutil.copytree("/etc", etc, symlinks=True)
    shutil.copy2("/usr/share/postfix/master.cf.dist", etc / "postfix" / "master.cf")
    main_cf = Path("/usr/share/postfix/main.cf.debian").read_text()
    # There is no syslog in the namespace: the operator's logs go to files, as on a
    # container without syslog (Postfix's postlogd writes maillog_file).
    no_syslog = "maillog_file = /var/log/postfix.log\n"
    (etc / "postfix" / "main.cf").write_text(main_cf + DEBIAN_INTERNET_SITE + no_syslog)
    with (etc / "dovecot" / "conf.d" / "10-logging.conf").open("a") as logging:
        logging.write("log_path = /var/log/dovecot.log\n")
    (etc / "mailname").write_text(HOSTNAME + "\n")
    # Debian's dovecot-core postinst links ssl-cert's snakeoil pair here, which Debian's
    # 10-ssl.conf names (Dovecot reads every `ssl_cert = <file` as it parses, also one
    # that 99-postmeister.conf overrides); this machine has no ssl-cert package.
    snakeoil = make_test_pki(root / "snakeoil", hosts=(HOSTNAME,))
    shutil.copy2(snakeoil.server_cert, etc / "dovecot" / "private" / "dovecot.pem")
    shutil.copy2(snakeoil.server_key, etc / "dovecot" / "private" / "dovecot.key")
    # No DNS in the namespace: a refused query fails at once (Postfix's smtpd looks up
    # every client's name; a resolver it cannot reach would make it wait).
    (etc / "resolv.conf").unlink(missing_ok=True)
    (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    return etc


def _directory(path: Path, *, owner: str = "root", mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    entry = pwd.getpwnam(owner)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(path, mode)
    return path


def _install(root: Path, env: dict[str, str]) -> None:
    """`dataplane install --root`, then the owners it records for a real installation."""
    result = subprocess.run(
        [sys.executable, "-m", "postmeister.cli.dataplane", "install", "--root", str(root)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # A staging root gets no owners ("wanted: PATH user:group; ..."): set them as
    # `--root /` would.
    wanted = re.search(r"wanted: (.*)$", result.stdout + result.stderr, re.M)
    for entry in wanted.group(1).split("; ") if wanted else []:
        path, _, owner = entry.rpartition(" ")
        user, _, group = owner.partition(":")
        with contextlib.suppress(KeyError):
            os.chown(root / path.lstrip("/"), pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid)


def _unit(root: Path, name: str) -> tuple[list[str], list[str]]:
    """A unit's ExecStart command and its SupplementaryGroups."""
    text = (root / "etc" / "systemd" / "system" / name).read_text()
    command = re.search(r"^ExecStart=(.*)$", text, re.M)
    assert command is not None, text
    groups = re.search(r"^SupplementaryGroups=(.*)$", text, re.M)
    return shlex.split(command.group(1)), groups.group(1).split() if groups else []


def _as_dynamic_user(command: list[str], groups: list[str]) -> list[str]:
    """What `DynamicUser=yes` gives: an unprivileged user with no capabilities (nobody here),
    with the unit's supplementary groups."""
    options = ["--reuid=nobody", "--regid=nogroup", "--inh-caps=-all"]
    options.append(f"--groups={','.join(groups)}" if groups else "--clear-groups")
    return ["setpriv", *options, "--", *command]


def _spawn_postsrsd(
    namespace: netns.Namespace, root: Path, data_dir: Path, logs: Path, env: dict[str, str]
) -> None:
    """postmeister-postsrsd.service: what LoadCredential= gives (a copy of the secret only
    the service's user may read, in /run/credentials/<unit>/), then ExecStart as that user."""
    unit = "postmeister-postsrsd.service"
    command, groups = _unit(root, unit)
    credentials = _directory(root / "run" / "credentials" / unit, owner="nobody", mode=0o500)
    copy = credentials / "srs-secret"
    shutil.copyfile(data_dir / "srs-secret", copy)
    nobody = pwd.getpwnam("nobody")
    os.chown(copy, nobody.pw_uid, nobody.pw_gid)
    os.chmod(copy, 0o400)
    inside = f"/run/credentials/{unit}"
    command = [part.replace("${CREDENTIALS_DIRECTORY}", inside) for part in command]
    namespace.spawn(*_as_dynamic_user(command, groups), log=logs / f"{unit}.log", env=env)


def start(backend: str, database_url: str, root: Path) -> Iterator[InstalledPlane]:
    """Install into `root`, run it in a new namespace; yields once every port answers."""
    dataplane_stack._ensure_mail_user("vmail")  # the installed config then names its uid
    logs = _directory(root / "log")
    etc = _staging_etc(root)
    run = _directory(root / "run")
    pg_socket_dir = _directory(root / "pgrun")
    spool = _directory(root / "var" / "spool" / "postfix")
    postfix_data = _directory(root / "var" / "lib" / "postfix", owner="postfix")
    dovecot_state = _directory(root / "var" / "lib" / "dovecot")
    rspamd_state = _directory(root / "var" / "lib" / "rspamd", owner="_rspamd", mode=0o750)
    mail_root = _directory(root / "vmail", owner="vmail", mode=0o700)
    data_dir = root / "data"
    mounts: list[tuple[Path, str]] = []
    if Path("/run/postgresql").is_dir():  # the host's PostgreSQL socket, before /run goes
        mounts.append((Path("/run/postgresql"), str(pg_socket_dir)))
    mounts += [
        (run, "/run"),
        (etc, "/etc"),
        (spool, "/var/spool/postfix"),
        (postfix_data, "/var/lib/postfix"),
        (dovecot_state, "/var/lib/dovecot"),
        (rspamd_state, "/var/lib/rspamd"),
        (logs, "/var/log"),
    ]
    namespace = netns.create(mounts)
    try:
        pki = make_test_pki(
            etc / TLS_DIR.removeprefix("/etc/"), hosts=(HOSTNAME, namespace.address)
        )
        env = {
            **os.environ,
            "POSTMEISTER_DATA_DIR": str(data_dir),
            "POSTMEISTER_DATABASE_URL": database_url,
            "POSTMEISTER_DATAPLANE__HOSTNAME": HOSTNAME,
            "POSTMEISTER_DATAPLANE__MAIL_ROOT": str(mail_root),
            "POSTMEISTER_DATAPLANE__TLS_CERT_FILE": f"{TLS_DIR}/server.pem",
            "POSTMEISTER_DATAPLANE__TLS_KEY_FILE": f"{TLS_DIR}/server.key",
            "POSTMEISTER_SRS__DOMAIN": SRS_DOMAIN,
        }
        _install(root, env)
        if database_url.startswith("sqlite"):
            dataplane_stack.share_sqlite(Path(database_url.removeprefix("sqlite:///")), "postfix")
        else:
            # The installed configuration names 127.0.0.1:5432; inside, that is a relay
            # to the host's PostgreSQL socket.
            namespace.spawn(
                "socat", "TCP-LISTEN:5432,bind=127.0.0.1,fork,reuseaddr",
                f"UNIX-CONNECT:{pg_socket_dir}/.s.PGSQL.5432", log=logs / "socat.log",
            )  # fmt: skip
        # systemd starts a service with an environment of its own: none of the test
        # session's settings (PYTHONPATH only, so that this source tree is what runs).
        service_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        if "PYTHONPATH" in os.environ:
            service_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        for unit in ("postmeister-authpolicy.service", "postmeister-milter.service"):
            command, groups = _unit(root, unit)
            namespace.spawn(
                *_as_dynamic_user(command, groups), log=logs / f"{unit}.log", env=service_env
            )
        # The OpenDKIM units: WorkingDirectory= too (its SQLite DSN is relative to it); the
        # shell execs OpenDKIM, so the pid is OpenDKIM's own.
        for path in sorted((root / "etc/systemd/system").glob("postmeister-opendkim-*.service")):
            command, groups = _unit(root, path.name)
            found = re.search(r"^WorkingDirectory=(.*)$", path.read_text(), re.M)
            workdir = found.group(1) if found else "/"
            in_dir = ["sh", "-c", 'cd "$0" && exec "$@"', workdir, *command]
            namespace.spawn(
                *_as_dynamic_user(in_dir, groups), log=logs / f"{path.name}.log", env=service_env
            )
        _spawn_postsrsd(namespace, root, data_dir, logs, service_env)
        # rspamd.service: User=_rspamd, RuntimeDirectory=rspamd; the package's log folder.
        _directory(run / "rspamd", owner="_rspamd")
        _directory(logs / "rspamd", owner="_rspamd", mode=0o750)
        namespace.run("/usr/bin/rspamd", "-c", "/etc/rspamd/rspamd.conf", "-u", "_rspamd",
                      "-g", "_rspamd")  # fmt: skip
        # postfix@-.service: ExecStartPre, then start. Before Dovecot, which puts its auth
        # socket into Postfix's queue directory.
        namespace.run("/usr/lib/postfix/configure-instance.sh", "-")
        start_mail(namespace)
        ports = [*PORTS.values(), *INTERNAL_PORTS]
        try:
            namespace.run(sys.executable, "-c", _WAIT, "120", *map(str, ports), timeout=180)
        except netns.NamespaceError as error:
            tails = {log.name: log.read_text()[-2000:] for log in logs.glob("*.log")}
            raise netns.NamespaceError(f"{error}; the logs: {tails}") from None
        yield from _with_controller(backend, root, env, database_url, namespace, pki.ca_cert)
    finally:
        leftover = stop(namespace, root)
        assert not leftover, f"processes left in the namespace after the stop: {leftover}"


def _with_controller(
    backend: str,
    root: Path,
    env: dict[str, str],
    database_url: str,
    namespace: netns.Namespace,
    ca_file: Path,
) -> Iterator[InstalledPlane]:
    settings = Settings(
        data_dir=root / "data",
        database_url=database_url,
        passwords=fast_password_settings(),
        webhooks=WebhookSettings(enabled=False),
        # What the autoconfig documents name as the server (POSTMEISTER_CLIENT__HOST's default).
        dataplane=DataplaneSettings(hostname=HOSTNAME),
    )
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    tenant = make_tenant(sessions, name=f"Installed {backend}", domain=f"{backend}.ns.example")
    try:
        with TestClient(create_app(settings), base_url="https://testserver") as api:
            stack = Stack(backend, root, env, settings, sessions, dict(PORTS), api, tenant)
            yield InstalledPlane(namespace, root, stack, ca_file)
    finally:
        engine.dispose()


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def start_mail(namespace: netns.Namespace) -> None:
    """Postfix (postfix@-.service's start), then Dovecot, which puts its auth socket into
    Postfix's queue directory (dovecot.service runs it with -F, in the foreground)."""
    namespace.run("/usr/sbin/postmulti", "-i", "-", "-p", "start")
    namespace.run("/usr/sbin/dovecot")


def stop_mail(plane: InstalledPlane) -> None:
    """Stop Postfix and Dovecot as their units would (a node shut down for maintenance),
    leaving the namespace and the other daemons; `start_mail` brings them back."""
    plane.namespace.run("/usr/sbin/postmulti", "-i", "-", "-p", "stop", timeout=30)
    pid = _pid(plane.root / "run" / "dovecot" / "master.pid")
    if pid is not None and pid in plane.namespace.pids():
        netns.terminate(pid)


def wait_for_ports(plane: InstalledPlane, *ports: int, seconds: float = 60) -> None:
    """Until each port answers on the namespace's loopback."""
    plane.namespace.run(sys.executable, "-c", _WAIT, str(seconds), *map(str, ports),
                        timeout=seconds + 30)  # fmt: skip


def stop(namespace: netns.Namespace, root: Path) -> list[int]:
    """Stop the daemons (Postfix with its own command, Dovecot's and rspamd's masters by
    the pids in their pid files), then everything `spawn` started and the namespace."""
    if namespace.holder is not None and namespace.holder.poll() is None:
        with contextlib.suppress(netns.NamespaceError, subprocess.TimeoutExpired):
            namespace.run("/usr/sbin/postmulti", "-i", "-", "-p", "stop", timeout=30)
    for pid_file in (
        root / "var" / "spool" / "postfix" / "pid" / "master.pid",
        root / "run" / "dovecot" / "master.pid",
        root / "run" / "rspamd" / "rspamd.pid",
    ):
        pid = _pid(pid_file)
        if pid is not None and pid in namespace.pids():
            netns.terminate(pid)
    return netns.remove(namespace)


def keep_logs(root: Path, backend: str) -> None:
    """The daemons' logs, kept past the staging root (tests/support/secrets.py scans them)."""
    secrets.keep_logs(root / "log", f"installed-{backend}")


def fresh_root(backend: str) -> Path:
    return shared_tmp_dir(f"pm-ns-{backend}-")


def postmeister(plane: InstalledPlane, *arguments: str, timeout: float = 180) -> str:
    """The installed `postmeister` command run inside the node as root (what an operator
    types there): the node's POSTMEISTER_* settings (its postmeister.env) and a service's
    bare environment, nothing else of the test session's. Its output, stderr included."""
    env = {key: value for key, value in plane.stack.env.items() if key.startswith("POSTMEISTER_")}
    env |= {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    for kept in ("PYTHONPATH", "PYTHONPYCACHEPREFIX"):  # this source tree, its bytecode cache
        if kept in os.environ:
            env[kept] = os.environ[kept]
    assignments = [f"{key}={value}" for key, value in sorted(env.items())]
    command = [sys.executable, "-m", "postmeister.cli.main", *arguments]
    return plane.namespace.run("env", "-i", *assignments, *command, timeout=timeout)
