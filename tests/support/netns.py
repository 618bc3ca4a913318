"""A network namespace with the host's daemons running the INSTALLED configuration inside.

The production configuration names the standard ports (25, 587, 465, 143, 993, 110, 995)
and the system's paths (/etc/postfix, /etc/dovecot, /etc/postmeister, /var/spool/postfix,
...). To run it on a machine whose own ports and directories must stay untouched, and that
has no init system:

- `ip netns add` gives the daemons their own network stack (their own 127.0.0.1 and ports),
  reached from the host through a veth pair: the namespace is 10.231.N.2, the host side has
  several addresses (10.231.N.1, .3, .4), each a different client to Postfix and Dovecot.
- A *holder* process in that namespace, in a private mount namespace of its own
  (`unshare --mount`), bind-mounts test-owned directories over /etc (a copy of the host's,
  with the installation written into it), /run, and the state directories the installed
  configuration uses. Every command run with `Namespace.run`/`spawn` (`nsenter --target
  <holder> --mount --net`) sees that file system and that network.
- The daemons are started the way their service units would start them (same binaries,
  same configuration paths), and stopped by their own process ids; the holder is killed by
  its pid, the veth and the namespace are deleted by their names.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

# Run inside the namespace by the holder: make the bind mounts (source, target, in order),
# say so, then wait (stdin stays open) until the test kills it.
_HOLDER = """
import json, subprocess, sys
for source, target in json.loads(sys.argv[1]):
    subprocess.run(["mount", "--bind", source, target], check=True)
print("ready", flush=True)
sys.stdin.read()
"""


class NamespaceError(RuntimeError):
    """Setting up or driving the namespace failed; the message has the command's output."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NamespaceError(f"ip {' '.join(args)}: {result.stderr.strip()}")


