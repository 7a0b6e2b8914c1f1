# SPDX-License-Identifier: Apache-2.0
"""DnsNames: addresses learned from real answers name the question asked, for a clamped TTL, in bounded room."""

from __future__ import annotations

import struct

import pytest

from collector.detect.protocols.dns import Message, Question, Record, parse
from collector.enrich.dns_names import MAX_TTL_S, MIN_TTL_S, DnsNames, key
from tests.collector.detect.protocols.test_dns import CNAME_CHAIN, DIG_A, NXDOMAIN, header

S = 1_000_000_000
T0 = 5_000 * S  # a ktime_ns
CHAIN = ("www.example.com", "www.example.com.edgekey.net", "e6858.dscx.akamaiedge.net")


def answer(question: str, *records: Record, rcode: int = 0) -> Message:
    return Message(1, True, 0, rcode, (Question(question, 1, 1),), records)


def a(name: str, addr: str, ttl: int = 300) -> Record:
    return Record(name, 28 if ":" in addr else 1, ttl, addr)


def cname(name: str, target: str, ttl: int = 300) -> Record:
    return Record(name, 5, ttl, target)


def test_cname_chain_names_the_question() -> None:
    """The Akamai-style answer: its A and AAAA name www.example.com, the chain of CNAMEs kept beside."""
    names = DnsNames()
    assert names.learn(parse(CNAME_CHAIN), T0) == 2
    assert names.lookup("23.215.0.136", T0 + S) == "www.example.com"
    assert names.lookup("2600:1406:3a00:21::173e:2e65", T0 + S) == "www.example.com"
    entry = names.entry("23.215.0.136", T0 + S)
    assert entry is not None and entry.chain == CHAIN


@pytest.mark.parametrize(
    "addr",
    ["23.215.0.136", "::ffff:23.215.0.136", "::FFFF:17d7:88", "0:0:0:0:0:ffff:17d7:0088"],
)
def test_ipv4_mapped_addresses_match(addr: str) -> None:
    """A connect to an IPv4-mapped IPv6 address (a dual-stack socket) finds the IPv4 answer."""
    names = DnsNames()
    names.learn(parse(CNAME_CHAIN), T0)
    assert names.lookup(addr, T0) == "www.example.com"


def test_ipv6_spellings_match() -> None:
    """An IPv6 address matches however it is written (compressed, expanded, upper case)."""
    names = DnsNames()
    names.learn(parse(CNAME_CHAIN), T0)
    assert names.lookup("2600:1406:3A00:0021:0000:0000:173E:2E65", T0) == "www.example.com"


@pytest.mark.parametrize(
    ("ttl", "kept_s"),
    [(0, MIN_TTL_S), (20, MIN_TTL_S), (300, 300), (3600, 3600), (604800, MAX_TTL_S), (2**31 - 1, MAX_TTL_S)],
)
def test_ttl_is_clamped(ttl: int, kept_s: int) -> None:
    """An answer lasts its TTL, at least MIN_TTL_S (60 s) and at most MAX_TTL_S (a day)."""
    names = DnsNames()
    names.learn(answer("pool.example.net", a("pool.example.net", "198.51.100.7", ttl)), T0)
    assert names.lookup("198.51.100.7", T0 + kept_s * S - 1) == "pool.example.net"
    assert names.lookup("198.51.100.7", T0 + kept_s * S) is None
    assert len(names) == 0  # the expired entry went


def test_latest_answer_wins() -> None:
    """An address two names share names the one looked up last."""
    names = DnsNames()
    names.learn(answer("a.example.com", a("a.example.com", "192.0.2.1")), T0)
    names.learn(answer("b.example.org", a("b.example.org", "192.0.2.1")), T0 + S)
    assert names.lookup("192.0.2.1", T0 + 2 * S) == "b.example.org"


def test_records_off_the_chain_are_skipped() -> None:
    """An address for a name the question does not lead to (an injected record) is not learned, and counted."""
    names = DnsNames()
    message = answer(
        "www.example.com",
        cname("www.example.com", "edge.cdn.example.net"),
        a("edge.cdn.example.net", "192.0.2.10"),
        a("bank.example.org", "192.0.2.66"),
    )
    assert names.learn(message, T0) == 1
    assert names.lookup("192.0.2.66", T0) is None
    assert names.skipped["off_chain"] == 1
    entry = names.entry("192.0.2.10", T0)
    assert entry is not None and entry.chain == ("www.example.com", "edge.cdn.example.net")


def test_cname_loop_is_bounded() -> None:
    """A CNAME loop in an answer ends: its names are followed once."""
    names = DnsNames()
    message = answer("a.example.com", cname("a.example.com", "b.example.com"), cname("b.example.com", "a.example.com"),
                     a("b.example.com", "192.0.2.20"))  # fmt: skip
    assert names.learn(message, T0) == 1
    entry = names.entry("192.0.2.20", T0)
    assert entry is not None and entry.chain == ("a.example.com", "b.example.com")


@pytest.mark.parametrize(
    ("message", "why"),
    [
        (parse(DIG_A), "a query"),
        (parse(NXDOMAIN), "NXDOMAIN"),
        (answer("x.example.com", a("x.example.com", "192.0.2.30"), rcode=2), "SERVFAIL"),
        (Message(1, True, 0, 0, (), (a("x.example.com", "192.0.2.30"),)), "no question"),
    ],
)
def test_only_noerror_answers_teach(message: Message, why: str) -> None:
    """Queries, error responses and answers without a question teach nothing."""
    names = DnsNames()
    assert names.learn(message, T0) == 0
    assert len(names) == 0


def test_cut_answer_keeps_the_records_that_parsed() -> None:
    """An answer cut after its first A record teaches that record."""
    records = b"".join(
        b"\xc0\x0c\x00\x01\x00\x01" + struct.pack("!IH", 60, 4) + bytes([198, 51, 100, i]) for i in (1, 2)
    )
    data = header(9, 0x8180, an=2) + b"\x04pool\x07example\x03net\x00\x00\x01\x00\x01" + records
    message = parse(data[:-3])
    assert message.cut
    names = DnsNames()
    assert names.learn(message, T0) == 1
    assert names.lookup("198.51.100.1", T0) == "pool.example.net"


def test_entries_are_bounded_least_recently_used_first() -> None:
    """Past maxsize the least recently used address goes; a lookup counts as a use."""
    names = DnsNames(maxsize=2)
    for i in (1, 2):
        names.learn(answer(f"h{i}.example.com", a(f"h{i}.example.com", f"192.0.2.{i}")), T0)
    assert names.lookup("192.0.2.1", T0) == "h1.example.com"
    names.learn(answer("h3.example.com", a("h3.example.com", "192.0.2.3")), T0)
    assert len(names) == 2
    assert names.lookup("192.0.2.2", T0) is None
    assert names.lookup("192.0.2.1", T0) == "h1.example.com"


@pytest.mark.parametrize("addr", ["", "example.com", "999.1.1.1", "1.2.3", "fe80::1::2", "unknown:7"])
def test_lookup_of_what_is_not_an_address(addr: str) -> None:
    """A lookup of something that is not an address returns None, never raises."""
    assert key(addr) is None
    assert DnsNames().lookup(addr, T0) is None


def test_maxsize_must_hold_one() -> None:
    """A cache that can hold nothing is refused when made, not found out later."""
    with pytest.raises(ValueError, match="at least 1"):
        DnsNames(maxsize=0)
