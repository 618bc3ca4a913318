"""The Sendmail milter protocol (version 6), as Postfix speaks it: the codec, written once.

A packet is a 4-byte big-endian length, then that many bytes: one command (or reply) byte
and its payload. Strings in payloads are NUL-terminated. This module decodes what the MTA
sends, encodes what a milter answers, and runs the conversation on one connection for a
`Milter` (the policy), which only ever sees decoded commands and returns `Reply` values.

What the MTA expects, in one place:
- `O` (option negotiation) is answered with the protocol version, the actions the milter
  may take (add/change headers, ...) and the protocol steps the MTA may skip;
- `D` (macros), `A` (abort) and `Q`/`K` (quit) are never answered;
- every other command is answered, with `c` (continue) unless the milter says more.

A packet that is malformed (too short for its command, no NUL where one must be) or larger
than `MAX_PACKET` ends the connection: Postfix then applies its `milter_default_action`
(tempfail here), so a confused conversation never lets a message through unchecked.
"""

from __future__ import annotations

import logging
import re
import socket
import socketserver
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

log = logging.getLogger("postmeister.milter")

PROTOCOL_VERSION: Final = 6
# Postfix sends body chunks of at most 64 KiB; anything near this limit is not Postfix.
MAX_PACKET: Final = 1 << 20

# Commands from the MTA.
CMD_ABORT: Final = ord("A")
CMD_BODY: Final = ord("B")
CMD_CONNECT: Final = ord("C")
CMD_MACRO: Final = ord("D")
CMD_BODYEOB: Final = ord("E")
CMD_HELO: Final = ord("H")
CMD_QUIT_NC: Final = ord("K")
CMD_HEADER: Final = ord("L")
CMD_MAIL: Final = ord("M")
CMD_EOH: Final = ord("N")
CMD_OPTNEG: Final = ord("O")
CMD_QUIT: Final = ord("Q")
CMD_RCPT: Final = ord("R")
CMD_DATA: Final = ord("T")
CMD_UNKNOWN: Final = ord("U")
COMMANDS: Final = frozenset(map(ord, "ABCDEHKLMNOQRTU"))
# Commands that get no reply.
UNANSWERED: Final = frozenset({CMD_MACRO, CMD_ABORT, CMD_QUIT, CMD_QUIT_NC})

# Replies.
REPLY_ADDHEADER: Final = b"h"
REPLY_CHGHEADER: Final = b"m"
REPLY_INSHEADER: Final = b"i"
REPLY_ACCEPT: Final = b"a"
REPLY_CONTINUE: Final = b"c"
REPLY_OPTNEG: Final = b"O"
REPLY_CODE: Final = b"y"

# Actions a milter may ask for (SMFIF_*).
ACTION_ADDHDRS: Final = 0x01
ACTION_CHGHDRS: Final = 0x10

# Protocol steps the MTA may leave out (SMFIP_NO*).
SKIP_CONNECT: Final = 0x01
SKIP_HELO: Final = 0x02
SKIP_MAIL: Final = 0x04
SKIP_RCPT: Final = 0x08
SKIP_BODY: Final = 0x10
SKIP_HEADERS: Final = 0x20
SKIP_EOH: Final = 0x40
SKIP_UNKNOWN: Final = 0x100
SKIP_DATA: Final = 0x200

_REPLY_TEXT = re.compile(r"[45][0-9][0-9] [245]\.[0-9]{1,3}\.[0-9]{1,3} [\x20-\x7e]*")


class MalformedPacket(ValueError):
    """The MTA sent something this codec cannot read; the connection must end."""


@dataclass(frozen=True)
class Packet:
    command: int
    payload: bytes


@dataclass(frozen=True)
class Reply:
    """One packet a milter sends back."""

    code: bytes
    payload: bytes = b""

    def encode(self) -> bytes:
        return encode_packet(self.code, self.payload)


CONTINUE: Final = Reply(REPLY_CONTINUE)
ACCEPT: Final = Reply(REPLY_ACCEPT)


