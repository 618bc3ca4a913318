"""The Postmeister sender milter: submitted mail may carry only a header From the login owns.

Postfix checks the envelope sender against the login (`reject_sender_login_mismatch`) but has
no per-login check of the header From, which is what the recipient sees. This milter, attached
only to the submission service, reads the SASL login (`{auth_authen}` macro) and every From
header, and rejects the message at end of headers unless the login may use every address in
every From header, by the same rule and the same contract view as the envelope check
(`dataplane_v1_sender_logins`: own address, whitelisted address, whitelisted domain, or `*`).

Decisions, so that they are documented in one place:
- no From header, or a From without any address: rejected (550 5.7.1), there is nothing the
  login could be allowed to send as, and such mail is refused by most receivers anyway;
- no SASL login (never on a correctly configured submission port): rejected;
- the database cannot be read: temporary failure (451 4.3.0), the client retries.

It speaks the Sendmail milter protocol (version 6) itself, so nothing but the standard library
and the database driver is needed, and it holds no state besides the current session.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import socket
import socketserver
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import getaddresses
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("postmeister.milter")

# Commands from the MTA.
CMD_OPTNEG = ord("O")
CMD_MACRO = ord("D")
CMD_MAIL = ord("M")
CMD_HEADER = ord("L")
CMD_EOH = ord("N")
CMD_BODYEOB = ord("E")
CMD_ABORT = ord("A")
CMD_QUIT = ord("Q")
CMD_QUIT_NC = ord("K")
# Commands that expect a reply but carry nothing this milter needs.
CMDS_CONTINUE = frozenset(ord(c) for c in "CHRTBU")

# Replies.
REPLY_CONTINUE = b"c"
REPLY_ACCEPT = b"a"
REPLY_CODE = b"y"
REPLY_OPTNEG = b"O"

# Protocol steps the MTA may skip: connect, HELO, RCPT, body, unknown commands, DATA.
SKIP_STEPS = 0x01 | 0x02 | 0x08 | 0x10 | 0x100 | 0x200
PROTOCOL_VERSION = 6
MAX_PACKET = 1 << 20


class SenderPolicy(Protocol):
    def may_send_as(self, login: str, address: str) -> bool:
        """True when `login` may use `address` as a sender; raises on a database error."""
        ...


@dataclass(frozen=True)
class Verdict:
    accept: bool
    reply: str = ""


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]", " ", value)


def _normalise(address: str) -> str:
    local, _, domain = address.strip().rpartition("@")
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}".lower()


def _printable(text: str) -> str:
    # A reply line must stay one line, and '%' has a meaning in some milter hosts.
    return re.sub(r"[^\x21-\x7e ]|%", "?", text)[:200]


def decide(login: str | None, from_headers: list[str], policy: SenderPolicy) -> Verdict:
    """Whether a message with these From header values may be sent by `login`."""
    if not login:
        return Verdict(False, "550 5.7.1 Authentication required")
    addresses = [addr for _name, addr in getaddresses([_unfold(v) for v in from_headers])]
    if not addresses or any("@" not in a for a in addresses):
        return Verdict(False, "550 5.7.1 The message needs a From header with an address")
    try:
        for address in addresses:
            if not policy.may_send_as(login.lower(), _normalise(address)):
                return Verdict(
                    False,
                    f"550 5.7.1 Header From <{_printable(address)}> is not permitted "
                    f"for login {_printable(login)}",
                )
    except Exception:
        log.exception("sender check failed")
        return Verdict(False, "451 4.3.0 Sender check temporarily unavailable, try again later")
    return Verdict(True)


SENDER_QUERY = (
    "SELECT 1 FROM dataplane_v1_sender_logins "
    "WHERE login = {p} AND sender IN ({p}, {p}, '*') LIMIT 1"
)


class SqlitePolicy:
    """Reads the contract view from an SQLite file (WAL: never blocked by a writer)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def may_send_as(self, login: str, address: str) -> bool:
        domain = address.rpartition("@")[2]
        connection = sqlite3.connect(self.path, timeout=2)
        try:
            connection.execute("PRAGMA query_only = 1")
            row = connection.execute(
                SENDER_QUERY.format(p="?"), (login, address, domain)
            ).fetchone()
        finally:
            connection.close()
        return row is not None


class PostgresPolicy:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = {k: v for k, v in params.items() if v is not None}

    def may_send_as(self, login: str, address: str) -> bool:
        import psycopg

        domain = address.rpartition("@")[2]
        with psycopg.connect(**self.params, connect_timeout=2, autocommit=True) as connection:
            row = connection.execute(
                SENDER_QUERY.format(p="%s"), (login, address, domain)
            ).fetchone()
        return row is not None


