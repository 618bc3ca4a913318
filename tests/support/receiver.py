"""A remote mail server for tests: a second, separate real Postfix on another loopback address.

It plays "the internet" for outbound mail (a recipient's MX, or a smarthost): its own
config_directory and queue_directory under the test's directory, started with
`postfix -c DIR start` and stopped with `postfix -c DIR stop` (its master's pid is checked
gone afterwards), listening on 127.0.0.2 on a free port. It accepts mail for any domain
(`virtual_mailbox_domains = static:all`) into one Maildir, offers STARTTLS with a
self-signed certificate, and keeps every message for `wait_for` to return.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import grp
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from postmeister.dataplane.render.postfix import _STOCK_SERVICES
from postmeister.tls import write_self_signed
from tests.support.processes import alive

RECEIVER_HOST = "127.0.0.2"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Receiver:
    """A running remote Postfix; `relay` is how a sending Postfix names it as next hop."""

    root: Path
    host: str
    port: int

    @property
    def relay(self) -> str:
        return f"[{self.host}]:{self.port}"

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / "inbox"

    @property
    def log_file(self) -> Path:
        return self.root / "log" / "postfix.log"

    def raw_messages(self) -> list[bytes]:
        """Every message received so far, oldest first (as the remote stored them)."""
        files = [
            path
            for folder in ("new", "cur")
            if (self.maildir / folder).is_dir()
            for path in (self.maildir / folder).iterdir()
        ]
        return [path.read_bytes() for path in sorted(files, key=lambda p: p.stat().st_mtime_ns)]

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(raw, _class=EmailMessage, policy=email.policy.default)
            for raw in self.raw_messages()
        ]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[bytes]:
        """The raw messages once at least `count` have arrived; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            received = self.raw_messages()
            if len(received) >= count:
                return received
            time.sleep(0.1)
        log = self.log_file.read_text() if self.log_file.exists() else "(no log)"
        raise AssertionError(f"{len(self.raw_messages())} of {count} messages arrived:\n{log}")

    def domains_seen(self) -> set[str]:
        """The recipient domains of everything received (from the Delivered-To headers)."""
        return {
            str(m["Delivered-To"]).rpartition("@")[2] for m in self.messages() if m["Delivered-To"]
        }


def _sasl_lines(root: Path) -> list[str]:
    # SMTP AUTH through a Dovecot of its own (auth only), after STARTTLS, and required.
    return [
        "smtpd_sasl_type = dovecot\n",
        f"smtpd_sasl_path = {root / 'run' / 'dovecot' / 'auth-postfix'}\n",
        "smtpd_sasl_auth_enable = yes\n",
        "smtpd_tls_auth_only = yes\n",
        "smtpd_relay_restrictions = permit_sasl_authenticated, reject\n",
        "smtpd_recipient_restrictions = permit_sasl_authenticated, reject\n",
    ]


def _dovecot_conf(root: Path) -> str:
    run = root / "run" / "dovecot"  # base_dir: the auth listener is created in it
    return "".join(
        [
            "# Auth only, for the test receiver's SMTP AUTH (tests/support/receiver.py).\n",
            f"base_dir = {run}\n",
            f"state_dir = {root / 'state' / 'dovecot'}\n",
            f"log_path = {root / 'log' / 'dovecot.log'}\n",
            "protocols = none\n",
            "ssl = no\n",
            "auth_mechanisms = plain login\n",
            "passdb {\n  driver = passwd-file\n",
            f"  args = scheme=PLAIN {root / 'etc' / 'sasl-users'}\n}}\n",
            "service auth {\n",
            "  unix_listener auth-postfix {\n",
            "    mode = 0660\n    user = postfix\n    group = postfix\n  }\n}\n",
        ]
    )