# --------------------------------------------------------------------------- framing


def encode_packet(code: bytes, payload: bytes = b"") -> bytes:
    data = code + payload
    return struct.pack(">I", len(data)) + data


class Decoder:
    """Splits a byte stream into packets; `feed` as bytes arrive, then iterate `packets`."""

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self.max_packet = max_packet
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole packet."""
        return len(self._buffer)

    def packets(self) -> Iterator[Packet]:
        while len(self._buffer) >= 4:
            (length,) = struct.unpack(">I", self._buffer[:4])
            if length < 1:
                raise MalformedPacket("empty packet")
            if length > self.max_packet:
                raise MalformedPacket(f"packet of {length} bytes exceeds {self.max_packet}")
            if len(self._buffer) < 4 + length:
                return
            body = bytes(self._buffer[4 : 4 + length])
            del self._buffer[: 4 + length]
            if body[0] not in COMMANDS:
                raise MalformedPacket(f"unknown command {body[:1]!r}")
            yield Packet(body[0], body[1:])


# --------------------------------------------------------------------------- payloads


def cstrings(payload: bytes) -> list[str]:
    """The NUL-terminated strings of a payload (a missing final NUL is tolerated)."""
    if not payload:
        return []
    parts = payload.split(b"\0")
    if parts[-1] == b"":
        parts.pop()
    return [p.decode("utf-8", "surrogateescape") for p in parts]


def cstring(text: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    if b"\0" in data:
        raise ValueError("a milter string cannot contain NUL")
    return data + b"\0"


@dataclass(frozen=True)
class Options:
    """An option negotiation: protocol version, actions, protocol step flags."""

    version: int
    actions: int
    steps: int


def decode_options(payload: bytes) -> Options:
    if len(payload) < 12:
        raise MalformedPacket("option negotiation shorter than 12 bytes")
    return Options(*struct.unpack(">III", payload[:12]))


def negotiate(offered: Options, *, actions: int, skip: int) -> Reply:
    """The answer to the MTA's offer: at most its version and actions, and of the steps
    this milter does not need, those the MTA offered to leave out."""
    version = min(PROTOCOL_VERSION, offered.version)
    payload = struct.pack(">III", version, actions & offered.actions, skip & offered.steps)
    return Reply(REPLY_OPTNEG, payload)


def decode_macros(payload: bytes) -> tuple[int, dict[str, str]]:
    """The command the macros are for, and the macros by name without braces."""
    if not payload:
        raise MalformedPacket("macro packet without a command")
    values = cstrings(payload[1:])
    if len(values) % 2:
        raise MalformedPacket("macro packet with a name but no value")
    pairs = zip(values[0::2], values[1::2], strict=True)
    return payload[0], {name.strip("{}"): value for name, value in pairs}


def decode_header(payload: bytes) -> tuple[str, str]:
    """A header's name and value (folded lines as the MTA sent them)."""
    values = cstrings(payload)
    if len(values) != 2 or not payload.endswith(b"\0"):
        raise MalformedPacket("header packet is not two NUL-terminated strings")
    return values[0], values[1]


@dataclass(frozen=True)
class Connect:
    hostname: str
    family: str  # '4', '6', 'L' (local socket) or 'U' (unknown)
    port: int
    address: str


def decode_connect(payload: bytes) -> Connect:
    hostname, nul, rest = payload.partition(b"\0")
    if not nul or not rest:
        raise MalformedPacket("connect packet without a family")
    family = chr(rest[0])
    if family == "U":
        return Connect(hostname.decode("utf-8", "replace"), family, 0, "")
    if len(rest) < 4 or not rest.endswith(b"\0"):
        raise MalformedPacket("connect packet without port and address")
    (port,) = struct.unpack(">H", rest[1:3])
    address = rest[3:-1].decode("ascii", "replace")
    return Connect(hostname.decode("utf-8", "replace"), family, port, address)


def decode_argument(payload: bytes) -> str:
    """The first string of MAIL, RCPT or HELO (the address or name; ESMTP args follow)."""
    values = cstrings(payload)
    if not values:
        raise MalformedPacket("command without its argument")
    return values[0]


