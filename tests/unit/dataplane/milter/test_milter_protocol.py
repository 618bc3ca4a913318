"""The milter codec on its own, without Postfix: framing, negotiation, macros, headers,
replies, and what happens with malformed or oversized packets."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postmeister.dataplane.milter import protocol
from postmeister.dataplane.milter.antispam import AntispamMilter, Scan
from postmeister.dataplane.milter.protocol import (
    CONTINUE,
    Decoder,
    MalformedPacket,
    Options,
    Packet,
    Reply,
)
from postmeister.dataplane.milter.sender import SenderMilter


def packet(command: str, payload: bytes = b"") -> bytes:
    return protocol.encode_packet(command.encode(), payload)


def decode_all(data: bytes, max_packet: int = protocol.MAX_PACKET) -> list[Packet]:
    decoder = Decoder(max_packet)
    decoder.feed(data)
    return list(decoder.packets())


def test_a_packet_is_length_then_command_then_payload() -> None:
    assert packet("M", b"<a@b>\0") == b"\x00\x00\x00\x07M<a@b>\x00"
    assert decode_all(packet("M", b"<a@b>\0")) == [Packet(ord("M"), b"<a@b>\0")]


def test_packets_split_anywhere_are_reassembled() -> None:
    stream = packet("H", b"mx.example\0") + packet("M", b"<a@b>\0") + packet("N")
    decoder = Decoder()
    found: list[Packet] = []
    for index in range(len(stream)):  # one byte at a time
        decoder.feed(stream[index : index + 1])
        found.extend(decoder.packets())
    assert [p.command for p in found] == [ord("H"), ord("M"), ord("N")]
    assert decoder.pending == 0


def test_an_incomplete_packet_waits_for_more() -> None:
    decoder = Decoder()
    decoder.feed(packet("L", b"From\0a@b\0")[:-3])
    assert list(decoder.packets()) == []
    assert decoder.pending > 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00\x00\x00", "empty packet"),
        (struct.pack(">I", 2**31) + b"O", "exceeds"),
        (b"\x00\x00\x00\x01Z", "unknown command"),
    ],
)
def test_malformed_or_oversized_packets_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        decode_all(data)


def test_the_size_limit_is_checked_before_the_body_arrives() -> None:
    decoder = Decoder(max_packet=100)
    decoder.feed(struct.pack(">I", 101))  # only the length: no need to buffer 101 bytes
    with pytest.raises(MalformedPacket):
        list(decoder.packets())
    assert decode_all(packet("B", b"x" * 99), max_packet=100)[0].payload == b"x" * 99


def test_option_negotiation_keeps_to_what_the_mta_offers() -> None:
    offered = protocol.decode_options(struct.pack(">III", 6, 0x1FF, 0x1FFFFF))
    assert offered == Options(version=6, actions=0x1FF, steps=0x1FFFFF)
    reply = protocol.negotiate(offered, actions=0x11, skip=0x300)
    assert reply == Reply(b"O", struct.pack(">III", 6, 0x11, 0x300))
    # An older MTA that offers fewer steps and actions gets no more than it offered.
    old = Options(version=2, actions=0x01, steps=0x100)
    assert protocol.negotiate(old, actions=0x11, skip=0x300).payload == struct.pack(
        ">III", 2, 0x01, 0x100
    )
    with pytest.raises(MalformedPacket):
        protocol.decode_options(b"\x00\x00\x00\x06")


def test_macros_name_their_command_and_lose_their_braces() -> None:
    payload = b"M{auth_authen}\0anna@example.org\0i\0ABC123\0"
    assert protocol.decode_macros(payload) == (
        ord("M"),
        {"auth_authen": "anna@example.org", "i": "ABC123"},
    )
    assert protocol.decode_macros(b"C") == (ord("C"), {})
    with pytest.raises(MalformedPacket):
        protocol.decode_macros(b"M{auth_authen}\0")
    with pytest.raises(MalformedPacket):
        protocol.decode_macros(b"")


def test_a_header_is_two_nul_terminated_strings() -> None:
    folded = "Anna\r\n\t<anna@stra\u00dfe.example>"
    payload = b"From\0" + folded.encode() + b"\0"
    assert protocol.decode_header(payload) == ("From", folded)
    assert protocol.decode_header(b"Subject\0\0") == ("Subject", "")
    for bad in (b"From\0no terminator", b"From\0", b"a\0b\0c\0"):
        with pytest.raises(MalformedPacket):
            protocol.decode_header(bad)


def test_invalid_utf8_in_a_header_survives_the_round_trip() -> None:
    name, value = protocol.decode_header(b"Subject\0caf\xe9\0")
    assert protocol.cstring(value) == b"caf\xe9\0"
    assert name == "Subject"


def test_connect_carries_family_port_and_address() -> None:
    payload = b"mx.example\x004" + struct.pack(">H", 2525) + b"192.0.2.7\0"
    assert protocol.decode_connect(payload) == protocol.Connect(
        "mx.example", "4", 2525, "192.0.2.7"
    )
    assert protocol.decode_connect(b"unknown\0U") == protocol.Connect("unknown", "U", 0, "")
    for bad in (b"mx.example", b"mx.example\0", b"mx.example\x004\x00"):
        with pytest.raises(MalformedPacket):
            protocol.decode_connect(bad)


def test_mail_and_rcpt_arguments_come_before_esmtp_parameters() -> None:
    assert protocol.decode_argument(b"<a@b.example>\0SIZE=100\0") == "<a@b.example>"
    with pytest.raises(MalformedPacket):
        protocol.decode_argument(b"")


def test_replies_are_single_line_smtp_codes() -> None:
    reply = protocol.reply_code("550 5.7.1 Not for you")
    assert reply.encode() == b"\x00\x00\x00\x17y550 5.7.1 Not for you\x00"
    for bad in ("250 2.0.0 fine", "550 no status", "550 5.7.1 two\r\nlines", "550 5.7.1 100%"):
        with pytest.raises(ValueError, match="SMTP reply"):
            protocol.reply_code(bad)


def test_header_edits_encode_index_name_and_value() -> None:
    assert protocol.add_header("X-Spam", "Yes") == Reply(b"h", b"X-Spam\0Yes\0")
    assert protocol.change_header("Subject", 1, "[SPAM] hi") == Reply(
        b"m", b"\x00\x00\x00\x01Subject\0[SPAM] hi\0"
    )
    with pytest.raises(ValueError, match="NUL"):
        protocol.add_header("X-Evil", "a\0b")


def test_printable_keeps_a_reply_on_one_safe_line() -> None:
    assert protocol.printable("ceo@stra\u00dfe.example\r\n%s") == "ceo@stra?e.example???s"
    assert len(protocol.printable("x" * 500)) == 200


@dataclass
class Recorder:
    """A milter that records what the codec hands it."""

    actions: int = protocol.ACTION_ADDHDRS
    skip: int = protocol.SKIP_BODY
    seen: list[tuple[str, object]] = field(default_factory=list)

    def macros(self, command: int, macros: dict[str, str]) -> None:
        self.seen.append(("macros", (chr(command), macros)))

    def handle(self, packet: Packet) -> Sequence[Reply]:
        self.seen.append(("handle", chr(packet.command)))
        if packet.command == protocol.CMD_EOH:
            return [protocol.add_header("X-Seen", "1"), CONTINUE]
        return []

    def abort(self) -> None:
        self.seen.append(("abort", None))

    def reset(self) -> None:
        self.seen.append(("reset", None))


def test_conversation_answers_exactly_the_commands_that_expect_an_answer() -> None:
    stream = b"".join(
        [
            packet("O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF)),
            packet("D", b"M{auth_authen}\0anna\0"),
            packet("M", b"<anna@a.example>\0"),
            packet("L", b"From\0anna@a.example\0"),
            packet("N"),
            packet("A"),
            packet("K"),
            packet("Q"),
            packet("M", b"<after@quit>\0"),  # never read: QUIT ends the conversation
        ]
    )
    decoder = Decoder()
    decoder.feed(stream)
    sent: list[bytes] = []
    milter = Recorder()
    protocol.converse(decoder.packets(), milter, sent.append)

    assert sent == [
        protocol.encode_packet(b"O", struct.pack(">III", 6, 0x01, 0x10)),
        CONTINUE.encode(),  # MAIL
        CONTINUE.encode(),  # header
        protocol.add_header("X-Seen", "1").encode() + CONTINUE.encode(),  # EOH
    ]
    assert milter.seen == [
        ("macros", ("M", {"auth_authen": "anna"})),
        ("handle", "M"),
        ("handle", "L"),
        ("handle", "N"),
        ("abort", None),
        ("reset", None),
    ]


def test_a_socket_connection_ends_quietly_on_a_malformed_packet() -> None:
    server, client = socket.socketpair()
    milter = Recorder()
    worker = threading.Thread(target=protocol.serve_socket, args=(server, milter))
    worker.start()
    try:
        client.sendall(packet("M", b"<a@b>\0") + struct.pack(">I", protocol.MAX_PACKET + 1))
        assert client.recv(100) == CONTINUE.encode()
        worker.join(5)
        assert not worker.is_alive()
        assert milter.seen == [("handle", "M")]
    finally:
        client.close()
        server.close()


def test_a_connection_closed_inside_a_packet_is_malformed() -> None:
    server, client = socket.socketpair()
    try:
        client.sendall(packet("L", b"From\0a@b\0")[:-2])
        client.shutdown(socket.SHUT_WR)
        with pytest.raises(MalformedPacket, match="inside a packet"):
            list(protocol.read_packets(server))
    finally:
        client.close()
        server.close()


def test_endpoints_parse_with_and_without_brackets() -> None:
    assert protocol.parse_endpoint("127.0.0.1:10025") == ("127.0.0.1", 10025)
    assert protocol.parse_endpoint("[::1]:10025") == ("::1", 10025)


class AllowAll:
    def may_send_as(self, login: str, address: str) -> bool:
        return True

    def policy_of(self, address: str) -> str | None:
        return "subject-rewrite"


class SpamScanner:
    def scan(self, message: bytes, envelope: object) -> Scan:
        return Scan(action="reject", score=99.0)


@settings(max_examples=1500, deadline=None)
@given(
    stream=st.lists(
        st.tuples(st.sampled_from(sorted(protocol.COMMANDS)), st.binary(max_size=40)),
        max_size=12,
    ),
    garbage=st.binary(max_size=16),
)
def test_any_byte_stream_either_converses_or_ends_as_malformed(
    stream: list[tuple[int, bytes]], garbage: bytes
) -> None:
    """Neither milter ever fails with anything but MalformedPacket (the connection ends,
    Postfix tempfails), whatever the MTA sends."""
    data = b"".join(protocol.encode_packet(bytes([c]), p) for c, p in stream) + garbage
    for milter in (SenderMilter(AllowAll()), AntispamMilter(AllowAll(), SpamScanner())):
        decoder = Decoder()
        decoder.feed(data)
        sent: list[bytes] = []
        with contextlib.suppress(MalformedPacket):
            protocol.converse(decoder.packets(), milter, sent.append)
        assert all(code in REPLY_CODES for code in reply_codes(b"".join(sent)))


REPLY_CODES = {ord(c) for c in "Oyhmac"}


def reply_codes(data: bytes) -> list[int]:
    """The reply code of each frame in `data`, which must be whole frames."""
    codes = []
    while data:
        (length,) = struct.unpack(">I", data[:4])
        assert 1 <= length <= len(data) - 4
        codes.append(data[4])
        data = data[4 + length :]
    return codes
