"""A private webmail for the e2e tests: Debian's Roundcube, PHP-FPM and nginx, configured by
`render_webmail` against a running stack, with their own configuration, pid and log files
in a directory of their own (nothing under /etc or /var is read for the instance's state or
written).

Roundcube is given a tree of its own (`INSTALL_PATH`: public_html/index.php derives it from
its own location): symlinks to Debian's program and skins, and a plugins directory that
holds Postmeister's plugin beside Debian's. It reads its configuration from the rendered
directory (`ROUNDCUBE_CONFIG_DIR`, set by the rendered pool).

The stack's certificate is renewed with one from a test CA that names both the host the
webmail connects to (`mail.postmeister.test`, verified by Roundcube) and 127.0.0.1 (what the
browser and the HTTPS test connect to): nginx serves the same certificate and key files as
the mail ports, as on a real server.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from postmeister.dataplane.render.model import Endpoint, StackLayout
from postmeister.dataplane.render.webmail import (
    CONFIG_FILE,
    DEBIAN_INSTALL_PATH,
    DEFAULTS_FILE,
    FPM_POOL_FILE,
    NGINX_FILE,
    PLUGIN_FILE,
    Webmail,
    render_webmail,
)
from postmeister.dataplane.stack import free_ports
from tests.e2e.conftest import Stack, alive, dataplane_cli, shared_tmp_dir
from tests.e2e.mail import HOST
from tests.support.secrets import keep_logs
from tests.support.tls import TestPki, make_test_pki

STACK_HOSTNAME = "mail.postmeister.test"
PHP_FPM = "/usr/sbin/php-fpm8.2"
NGINX = "/usr/sbin/nginx"
SCHEMA = Path("/usr/share/roundcube/SQL/sqlite.initial.sql")


@dataclass
class WebmailInstance:
    url: str
    root: Path
    pki: TestPki
    pids: dict[str, int]
    database: Path

    @property
    def log_dir(self) -> Path:
        return self.root / "log"


def _renew_stack_certificate(stack: Stack, pki: TestPki) -> None:
    layout = StackLayout(stack.root)
    renewed = ((layout.tls.key_file, pki.server_key), (layout.tls.cert_file, pki.server_cert))
    for target, source in renewed:
        mode = target.stat().st_mode & 0o777
        temporary = target.with_name(target.name + ".new")
        shutil.copyfile(source, temporary)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    result = dataplane_cli("reload", "--dir", str(stack.root), env=stack.env)
    assert result.returncode == 0, result.stderr


def _own_tree(tree: Path, plugin: str) -> None:
    """A Roundcube INSTALL_PATH of symlinks to Debian's, with its own plugins directory."""
    for name in ("program", "skins", "SQL", "index.php"):
        (tree / name).symlink_to(DEBIAN_INSTALL_PATH / name)
    (tree / "plugins").mkdir()
    for found in (DEBIAN_INSTALL_PATH / "plugins").iterdir():
        (tree / "plugins" / found.name).symlink_to(found.resolve())
    public = tree / "public_html"
    public.mkdir()
    shutil.copy2(DEBIAN_INSTALL_PATH / "public_html" / "index.php", public / "index.php")
    (public / "program").symlink_to((DEBIAN_INSTALL_PATH / "public_html" / "program").resolve())
    (public / "plugins").symlink_to("../plugins")
    (public / "skins").symlink_to("../skins")
    plugin_dir = tree / "plugins" / Path(PLUGIN_FILE).parent.name
    plugin_dir.mkdir()
    (plugin_dir / Path(PLUGIN_FILE).name).write_text(plugin)