def reply_code(text: str) -> Reply:
    """An SMTP reply (`550 5.7.1 text`) that ends the message or the recipient."""
    if _REPLY_TEXT.fullmatch(text) is None or "%" in text:
        raise ValueError(f"not a single-line 4xx/5xx SMTP reply with status code: {text!r}")
    return Reply(REPLY_CODE, cstring(text))


def add_header(name: str, value: str) -> Reply:
    return Reply(REPLY_ADDHEADER, cstring(name) + cstring(value))


def insert_header(index: int, name: str, value: str) -> Reply:
    """Insert header `name` at position `index` (0: before every other header)."""
    return Reply(REPLY_INSHEADER, struct.pack(">I", index) + cstring(name) + cstring(value))


def change_header(name: str, index: int, value: str) -> Reply:
    """Change the `index`-th (1-based) header `name`; an empty value deletes it."""
    return Reply(REPLY_CHGHEADER, struct.pack(">I", index) + cstring(name) + cstring(value))


def printable(text: str, limit: int = 200) -> str:
    """`text` made safe to quote in a reply line: one line of ASCII, no '%'."""
    return re.sub(r"[^\x21-\x7e ]|%", "?", text)[:limit]


# --------------------------------------------------------------------------- conversation


class Milter(Protocol):
    """A milter's policy for one MTA connection; the codec calls it, it never does I/O."""

    actions: int
    skip: int

    def macros(self, command: int, macros: dict[str, str]) -> None:
        """Macros the MTA sends before `command` (no reply)."""

    def handle(self, packet: Packet) -> Sequence[Reply]:
        """The replies to an answered command; an empty sequence means continue."""
        ...

    def abort(self) -> None:
        """The current message is abandoned (no reply)."""

    def reset(self) -> None:
        """The MTA reuses the connection for a new SMTP session (QUIT_NC)."""


def converse(packets: Iterator[Packet], milter: Milter, send: Callable[[bytes], None]) -> None:
    """Answer `packets` for `milter` until the MTA quits or the stream ends."""
    for packet in packets:
        command = packet.command
        if command == CMD_OPTNEG:
            offered = decode_options(packet.payload)
            send(negotiate(offered, actions=milter.actions, skip=milter.skip).encode())
        elif command == CMD_MACRO:
            milter.macros(*decode_macros(packet.payload))
        elif command == CMD_ABORT:
            milter.abort()
        elif command == CMD_QUIT_NC:
            milter.reset()
        elif command == CMD_QUIT:
            return
        else:
            replies = list(milter.handle(packet)) or [CONTINUE]
            send(b"".join(reply.encode() for reply in replies))


def read_packets(sock: socket.socket, max_packet: int = MAX_PACKET) -> Iterator[Packet]:
    decoder = Decoder(max_packet)
    while True:
        data = sock.recv(65536)
        if not data:
            if decoder.pending:
                raise MalformedPacket("connection closed inside a packet")
            return
        decoder.feed(data)
        yield from decoder.packets()


def serve_socket(sock: socket.socket, milter: Milter) -> None:
    """Run one MTA connection; a malformed packet ends it (logged, never raised)."""
    try:
        converse(read_packets(sock), milter, sock.sendall)
    except MalformedPacket as error:
        log.warning("closing milter connection: %s", error)


# --------------------------------------------------------------------------- server


class _Handler(socketserver.BaseRequestHandler):
    server: MilterServer

    def handle(self) -> None:
        self.request.settimeout(300)
        try:
            serve_socket(self.request, self.server.new_milter())
        except OSError as error:
            log.info("connection ended: %s", error)


class MilterServer(socketserver.ThreadingTCPServer):
    """A thread per MTA connection, each with a fresh milter from `new_milter`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], new_milter: Callable[[], Milter]) -> None:
        self.new_milter = new_milter
        super().__init__(address, _Handler)


def parse_endpoint(text: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` as the rendered configuration writes listen addresses."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)