@dataclass
class Namespace:
    """A network namespace and the holder of its mount namespace."""

    name: str
    veth: str
    subnet: int
    holder: subprocess.Popen[str] | None = None
    spawned: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        """Where the daemons listen, as the host sees them."""
        return f"10.231.{self.subnet}.2"

    def client(self, number: int = 1) -> str:
        """A host-side address to connect from (1, 3 or 4): each is another client."""
        return f"10.231.{self.subnet}.{number}"

    @property
    def holder_pid(self) -> int:
        assert self.holder is not None
        return self.holder.pid

    def _enter(self, command: tuple[str, ...]) -> list[str]:
        return ["nsenter", "--target", str(self.holder_pid), "--mount", "--net", "--", *command]

    def run(self, *command: str, timeout: float = 120) -> str:
        """Run `command` inside; its output. Output goes to a file, not a pipe: a daemon
        that forks would keep a pipe open."""
        with tempfile.TemporaryFile("w+b") as output:
            result = subprocess.run(
                self._enter(command),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
            output.seek(0)
            text = output.read().decode(errors="replace")
        if result.returncode != 0:
            raise NamespaceError(f"{' '.join(command)} failed ({result.returncode}): {text}")
        return text

    def spawn(
        self, *command: str, log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a long-running `command` inside (nsenter execs it: the pid is its own)."""
        with log.open("ab") as output:
            process = subprocess.Popen(
                self._enter(command),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
        self.spawned.append(process)
        return process

    def pids(self) -> list[int]:
        """Every process in the network namespace (the holder included)."""
        result = subprocess.run(
            ["ip", "netns", "pids", self.name], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in result.stdout.split()]


def _subnets_in_use() -> set[int]:
    """The 10.231.N.0/24 subnets some interface of the host has now (another namespace's)."""
    result = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False
    )
    return {int(n) for n in re.findall(r"inet 10\.231\.(\d+)\.", result.stdout)}


def free_subnets(count: int) -> list[int]:
    """`count` distinct subnet numbers no interface uses now: for namespaces that must
    reach each other (`connect`), whose addresses have to be known before they exist."""
    in_use = _subnets_in_use()
    chosen: list[int] = []
    while len(chosen) < count:
        subnet = int(uuid.uuid4().hex[:8], 16) % 250 + 1
        if subnet not in in_use and subnet not in chosen:
            chosen.append(subnet)
    return chosen


def create(mounts: list[tuple[Path, str]], *, subnet: int | None = None) -> Namespace:
    """A new namespace with the veth pair up and a holder that has made `mounts` (a
    test-owned source directory or file bind-mounted over each target path). `subnet`:
    its 10.231.N.0/24 (default: drawn from the name)."""
    tag = uuid.uuid4().hex[:8]
    chosen = subnet if subnet is not None else int(tag, 16) % 250 + 1
    namespace = Namespace(name=f"pm-{tag}", veth=f"pm{tag}h", subnet=chosen)
    try:
        _ip("netns", "add", namespace.name)
        _ip("link", "add", namespace.veth, "type", "veth", "peer", "name", f"pm{tag}n")
        _ip("link", "set", f"pm{tag}n", "netns", namespace.name)
        for host in (1, 3, 4):
            _ip("addr", "add", f"{namespace.client(host)}/24", "dev", namespace.veth)
        _ip("link", "set", namespace.veth, "up")
        inside = ("netns", "exec", namespace.name, "ip")
        _ip(*inside, "addr", "add", f"{namespace.address}/24", "dev", f"pm{tag}n")
        _ip(*inside, "link", "set", f"pm{tag}n", "up")
        _ip(*inside, "link", "set", "lo", "up")
        spec = json.dumps([[str(source), target] for source, target in mounts])
        namespace.holder = subprocess.Popen(
            ["ip", "netns", "exec", namespace.name, "unshare", "--mount",
             "--propagation", "private", "--", sys.executable, "-c", _HOLDER, spec],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert namespace.holder.stdout is not None
        if namespace.holder.stdout.readline().strip() != "ready":
            stderr = namespace.holder.stderr.read() if namespace.holder.stderr else ""
            raise NamespaceError(f"the namespace's holder did not start: {stderr}")
    except BaseException:
        remove(namespace)
        raise
    return namespace


def wait_for_exit(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return True
        if "\nState:\tZ" in status:
            return True
        time.sleep(0.05)
    return False


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`: this process only, by its id."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_for_exit(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_for_exit(pid, timeout)


def remove(namespace: Namespace) -> list[int]:
    """Stop what `spawn` started, kill the holder, delete the veth and the namespace, each
    by its own id or name; returns the pids still in the namespace before the end (the
    daemons' own stop must have ended them all: any left is a failure to report)."""
    for process in reversed(namespace.spawned):
        terminate(process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    leftover = [pid for pid in namespace.pids() if pid != namespace.holder_pid]
    for pid in leftover:
        terminate(pid)
    if namespace.holder is not None:
        terminate(namespace.holder.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            namespace.holder.wait(timeout=5)
        for stream in (namespace.holder.stdin, namespace.holder.stdout, namespace.holder.stderr):
            if stream is not None:
                stream.close()
    with contextlib.suppress(NamespaceError):
        _ip("link", "del", namespace.veth)
    with contextlib.suppress(NamespaceError):
        _ip("netns", "del", namespace.name)
    return leftover


@dataclass(frozen=True)
class Link:
    """A veth pair straight from one namespace into another: each reaches the other's
    address (`Namespace.address`) over it, with no route through the host."""

    first: Namespace
    second: Namespace
    name: str  # the end in `first`; deleting it deletes the pair


def connect(first: Namespace, second: Namespace) -> Link:
    """Link two namespaces: a host route to the other's address in each, over the pair.
    The other side answers ARP for its address on any of its interfaces (Linux's default),
    so the pair needs no addresses of its own."""
    tag = uuid.uuid4().hex[:8]
    link = Link(first, second, name=f"pm{tag}a")
    _ip("link", "add", link.name, "netns", first.name, "type", "veth",
        "peer", "name", f"pm{tag}b", "netns", second.name)  # fmt: skip
    try:
        for inside, end, other in ((first, link.name, second), (second, f"pm{tag}b", first)):
            _ip("-n", inside.name, "link", "set", end, "up")
            _ip("-n", inside.name, "route", "add", f"{other.address}/32", "dev", end,
                "src", inside.address)  # fmt: skip
    except BaseException:
        disconnect(link)
        raise
    return link


def disconnect(link: Link) -> None:
    """Delete the pair (its routes go with it), by the name of its end in `first`."""
    with contextlib.suppress(NamespaceError):
        _ip("-n", link.first.name, "link", "del", link.name)
