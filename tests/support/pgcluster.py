"""A private, throwaway PostgreSQL cluster that a test can stop and start.

initdb as the postgres user, on its own loopback port, trust authentication, no fsync: so
that stopping it disturbs nothing else on the machine. Stopped by the pid in its own
postmaster.pid, never by name.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.support.netns import Namespace, NamespaceError, remove, wait_for_exit
from tests.support.processes import alive, free_port


def pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    assert candidates, f"{name} not found: install postgresql"
    return str(candidates[-1])


class PrivateCluster:
    def __init__(self, root: Path, port: int) -> None:
        self.data = root / "pgdata"
        self.port = port
        self.log = root / "postgres.log"

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def init(self) -> None:
        postgres = pwd.getpwnam("postgres")
        self.data.parent.mkdir(exist_ok=True)
        os.chown(self.data.parent, postgres.pw_uid, postgres.pw_gid)
        self._as_postgres(pg_tool("initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth=trust", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(pg_tool("pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                          "-o", options, "-w", "start")  # fmt: skip

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Fast shutdown through the postmaster's own pid; waits until it is gone."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not alive(pid):
                break
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postmeister"


# --- A PostgreSQL primary and standby under pg_auto_failover, on a bridge of their own. ---
#
# Each node is a network namespace with one address on a bridge that the harness creates
# (10.232.N.0/24; the host side of the bridge is .1, so the test and the CLI reach every
# node directly), driven through tests/support/netns.py's `Namespace` (nsenter into a holder
# process; the pid of what it spawns is the command's own). pg_autoctl runs as the postgres
# user through `setpriv`. Everything is removed by its own id: the processes by pid, the
# namespaces, veths and the bridge by the names this run made up.

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_AUTOCTL = "/usr/bin/pg_autoctl"

# The monitor's timeouts (milliseconds), down from about a minute to a few seconds: a
# health check per second, a node unhealthy after 2 s without a report and a failed check,
# and the old primary given 2 s to demote itself before the standby is promoted (defaults:
# 5 s / 20 s / 30 s). An operator keeps the defaults unless the network is as quiet as here.
MONITOR_TIMEOUTS = {
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "500",
    "pgautofailover.node_considered_unhealthy_timeout": "2000",
    "pgautofailover.primary_demote_timeout": "2000",
    "pgautofailover.startup_grace_period": "2000",
}


class ClusterError(RuntimeError):
    """A command of the harness failed; the message has its output."""


def _command(*args: str, timeout: float = 60) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise ClusterError(f"{' '.join(args)} ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def _quietly(*args: str) -> None:
    with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
        _command(*args)


# Run inside each namespace: the process `Namespace.run`/`spawn` enter (nsenter --target);
# it waits, stdin open, until the harness kills it.
_HOLDER = "import sys; print('ready', flush=True); sys.stdin.read()"


@dataclass
class Host(Namespace):
    """One network namespace on the bridge: a machine of the cluster (`Namespace`'s run,
    spawn and removal, with an address on the bridge instead of a veth to the host)."""

    label: str = ""
    bridge_address: str = ""

    @property
    def address(self) -> str:
        return self.bridge_address

    def crash(self) -> list[int]:
        """SIGKILL every process of the namespace by its pid, as a power cut would: no
        shutdown, no goodbye to the monitor (the holder stays, so the host could start
        again). Returns the pids killed."""
        killed = [pid for pid in self.pids() if pid != self.holder_pid]
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in killed:
            wait_for_exit(pid)
        for process in self.spawned:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        return killed


def as_user(user: str, env: dict[str, str], *command: str) -> tuple[str, ...]:
    """`command` as `user` with exactly `env` (setpriv and env exec: the pid stays the
    command's own, unlike runuser, which forks)."""
    settings = [f"{name}={value}" for name, value in env.items()]
    return ("setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--",
            "env", "-i", *settings, *command)  # fmt: skip


class Bridge:
    """A bridge of this run's own and the namespaces on it."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        # 10.232.N: apart from tests/support/netns.py's 10.231.N.
        self.prefix = f"10.232.{int(self.tag, 16) % 250 + 1}"
        self.name = f"pmb{self.tag}"
        self.hosts: list[Host] = []
        _command("ip", "link", "add", self.name, "type", "bridge")
        _command("ip", "addr", "add", f"{self.address}/24", "dev", self.name)
        _command("ip", "link", "set", self.name, "up")

    @property
    def address(self) -> str:
        """The host's own address on the bridge (where the test and the CLI connect from)."""
        return f"{self.prefix}.1"

    def add_host(self, label: str) -> Host:
        number = len(self.hosts) + 2
        host = Host(name=f"pmc-{self.tag}-{number}", veth=f"pmc{self.tag}{number}",
                    subnet=0, label=label, bridge_address=f"{self.prefix}.{number}")  # fmt: skip
        self.hosts.append(host)
        inside = f"pmc{self.tag}{number}n"
        _command("ip", "netns", "add", host.name)
        _command("ip", "link", "add", host.veth, "type", "veth", "peer", "name", inside)
        _command("ip", "link", "set", host.veth, "master", self.name)
        _command("ip", "link", "set", host.veth, "up")
        _command("ip", "link", "set", inside, "netns", host.name)
        run = ("ip", "netns", "exec", host.name, "ip")
        _command(*run, "addr", "add", f"{host.address}/24", "dev", inside)
        _command(*run, "link", "set", inside, "up")
        _command(*run, "link", "set", "lo", "up")
        host.holder = subprocess.Popen(
            ["ip", "netns", "exec", host.name, sys.executable, "-c", _HOLDER],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert host.holder.stdout is not None
        if host.holder.stdout.readline().strip() != "ready":
            raise ClusterError(f"the holder of {label} did not start")
        return host

    def remove(self) -> None:
        """Every host removed by `netns.remove` (its processes by pid, its veth and
        namespace by name), side by side: each pg_autoctl takes seconds to stop Postgres;
        then the bridge."""
        with ThreadPoolExecutor(max_workers=len(self.hosts) or 1) as pool:
            list(pool.map(_remove_host, self.hosts))
        _quietly("ip", "link", "del", self.name)


def _remove_host(host: Host) -> None:
    if host.holder is None:  # its setup failed half way: only what `add_host` made
        _quietly("ip", "link", "del", host.veth)
        _quietly("ip", "netns", "del", host.name)
        return
    remove(host)


@dataclass
class PgNode:
    """A pg_auto_failover node (the monitor, or a Postgres node) on its host."""

    host: Host
    root: Path  # owned by postgres: its data directory, configuration, log
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def log(self) -> Path:
        return self.root / "pg_autoctl.log"

    def env(self) -> dict[str, str]:
        # pg_autoctl keeps its configuration and state under XDG_CONFIG_HOME/XDG_DATA_HOME:
        # the node's own directory, not the postgres user's home.
        return {
            "PATH": f"{PG_BIN}:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(self.root),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "share"),
            "PGDATA": str(self.pgdata),
            # initdb takes the encoding from the locale: without one it is SQL_ASCII, and
            # psycopg then hands back bytes instead of text.
            "LC_ALL": "C.UTF-8",
        }

    def autoctl(self, *args: str, timeout: float = 120) -> str:
        return self.host.run(*as_user("postgres", self.env(), PG_AUTOCTL, *args),
                             timeout=timeout)  # fmt: skip

    def start(self) -> None:
        command = as_user("postgres", self.env(), PG_AUTOCTL, "run", "--pgdata", str(self.pgdata))
        self.process = self.host.spawn(*command, log=self.log)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{self.host.address}:{self.port}/{database}"


class FailoverCluster:
    """A pg_auto_failover monitor, a primary and a synchronous standby, each on its own host.

    `formation` is `default`; the application database is `postmeister`, reachable from the
    bridge's /24 without a password (`--auth trust --pg-hba-lan`: a test network only).
    """

    def __init__(self, bridge: Bridge, root: Path) -> None:
        self.bridge = bridge
        self.root = root
        self.monitor = self._node("monitor")
        self.nodes = [self._node("node-a"), self._node("node-b")]

    def _node(self, label: str) -> PgNode:
        postgres = pwd.getpwnam("postgres")
        root = self.root / label
        root.mkdir(parents=True)
        os.chown(root, postgres.pw_uid, postgres.pw_gid)
        return PgNode(self.bridge.add_host(label), root, free_port())

    @property
    def monitor_uri(self) -> str:
        address = self.monitor.host.address
        return f"postgres://autoctl_node@{address}:{self.monitor.port}/pg_auto_failover?sslmode=disable"

    def start(self, *, timeout: float = 120) -> None:
        """Monitor, then the first node (becomes primary), then the second (cloned with
        pg_basebackup; becomes the synchronous standby); returns once both are in sync."""
        monitor = self.monitor
        monitor.autoctl("create", "monitor", "--pgctl", str(PG_BIN / "pg_ctl"),
                        "--pgdata", str(monitor.pgdata), "--pgport", str(monitor.port),
                        "--hostname", monitor.host.address, "--auth", "trust", "--no-ssl")  # fmt: skip
        settings = "".join(f"{name} = {value}\n" for name, value in MONITOR_TIMEOUTS.items())
        with (monitor.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(settings)
        monitor.start()
        self._wait(lambda: self.monitor_query("SELECT 1") == "1", timeout, "the monitor")
        for node in self.nodes:
            node.autoctl("create", "postgres", "--pgctl", str(PG_BIN / "pg_ctl"),
                         "--pgdata", str(node.pgdata), "--pgport", str(node.port),
                         "--hostname", node.host.address, "--name", node.host.label,
                         "--dbname", "postmeister", "--monitor", self.monitor_uri,
                         "--auth", "trust", "--pg-hba-lan", "--no-ssl",
                         timeout=timeout)  # fmt: skip
            node.start()
            self._wait_for_state(node, "single" if node is self.nodes[0] else "secondary",
                                 timeout)  # fmt: skip
        self._wait(lambda: self.state(self.nodes[0]) == "primary", timeout, "a primary")

    def _wait_for_state(self, node: PgNode, state: str, timeout: float) -> None:
        self._wait(lambda: self.state(node) == state, timeout, f"{node.host.label} {state}")

    def monitor_query(self, sql: str) -> str:
        try:
            return self.monitor.host.run(
                str(PG_BIN / "psql"), "-h", self.monitor.host.address, "-p",
                str(self.monitor.port), "-U", "autoctl_node", "-d", "pg_auto_failover",
                "-qAtc", sql, timeout=10,
            ).strip()  # fmt: skip
        except (NamespaceError, subprocess.TimeoutExpired):
            return ""

    def state(self, node: PgNode) -> str:
        """The node's state as the monitor last saw it reported (`reportedstate`)."""
        rows = self.monitor_query("SELECT nodename, reportedstate FROM pgautofailover.node")
        states = dict(line.split("|", 1) for line in rows.splitlines() if "|" in line)
        return states.get(node.host.label, "")

    def primary(self) -> PgNode | None:
        for node in self.nodes:
            if self.state(node) == "primary":
                return node
        return None

    def _wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.3)
        logs = "\n".join(f"--- {node.host.label}\n{_tail(node.log)}"
                         for node in (self.monitor, *self.nodes))  # fmt: skip
        raise ClusterError(f"waited {timeout}s for {what}\n{logs}")

    def database_url(self, *, application_name: str = "postmeister") -> str:
        """The multi-host URL every client uses: both nodes, the writable one wins."""
        hosts = "&".join(f"host={node.host.address}:{node.port}" for node in self.nodes)
        return (f"postgresql+psycopg://postgres@/postmeister?{hosts}"
                "&target_session_attrs=read-write&connect_timeout=3"
                f"&application_name={application_name}")  # fmt: skip


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