def _chown(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _read_pid(path: Path, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return int(path.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            time.sleep(0.05)
    raise AssertionError(f"no pid in {path}")


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"


def start_webmail(stack: Stack) -> WebmailInstance:
    for needed in (PHP_FPM, NGINX, SCHEMA, DEBIAN_INSTALL_PATH / "public_html" / "index.php"):
        assert Path(needed).exists(), f"needs {needed} (scripts/install-dataplane-packages)"
    root = shared_tmp_dir(f"pm-webmail-{stack.backend}-")
    for name in ("config", "db", "log", "temp", "run", "nginx-temp", "roundcube"):
        (root / name).mkdir(mode=0o755)
    pki = make_test_pki(root / "pki", hosts=(HOST, STACK_HOSTNAME), name="Webmail Test")
    _renew_stack_certificate(stack, pki)
    layout = StackLayout(stack.root)
    (port,) = free_ports(1)
    webmail = Webmail(
        server_name=HOST,
        listen=Endpoint(HOST, port),
        tls=layout.tls,
        imap=Endpoint(HOST, stack.ports["imaps"]),
        submission=Endpoint(HOST, stack.ports["submissions"]),
        imap_implicit_tls=True,
        submission_implicit_tls=True,
        tls_peer_name=STACK_HOSTNAME,
        ca_file=pki.ca_cert,
        des_key=os.urandom(16).hex(),
        database=root / "db" / "roundcube.sqlite",
        config_dir=root / "config",
        fpm_socket=root / "run" / "php-fpm.sock",
        log_dir=root / "log",
        temp_dir=root / "temp",
        install_path=root / "roundcube",
        product_name="Postmeister Webmail",
    )
    files = {file.path: file.content for file in render_webmail(webmail)}
    (root / "config" / "config.inc.php").write_text(files[CONFIG_FILE])
    (root / "config" / "defaults.inc.php").write_text(files[DEFAULTS_FILE])
    _own_tree(root / "roundcube", files[PLUGIN_FILE])

    _run(["sqlite3", "-init", str(SCHEMA), str(webmail.database), ".quit"])
    for writable in (root / "db", webmail.database, root / "log", root / "temp"):
        _chown(writable, webmail.user)

    (root / "php-fpm.conf").write_text(
        f"[global]\npid = {root / 'run' / 'php-fpm.pid'}\n"
        f"error_log = {root / 'log' / 'php-fpm.log'}\ndaemonize = yes\n\n" + files[FPM_POOL_FILE]
    )
    (root / "server.conf").write_text(files[NGINX_FILE])
    temp = root / "nginx-temp"
    (root / "nginx.conf").write_text(
        f"user {webmail.user};\nworker_processes 1;\npid {root / 'run' / 'nginx.pid'};\n"
        f"error_log {root / 'log' / 'nginx-error.log'};\n"
        "events {\n    worker_connections 64;\n}\n"
        "http {\n    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n"
        f"    access_log {root / 'log' / 'nginx-access.log'};\n"
        + "".join(
            f"    {kind}_temp_path {temp / kind};\n"
            for kind in ("client_body", "fastcgi", "proxy", "uwsgi", "scgi")
        )
        + f"    include {root / 'server.conf'};\n}}\n"
    )
    pids: dict[str, int] = {}
    instance = WebmailInstance(f"https://{HOST}:{port}/", root, pki, pids, webmail.database)
    try:
        _run([PHP_FPM, "--fpm-config", str(root / "php-fpm.conf")])
        pids["php-fpm"] = _read_pid(root / "run" / "php-fpm.pid")
        _run([NGINX, "-e", str(root / "log" / "nginx-error.log"), "-c", str(root / "nginx.conf")])
        pids["nginx"] = _read_pid(root / "run" / "nginx.pid")
    except BaseException:
        stop_webmail(instance)
        raise
    return instance


def stop_webmail(instance: WebmailInstance) -> None:
    """Stop nginx and PHP-FPM by their own pids (each master stops its workers)."""
    for pid in instance.pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in instance.pids.values()):
        time.sleep(0.05)
    still_running = {name: pid for name, pid in instance.pids.items() if alive(pid)}
    keep_logs(instance.log_dir, f"webmail-{instance.root.name}")
    shutil.rmtree(instance.root, ignore_errors=True)
    assert not still_running, f"webmail daemons still running: {still_running}"