def policy_from_config(database: dict[str, Any]) -> SenderPolicy:
    if database["dialect"] == "sqlite":
        return SqlitePolicy(str(database["path"]))
    params = {k: database.get(k) for k in ("host", "port", "dbname", "user", "password")}
    return PostgresPolicy(params)


@dataclass
class Session:
    """What one milter connection has seen so far."""

    login: str | None = None
    from_headers: list[str] = field(default_factory=list)

    def new_message(self) -> None:
        self.from_headers = []


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def packets(sock: socket.socket) -> Iterator[tuple[int, bytes]]:
    while True:
        head = _read_exact(sock, 4)
        if head is None:
            return
        (length,) = struct.unpack(">I", head)
        if length < 1 or length > MAX_PACKET:
            return
        body = _read_exact(sock, length)
        if body is None:
            return
        yield body[0], body[1:]


def send_packet(sock: socket.socket, reply: bytes, payload: bytes = b"") -> None:
    data = reply + payload
    sock.sendall(struct.pack(">I", len(data)) + data)


def parse_macros(payload: bytes) -> dict[str, str]:
    parts = payload[1:].split(b"\0")
    pairs = zip(parts[0::2], parts[1::2], strict=False)
    return {k.decode("latin-1").strip("{}"): v.decode("utf-8", "replace") for k, v in pairs}


def serve_connection(sock: socket.socket, policy: SenderPolicy) -> None:
    """Run the milter protocol on one MTA connection until it quits."""
    session = Session()
    for command, payload in packets(sock):
        if command == CMD_OPTNEG:
            _version, _actions, offered = struct.unpack(">III", payload[:12])
            send_packet(
                sock, REPLY_OPTNEG, struct.pack(">III", PROTOCOL_VERSION, 0, SKIP_STEPS & offered)
            )
        elif command == CMD_MACRO:
            login = parse_macros(payload).get("auth_authen")
            if login:
                session.login = login
        elif command == CMD_MAIL:
            session.new_message()
            send_packet(sock, REPLY_CONTINUE)
        elif command == CMD_HEADER:
            name, _, rest = payload.partition(b"\0")
            if name.decode("latin-1").lower() == "from":
                session.from_headers.append(rest.rstrip(b"\0").decode("utf-8", "replace"))
            send_packet(sock, REPLY_CONTINUE)
        elif command == CMD_EOH:
            verdict = decide(session.login, session.from_headers, policy)
            if verdict.accept:
                send_packet(sock, REPLY_ACCEPT)
            else:
                log.info("rejected for %s: %s", session.login, verdict.reply)
                send_packet(sock, REPLY_CODE, verdict.reply.encode("utf-8") + b"\0")
        elif command == CMD_BODYEOB or command in CMDS_CONTINUE:
            send_packet(sock, REPLY_CONTINUE)
        elif command == CMD_ABORT:
            session.new_message()
        elif command == CMD_QUIT_NC:
            session = Session()
        elif command == CMD_QUIT:
            return


class _Handler(socketserver.BaseRequestHandler):
    server: MilterServer

    def handle(self) -> None:
        self.request.settimeout(300)
        try:
            self.server.serve(self.request)
        except OSError as error:
            log.info("connection ended: %s", error)


class MilterServer(socketserver.ThreadingTCPServer):
    """A thread per MTA connection, each running `serve` on its socket."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], serve: Callable[[socket.socket], None]) -> None:
        self.serve = serve
        super().__init__(address, _Handler)


def parse_endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def run(
    config_file: Path, *, pid_file: Path | None = None, ready: Callable[[], None] | None = None
) -> None:
    """Serve until SIGTERM/SIGINT, with the listen addresses and database of `config_file`:
    the sender milter, and the antispam milter when the file configures one."""
    from postmeister.dataplane import antispam

    config = json.loads(config_file.read_text())
    policy = policy_from_config(config["database"])
    servers = [
        MilterServer(
            parse_endpoint(str(config["listen"])), lambda sock: serve_connection(sock, policy)
        )
    ]
    if "antispam" in config:
        servers.append(antispam.server_from_config(config["antispam"], config["database"]))

    def stop(_signum: int, _frame: object) -> None:
        for server in servers:
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threads = [
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
        for server in servers
    ]
    for thread in threads:
        thread.start()
    if pid_file is not None:
        pid_file.write_text(f"{os.getpid()}\n")
    if ready is not None:
        ready()
    try:
        for thread in threads:
            while thread.is_alive():  # a timed join lets the signal handlers run
                thread.join(0.5)
    finally:
        for server in servers:
            server.server_close()
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--pid-file", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run(args.config, pid_file=args.pid_file)


if __name__ == "__main__":
    main()
