"""A real authoritative DNS server for tests: Debian's NSD on loopback.

`NsdServer` runs `/usr/sbin/nsd` in the foreground (`-d`) as the current user, with its own
configuration, zone files, pid file and state in a temporary folder, no remote control, on
127.0.0.1 and a free port (UDP and TCP). `publish(zone, text)` writes a zone and waits
until NSD serves it: a zone it already serves is reloaded with SIGHUP (NSD re-reads zone
files whose mtime changed), a new zone restarts it. `text` is the zone's records; when it
has no SOA the server adds one (and an NS record), with a serial that grows on every
publish, so that "served" can be checked by asking for the SOA. Stopped by its own pid.

Point a resolver at it with `address` (`127.0.0.1:PORT`), e.g. `DnsSettings(resolvers=
[server.address])` or dnspython's `Resolver(configure=False)` with `nameservers` and `port`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from tests.support.processes import free_port, stop

NSD: Final = "/usr/sbin/nsd"
HOST: Final = "127.0.0.1"


class NsdServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.zones: dict[str, str] = {}
        self._serial = int(time.time())
        self._mtime = time.time()
        self._process: subprocess.Popen[str] | None = None
        self._log_start = 0
        (directory / "zones").mkdir(parents=True, exist_ok=True)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def publish(self, zone: str, text: str) -> None:
        """Serve `text` as the zone `zone` (e.g. "example.org"), replacing what was there."""
        zone = zone.rstrip(".").lower()
        self._serial += 1
        body = text if _has_soa(text) else _apex(zone, self._serial) + text
        path = self._zone_file(zone)
        path.write_text(f"$ORIGIN {zone}.\n$TTL 300\n{body}\n", encoding="utf-8")
        # NSD reloads a zone whose file has a newer mtime; a second can hold two publishes.
        self._mtime = max(self._mtime + 1, time.time())
        os.utime(path, (self._mtime, self._mtime))
        known = zone in self.zones
        self.zones[zone] = text
        self._log_start = self._log_size()
        if self._process is not None and known:
            os.kill(self._process.pid, signal.SIGHUP)
        else:
            self._restart()
        self._wait_served(zone, None if _has_soa(text) else self._serial)

    def remove(self, zone: str) -> None:
        """Stop serving `zone`: its names are then REFUSED, as a server answers for a zone
        it is not authoritative for."""
        zone = zone.rstrip(".").lower()
        self.zones.pop(zone, None)
        self._zone_file(zone).unlink(missing_ok=True)
        self._restart()

    def stop(self) -> None:
        if self._process is not None:
            stop(self._process)
            self._process = None

    def _zone_file(self, zone: str) -> Path:
        return self.directory / "zones" / f"{zone}.zone"

    def _config(self) -> Path:
        d = self.directory
        lines = [
            "server:",
            f"  ip-address: {HOST}@{self.port}",
            f"  port: {self.port}",
            '  username: ""',
            '  chroot: ""',
            f'  zonesdir: "{d / "zones"}"',
            f'  pidfile: "{d / "nsd.pid"}"',
            f'  xfrdfile: "{d / "xfrd.state"}"',
            f'  xfrdir: "{d}"',
            f'  zonelistfile: "{d / "zone.list"}"',
            f'  logfile: "{d / "nsd.log"}"',
            '  database: ""',
            "  server-count: 1",
            "  do-ip6: no",
            "  hide-version: yes",
            "  verbosity: 1",
            "remote-control:",
            "  control-enable: no",
        ]
        for zone in sorted(self.zones):
            lines += ["zone:", f"  name: {zone}", f'  zonefile: "{zone}.zone"']
        path = d / "nsd.conf"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def _restart(self) -> None:
        self.stop()
        config = self._config()
        check = subprocess.run(
            ["/usr/sbin/nsd-checkconf", str(config)], capture_output=True, text=True, timeout=30
        )
        if check.returncode != 0:
            raise RuntimeError(f"nsd.conf: {check.stderr or check.stdout}")
        self._process = subprocess.Popen(
            [NSD, "-d", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def _wait_served(self, zone: str, serial: int | None, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        query = dns.message.make_query(f"{zone}.", dns.rdatatype.SOA)
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"nsd exited with {self._process.returncode}: {self._log()}")
            errors = [line for line in self._log().splitlines() if ": error: " in line]
            if errors:
                raise RuntimeError(f"nsd cannot load {zone}: " + "\n".join(errors))
            try:
                response = dns.query.udp(query, HOST, port=self.port, timeout=0.5)
            except (dns.exception.Timeout, OSError):
                time.sleep(0.05)
                continue
            answers = [r for r in response.answer if r.rdtype == dns.rdatatype.SOA]
            served = response.rcode() == dns.rcode.NOERROR and bool(answers)
            if served and (serial is None or any(rd.serial == serial for rd in answers[0])):
                return
            time.sleep(0.05)
        raise TimeoutError(f"nsd does not serve {zone} after {timeout}s: {self._log()}")

    def _log_size(self) -> int:
        log = self.directory / "nsd.log"
        return log.stat().st_size if log.exists() else 0

    def _log(self) -> str:
        """What NSD logged since the last publish."""
        log = self.directory / "nsd.log"
        if not log.exists():
            return ""
        with log.open("rb") as file:
            file.seek(self._log_start)
            return file.read().decode("utf-8", "replace")[-4000:]


def _has_soa(text: str) -> bool:
    return any(" SOA " in f" {line.split(';')[0].upper()} " for line in text.splitlines())


def _apex(zone: str, serial: int) -> str:
    return (
        f"@ IN SOA ns.{zone}. hostmaster.{zone}. {serial} 3600 600 86400 300\n"
        f"@ IN NS ns.{zone}.\n"
        f"ns IN A {HOST}\n"
    )


@contextmanager
def nsd(directory: Path, zones: dict[str, str] | None = None) -> Iterator[NsdServer]:
    """A running NSD serving `zones` (name -> records), stopped on exit."""
    server = NsdServer(directory)
    try:
        for name, text in (zones or {}).items():
            server.publish(name, text)
        yield server
    finally:
        server.stop()
