# SPDX-License-Identifier: Apache-2.0
"""The DNS message parser on real queries and answers, byte-exact, on every cut of them, and on bad input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.detect.protocols.dns import (
    AAAA,
    CNAME,
    MAX_HOPS,
    DnsError,
    Message,
    Question,
    Record,
    parse,
    read_name,
    type_name,
)
from probes.layout import DNS_MAX


def header(ident: int, flags: int, *, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!6H", ident, flags, qd, an, ns, ar)


# dig 9.18 `dig example.com`: RD and AD set (0x0120), one question, an EDNS OPT record (RFC 6891 6.1.2:
# root owner, type 41, class = UDP size 1232, TTL = extended rcode/version/flags 0) with a COOKIE option
# (RFC 7873: code 10, 8-byte client cookie).
DIG_A = (
    header(0x8F3A, 0x0120, ar=1)
    + b"\x07example\x03com\x00" + b"\x00\x01\x00\x01"
    + b"\x00" + b"\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x0c"
    + b"\x00\x0a\x00\x08" + bytes.fromhex("5a1b8e0c3f9d2e47")
)  # fmt: skip
# glibc 2.36 getaddrinfo(AF_INET6): res_mkquery with RD (0x0100), no EDNS unless `options edns0`.
GLIBC_AAAA = header(0x3C71, 0x0100) + b"\x03www\x06debian\x03org\x00" + b"\x00\x1c\x00\x01"
# An Akamai-style answer for www.example.com: two CNAMEs then A and AAAA, every owner a compression pointer
# (RFC 1035 4.1.4): www.example.com at 12, its CNAME target at 45 (.net at 69), the second target at 86.
CNAME_CHAIN = (
    header(0x1A2B, 0x8180, an=4)
    + b"\x03www\x07example\x03com\x00" + b"\x00\x01\x00\x01"  # 12: the question
    + b"\xc0\x0c" + b"\x00\x05\x00\x01" + struct.pack("!IH", 300, 29)  # 33: www.example.com CNAME
    + b"\x03www\x07example\x03com\x07edgekey\x03net\x00"  # 45: www.example.com.edgekey.net
    + b"\xc0\x2d" + b"\x00\x05\x00\x01" + struct.pack("!IH", 21600, 24)  # 74: that CNAME
    + b"\x05e6858\x04dscx\x0aakamaiedge\xc0\x45"  # 86: e6858.dscx.akamaiedge + the "net" at 69
    + b"\xc0\x56" + b"\x00\x01\x00\x01" + struct.pack("!IH", 20, 4) + bytes([23, 215, 0, 136])  # 110: A
    + b"\xc0\x56" + b"\x00\x1c\x00\x01" + struct.pack("!IH", 20, 16)  # 126: AAAA
    + bytes.fromhex("260014063a0000210000000017 3e2e65".replace(" ", ""))
)  # fmt: skip
# iodine 0.7 data query (src/client.c, encoding.c): user id "0", a 3-character header, base32 data dotted
# every 57 characters under the topdomain; NULL type; an EDNS0 OPT with a 4096-byte payload (src/dns.c).
IODINE_LABEL = "0aabya2tbmfrgu3donrvgq2dgmjygiztgnbxhe4dmnrwgmztsmbqgbydg"  # 57
IODINE_NULL = (
    header(0x0A7E, 0x0100, ar=1)
    + bytes([len(IODINE_LABEL)]) + IODINE_LABEL.encode() + b"\x0ckgmrtgiydaoj\x01t\x07example\x03com\x00"
    + b"\x00\x0a\x00\x01"
    + b"\x00" + b"\x00\x29\x10\x00\x00\x00\x80\x00\x00\x00"  # root, OPT, 4096, DO, no options
)  # fmt: skip
# dnscat2 (client/tunnel_drivers/driver_dns.c): the packet in hex, labels of at most 62, under the domain;
# TXT, CNAME or MX, RD set, no EDNS.
DNSCAT_HEX = "b7e4012c4d9a00000000" + "6cfa21c3d0a9e1b07f4e2a8c3b5d6e7f9012ab34"
DNSCAT_TXT = (
    header(0xB7E4, 0x0100)
    + bytes([len(DNSCAT_HEX)]) + DNSCAT_HEX.encode() + b"\x0cskullseclabs\x03org\x00"
    + b"\x00\x10\x00\x01"
)  # fmt: skip
DNSCAT_MX = (
    header(0x11F0, 0x0100)
    + b"\x06dnscat" + bytes([len(DNSCAT_HEX)]) + DNSCAT_HEX.encode() + b"\x00"
    + b"\x00\x0f\x00\x01"
)  # fmt: skip
# NXDOMAIN for a search-path expansion, with the SOA in the authority section (RFC 2308 negative answer).
NXDOMAIN = (
    header(0x4D2E, 0x8183, an=0, ns=1)
    + b"\x03api\x06github\x03com\x07default\x03svc\x07cluster\x05local\x00" + b"\x00\x01\x00\x01"
    + b"\xc0\x27" + b"\x00\x06\x00\x01" + struct.pack("!IH", 5, 42)  # 58: cluster.local SOA (CoreDNS)
    + b"\x02ns\x03dns\xc0\x27" + b"\x0ahostmaster\xc0\x27" + struct.pack("!5I", 1700000000, 7200, 1800, 86400, 5)
)  # fmt: skip

REAL = [
    # (bytes, questions, answers, what it is)
    (DIG_A, [Question("example.com", 1, 1)], [], "dig A query with EDNS and a cookie"),
    (GLIBC_AAAA, [Question("www.debian.org", 28, 1)], [], "glibc AAAA query"),
    (
        CNAME_CHAIN,
        [Question("www.example.com", 1, 1)],
        [
            Record("www.example.com", CNAME, 300, "www.example.com.edgekey.net"),
            Record("www.example.com.edgekey.net", CNAME, 21600, "e6858.dscx.akamaiedge.net"),
            Record("e6858.dscx.akamaiedge.net", 1, 20, "23.215.0.136"),
            Record("e6858.dscx.akamaiedge.net", AAAA, 20, "2600:1406:3a00:21::173e:2e65"),
        ],
        "a CNAME chain with compression pointers",
    ),
    (IODINE_NULL, [Question(f"{IODINE_LABEL}.kgmrtgiydaoj.t.example.com", 10, 1)], [], "iodine NULL query"),
    (DNSCAT_TXT, [Question(f"{DNSCAT_HEX}.skullseclabs.org", 16, 1)], [], "dnscat2 TXT query"),
    (DNSCAT_MX, [Question(f"dnscat.{DNSCAT_HEX}", 15, 1)], [], "dnscat2 direct-mode MX query"),
    (NXDOMAIN, [Question("api.github.com.default.svc.cluster.local", 1, 1)], [], "NXDOMAIN with an SOA"),
]


@pytest.mark.parametrize(("data", "questions", "answers", "what"), REAL, ids=[r[3] for r in REAL])
def test_real_messages(data: bytes, questions: list[Question], answers: list[Record], what: str) -> None:
    """Each real message parses whole: its questions and its A/AAAA/CNAME answers, names lower-case."""
    message = parse(data)
    assert list(message.questions) == questions
    assert list(message.answers) == answers
    assert message.stopped is None and not message.cut


def test_header_fields() -> None:
    """id, QR, opcode and rcode come from the header (RFC 1035 4.1.1)."""
    answer = parse(CNAME_CHAIN)
    assert (answer.id, answer.is_response, answer.opcode, answer.rcode) == (0x1A2B, True, 0, 0)
    nx = parse(NXDOMAIN)
    assert (nx.is_response, nx.rcode) == (True, 3)
    query = parse(DIG_A)
    assert (query.id, query.is_response, query.opcode) == (0x8F3A, False, 0)
    notify = parse(header(7, 0x2400) + b"\x07example\x03com\x00\x00\x06\x00\x01")  # RFC 1996 NOTIFY, AA
    assert notify.opcode == 4


@pytest.mark.parametrize(("data", "questions", "answers", "what"), REAL, ids=[r[3] for r in REAL])
def test_every_cut_keeps_what_parsed(data: bytes, questions: list[Question], answers: list[Record], what: str) -> None:
    """Cut anywhere after its question, a message gives its question and the answers before the cut, and says
    it was cut; cut inside the question it is "truncated", inside the header "short_header"."""
    question_end = 12 + len(questions[0].name) + 2 + 4  # uncompressed, no escapes: one byte a label more
    for n in range(len(data)):
        cut = data[:n]
        if n < 12:
            with pytest.raises(DnsError, match="short_header"):
                parse(cut)
        elif n < question_end:
            with pytest.raises(DnsError, match="truncated"):
                parse(cut)
        else:
            message = parse(cut)
            assert list(message.questions) == questions
            assert list(message.answers) == answers[: len(message.answers)]
            assert message.cut and message.stopped == "truncated"


def test_cut_at_dns_max() -> None:
    """An answer of 40 A records cut at DNS_MAX keeps the records before the cut and says it was cut."""
    body = b"\x04pool\x07example\x03net\x00\x00\x01\x00\x01"
    records = b"".join(b"\xc0\x0c\x00\x01\x00\x01" + struct.pack("!IH", 60, 4) + bytes([198, 51, 100, i])
                       for i in range(40))  # fmt: skip
    data = header(9, 0x8180, an=40) + body + records
    assert len(data) > DNS_MAX
    message = parse(data[:DNS_MAX])
    assert message.cut and message.stopped == "truncated"
    whole = (DNS_MAX - 12 - len(body)) // 16
    assert [r.value for r in message.answers] == [f"198.51.100.{i}" for i in range(whole)]


def test_rfc1035_compression_example() -> None:
    """RFC 1035 4.1.4's example: F.ISI.ARPA, FOO.F.ISI.ARPA (a label then a pointer) and ARPA (a pointer
    into the middle of a name)."""
    data = bytes(20) + b"\x01F\x03ISI\x04ARPA\x00" + bytes(8) + b"\x03FOO\xc0\x14" + b"\xc0\x1a"
    assert read_name(data, 20) == ("f.isi.arpa", 32)
    assert read_name(data, 40) == ("foo.f.isi.arpa", 46)
    assert read_name(data, 46) == ("arpa", 48)


BAD = [
    # (bytes, reason, what)
    (b"", "short_header", "nothing"),
    (header(1, 0x0100)[:11], "short_header", "11 bytes"),
    (header(1, 0x0100), "truncated", "a header that counts a question and has none"),
    (header(1, 0x0100) + b"\x07exam", "truncated", "cut inside a label"),
    (header(1, 0x0100) + b"\x07example\x03com\x00\x00", "truncated", "cut inside qtype"),
    (header(1, 0x0100) + b"\xc0\x0c\x00\x01\x00\x01", "pointer_loop", "a name that points at itself"),
    (header(1, 0x0100) + b"\x01a\xc0\x0c\x00\x01\x00\x01", "pointer_loop", "a label, then back to it"),
    (header(1, 0x0100) + b"\xc0\x20" + bytes(30), "pointer_forward", "a pointer ahead of the name"),
    (header(1, 0x0100) + b"\xc0\xff\x00\x01\x00\x01", "pointer_forward", "a pointer past the end"),
    (header(1, 0x0100) + b"\xc0", "truncated", "half a pointer"),
    (header(1, 0x0100) + b"\x41\x08\xff\x00\x00\x01\x00\x01", "bad_label_type", "RFC 2673 binary label"),
    (header(1, 0x0100) + b"\x80abc\x00\x00\x01\x00\x01", "bad_label_type", "reserved label type 10"),
    (header(1, 0x0100) + (b"\x3f" + b"a" * 63) * 4 + b"\x00\x00\x01\x00\x01", "name_too_long", "256-byte name"),
    (
        header(65535, 0xFFFF, qd=65535, an=65535, ns=65535, ar=65535) + b"\x07exam",
        "count_lies",
        "all counts 65535, cut name",
    ),
]


@pytest.mark.parametrize(("data", "reason", "what"), BAD, ids=[b[2] for b in BAD])
def test_bad_messages_raise_with_a_reason(data: bytes, reason: str, what: str) -> None:
    """A message whose first question cannot be read raises DnsError with the reason a counter takes."""
    with pytest.raises(DnsError) as raised:
        parse(data)
    assert raised.value.reason == reason


def test_longest_name_parses() -> None:
    """A 255-byte name (three 63-byte labels and a 61-byte one) is the longest there is, and parses."""
    name = (b"\x3f" + b"a" * 63) * 3 + b"\x3d" + b"b" * 61 + b"\x00"
    assert len(name) == 255
    message = parse(header(1, 0x0100) + name + b"\x00\x01\x00\x01")
    assert len(message.questions[0].name) == 253


def test_lying_counts_stop_at_the_end() -> None:
    """qdcount 65535 in a 40-byte packet: the questions there are kept, and the reason is count_lies."""
    data = (
        header(0x5555, 0x0100, qd=65535)
        + b"\x07example\x03com\x00\x00\x01\x00\x01"
        + b"\x03abc\x00\x00\x01\x00\x01\x01z"
    )
    assert len(data) == 40
    message = parse(data)
    assert message.questions == (Question("example.com", 1, 1), Question("abc", 1, 1))
    assert message.stopped == "count_lies" and message.cut


def test_malformed_record_after_the_question_stops_there() -> None:
    """A bad record behind the question stops the parse with its reason; the question is kept."""
    data = header(2, 0x8180, an=2) + b"\x01a\x00\x00\x01\x00\x01"
    good = b"\xc0\x0c\x00\x01\x00\x01" + struct.pack("!IH", 30, 4) + bytes([192, 0, 2, 1])
    bad_a = b"\xc0\x0c\x00\x01\x00\x01" + struct.pack("!IH", 30, 3) + bytes(3)
    message = parse(data + good + bad_a)
    assert message.answers == (Record("a", 1, 30, "192.0.2.1"),)
    assert message.stopped == "bad_rdata" and not message.cut
    loop = parse(data + b"\xc0\x13\x00\x01")  # an answer owner at 19 pointing to itself
    assert loop.stopped == "pointer_loop" and loop.questions == (Question("a", 1, 1),)


def test_too_many_pointers() -> None:
    """A name reached through more than MAX_HOPS pointers, each strictly backwards, is refused."""
    data = b"\x01x\x00" + b"".join(
        struct.pack("!H", 0xC000 | (0 if i == 0 else 1 + 2 * i)) for i in range(MAX_HOPS + 1)
    )
    last = len(data) - 2
    with pytest.raises(DnsError, match="too_many_pointers"):
        read_name(data, last)
    assert read_name(data, last - 2)[0] == "x"


def test_labels_text() -> None:
    """Labels are lower-cased (ASCII only, RFC 4343); a dot, a backslash or a byte that is not printable
    ASCII inside a label is written \\DDD, so splitting on dots gives the labels."""
    data = header(1, 0x0100) + b"\x03A.B\x04C D\\\x02\xe9Z\x03COM\x00\x00\x01\x00\x01"
    assert parse(data).questions[0].name == "a\\046b.c\\032d\\092.\\233z.com"


def test_ttl_with_the_top_bit_set_is_zero() -> None:
    """A TTL of 2**31 or more reads as 0 (RFC 2181 8)."""
    data = header(3, 0x8180, an=1) + b"\x01a\x00\x00\x01\x00\x01" + b"\xc0\x0c\x00\x01\x00\x01"
    data += struct.pack("!IH", 0x80000000, 4) + bytes([192, 0, 2, 9])
    assert parse(data).answers[0].ttl == 0


def test_root_and_empty_sections() -> None:
    """The root name reads as ""; a message with no question (an RFC 7873 cookie-only query) parses."""
    assert parse(header(4, 0x0100) + b"\x00\x00\x02\x00\x01").questions == (Question("", 2, 1),)
    assert parse(header(5, 0x0100, qd=0)) == Message(5, False, 0, 0, (), ())


@pytest.mark.parametrize(("rtype", "name"), [(1, "A"), (10, "NULL"), (16, "TXT"), (65399, "PRIVATE"),
                                             (99, "unknown:99")])  # fmt: skip
def test_type_names(rtype: int, name: str) -> None:
    """Type numbers have names; private-use ones are PRIVATE, others unknown:<n>."""
    assert type_name(rtype) == name


def _parses_or_refuses(data: bytes) -> None:
    try:
        message = parse(data)
    except DnsError as err:
        assert err.reason.isidentifier()
        return
    assert len(message.questions) + len(message.answers) <= len(data) // 5
    assert all(len(q.name) <= 253 * 4 for q in message.questions)


@given(st.binary(max_size=DNS_MAX))
@settings(max_examples=500)
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    """Any bytes: a Message or DnsError, never another exception."""
    _parses_or_refuses(data)


@given(
    st.sampled_from([r[0] for r in REAL]),
    st.lists(st.tuples(st.integers(0, DNS_MAX), st.integers(0, 255)), min_size=1, max_size=8),
)
@settings(max_examples=1000)
def test_mutated_real_messages_never_raise_anything_else(data: bytes, edits: list[tuple[int, int]]) -> None:
    """Real messages with bytes changed (counts, lengths, pointers): a Message or DnsError, nothing else."""
    mutated = bytearray(data)
    for at, value in edits:
        mutated[at % len(mutated)] = value
    _parses_or_refuses(bytes(mutated))


def test_worst_case_work_is_bounded() -> None:
    """A 512-byte message of questions that each point to a 255-byte name parses in bounded steps."""
    longest = (b"\x3f" + b"a" * 63) * 3 + b"\x3d" + b"b" * 61 + b"\x00"
    first = longest + b"\x00\x01\x00\x01"
    repeat = b"\xc0\x0c\x00\x01\x00\x01"
    count = (DNS_MAX - 12 - len(first)) // len(repeat)
    data = header(6, 0x0100, qd=1 + count) + first + repeat * count
    assert len(parse(data).questions) == 1 + count