def _main_cf(root: Path, host: str, uid: int, gid: int, *, sasl: bool = False) -> str:
    return "".join(
        [
            "# A test's remote mail server (tests/support/receiver.py).\n",
            "compatibility_level = 3.6\n",
            f"queue_directory = {root / 'queue'}\n",
            f"data_directory = {root / 'data'}\n",
            "mail_owner = postfix\n",
            "setgid_group = postdrop\n",
            "myhostname = mx.remote.test\n",
            "mydestination =\n",
            "mynetworks =\n",
            "relay_domains =\n",
            # Postfix checks inet_interfaces against configured addresses (lo has only
            # 127.0.0.1); master.cf binds the service to the receiver's own address.
            "inet_interfaces = loopback-only\n",
            "inet_protocols = ipv4\n",
            "alias_maps =\n",
            "alias_database =\n",
            "smtpd_peername_lookup = no\n",
            "smtp_dns_support_level = disabled\n",
            "smtpd_relay_restrictions = reject_unauth_destination\n",
            "smtpd_recipient_restrictions = permit\n",
            # Any domain at all, into one Maildir.
            "virtual_mailbox_domains = static:all\n",
            f"virtual_mailbox_base = {root / 'mail'}\n",
            "virtual_mailbox_maps = static:inbox/\n",
            "virtual_minimum_uid = 1\n",
            f"virtual_uid_maps = static:{uid}\n",
            f"virtual_gid_maps = static:{gid}\n",
            "default_transport = error:5.7.1 the test receiver sends nothing on\n",
            f"smtpd_tls_cert_file = {root / 'tls' / 'cert.pem'}\n",
            f"smtpd_tls_key_file = {root / 'tls' / 'key.pem'}\n",
            "smtpd_tls_security_level = may\n",
            "smtpd_tls_received_header = yes\n",
            f"maillog_file = {root / 'log' / 'postfix.log'}\n",
            f"maillog_file_prefixes = {root / 'log'}\n",
            "biff = no\n",
            *(_sasl_lines(root) if sasl else []),
        ]
    )


def _master_pid(root: Path) -> int | None:
    try:
        return int((root / "queue" / "pid" / "master.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def running_receiver(
    root: Path, *, host: str = RECEIVER_HOST, sasl_users: dict[str, str] | None = None
) -> Iterator[Receiver]:
    """Start a remote Postfix under `root` (which the postfix user must be able to enter)
    and stop it again; as root, like the private stack. With `sasl_users` (login ->
    password) it is a smarthost: SMTP AUTH after STARTTLS required, through a Dovecot of
    its own (auth only), started and stopped by its own pid."""
    postfix = pwd.getpwnam("postfix")
    for name in ("etc", "queue", "log", "tls"):
        (root / name).mkdir(parents=True, exist_ok=True)
        os.chmod(root / name, 0o755)  # noqa: S103 - postfix must enter them
    for name in ("data", "mail"):
        (root / name).mkdir(parents=True, exist_ok=True)
        os.chown(root / name, postfix.pw_uid, postfix.pw_gid)
    write_self_signed(root / "tls" / "cert.pem", root / "tls" / "key.pem", ["mx.remote.test"])
    port = _free_port(host)
    sasl = sasl_users is not None
    (root / "etc" / "main.cf").write_text(
        _main_cf(root, host, postfix.pw_uid, postfix.pw_gid, sasl=sasl)
    )
    dovecot_pid: int | None = None
    if sasl_users is not None:
        for name in ("run", "state"):
            (root / name).mkdir(parents=True, exist_ok=True)
            os.chmod(root / name, 0o755)  # noqa: S103 - dovecot's users must enter them
        users = "".join(f"{login}:{{PLAIN}}{password}\n" for login, password in sasl_users.items())
        (root / "etc" / "sasl-users").write_text(users)
        # Dovecot's auth process reads it as the dovecot user: that group only.
        os.chown(root / "etc" / "sasl-users", 0, grp.getgrnam("dovecot").gr_gid)
        os.chmod(root / "etc" / "sasl-users", 0o640)
        (root / "etc" / "dovecot.conf").write_text(_dovecot_conf(root))
        # Output to nowhere, not a pipe: the forked daemon would keep a pipe open.
        subprocess.run(
            ["dovecot", "-c", str(root / "etc" / "dovecot.conf")],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        dovecot_pid = _wait_for_pid(root / "run" / "dovecot" / "master.pid")
    (root / "etc" / "master.cf").write_text(
        f"{host}:{port} inet n - n - - smtpd\n" + _STOCK_SERVICES
    )
    receiver = Receiver(root=root, host=host, port=port)
    command = ["postfix", "-c", str(receiver.config_dir)]
    subprocess.run([*command, "start"], check=True, capture_output=True, timeout=60)
    pid = _master_pid(root)
    try:
        _wait_listening(host, port)
        yield receiver
    finally:
        subprocess.run([*command, "stop"], check=False, capture_output=True, timeout=60)
        if dovecot_pid is not None and alive(dovecot_pid):
            os.kill(dovecot_pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for daemon in (pid, dovecot_pid):
            while daemon is not None and alive(daemon) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert daemon is None or not alive(daemon), f"receiver daemon {daemon} did not stop"


def _wait_for_pid(pid_file: Path, timeout: float = 10.0) -> int:
    """The pid a forking daemon writes a moment after its start command returned."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(pid_file.read_text().split()[0])
        time.sleep(0.05)
    raise AssertionError(f"no pid in {pid_file}")


def _wait_listening(host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.05)
    raise AssertionError(f"the receiver did not listen on {host}:{port}")
