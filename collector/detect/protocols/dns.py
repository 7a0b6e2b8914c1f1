# SPDX-License-Identifier: Apache-2.0
"""Read a DNS message (RFC 1035 section 4.1): the header, the questions and the answer records.

What the DNS sensor hands over (probes.events.DnsEvent) is at most the message's first 512 bytes, and for
TCP the start of a record, so a message may be cut anywhere. ``parse`` keeps what parsed completely: when
the bytes end before the records the header counts, it returns what came before, ``stopped="truncated"``
(``cut`` is true). It raises ``DnsError(reason)`` only when nothing useful is left: no header, or the first
question cannot be read. A malformation after the first question stops parsing the same way, with its
reason in ``stopped``: a query whose name parsed is not dropped for a bad record behind it (a tunnel could
otherwise hide behind one).

Counts that lie (qdcount 65535 in a 40-byte packet) cannot run long: every record takes at least 5 bytes, so
the loops end with the bytes. When the counts need more than the largest message there is (65535 bytes,
TCP's 2-byte length, RFC 1035 4.2.2), the reason is ``count_lies`` instead of ``truncated``; a smaller lie is
indistinguishable from a cut here, and the caller, who knows whether the sensor cut the message, decides.

Names (RFC 1035 3.1, 4.1.4), as resolvers read them:
- a label is 1 to 63 bytes; the length byte's top two bits are 00, or 11 for a compression pointer; 01
  (RFC 6891's extended label types, 0x41 the historic binary labels of RFC 2673) and 10 are refused:
  ``bad_label_type``. So a label longer than 63 bytes cannot be written at all;
- a name is at most 255 bytes in wire form, length bytes and root included (RFC 1035 2.3.4):
  ``name_too_long``;
- a pointer must point to where a name was written before: each one strictly before the place the name
  was last read from (dnspython's rule in dns/name.py from_wire: "if current >= biggest_pointer: raise
  BadPointer"), ``pointer_forward``; one that leads back into bytes this name already read is
  ``pointer_loop``; more than MAX_HOPS in one name is ``too_many_pointers``.
- text is lower-cased (ASCII only: RFC 4343) with no trailing dot, the root is ""; a byte that is not
  printable ASCII, a dot or a backslash inside a label is written ``\\DDD`` (RFC 1035 5.1 master-file
  escapes), so splitting a name on "." always gives its labels.

Bounded: each name reads at most 255 bytes of labels and MAX_HOPS pointers, each record holds at most two
names (its owner and a CNAME's target) and takes at least 5 bytes of the message, so a message costs at
most about 110 bytes read per byte of it, with no allocation beyond its names.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from dataclasses import dataclass
from typing import NamedTuple

HEADER = 12  # RFC 1035 4.1.1: id, flags, qdcount, ancount, nscount, arcount
MAX_NAME = 255  # RFC 1035 2.3.4: octets in a name's wire form
MAX_MESSAGE = 65535  # RFC 1035 4.2.2: a TCP message's 2-byte length field
# golang.org/x/net/dns/dnsmessage (message.go, unpackName): more than 10 pointers in a name is errTooManyPtr,
# and Go's resolver reads every name on the Internet with that limit.
MAX_HOPS = 10
MIN_QUESTION = 5  # root name (1) + qtype + qclass
MIN_RECORD = 11  # root name (1) + type, class, ttl, rdlength

# RR types (RFC 1035 3.2.2, RFC 3596 AAAA, RFC 2782 SRV, RFC 6891 OPT, RFC 9460 SVCB/HTTPS, RFC 2535 KEY).
A, NS, CNAME, SOA, NULL, PTR, MX, TXT, KEY, AAAA, SRV, OPT, SVCB, HTTPS, ANY = (
    1, 2, 5, 6, 10, 12, 15, 16, 25, 28, 33, 41, 64, 65, 255,
)  # fmt: skip
TYPE_NAMES = {A: "A", NS: "NS", CNAME: "CNAME", SOA: "SOA", NULL: "NULL", PTR: "PTR", MX: "MX", TXT: "TXT",
              KEY: "KEY", AAAA: "AAAA", SRV: "SRV", OPT: "OPT", SVCB: "SVCB", HTTPS: "HTTPS", ANY: "ANY"}  # fmt: skip
PRIVATE_TYPES = range(65280, 65535)  # RFC 6895 3.1: 65280-65534 reserved for private use (iodine's -T PRIVATE)

_HEADER = struct.Struct("!6H")
_QUESTION = struct.Struct("!HH")
_RECORD = struct.Struct("!HHIH")
_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = bytes.maketrans(_UPPER, _UPPER.lower())
_PLAIN = bytes(b for b in range(0x21, 0x7F) if b not in b".\\")  # kept as they are in a label's text
_PLAIN_SET = frozenset(_PLAIN)


def type_name(rtype: int) -> str:
    """ "A", "TXT", ... for a type number; "PRIVATE" for the private-use range, else "unknown:<n>"."""
    if name := TYPE_NAMES.get(rtype):
        return name
    return "PRIVATE" if rtype in PRIVATE_TYPES else f"unknown:{rtype}"


class DnsError(ValueError):
    """A message that cannot be read; ``reason`` is one snake_case word for a counter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Question(NamedTuple):
    name: str
    qtype: int
    qclass: int


class Record(NamedTuple):
    """An answer record: ``value`` is the address text for A/AAAA, the target name for CNAME, else None."""

    name: str
    type: int
    ttl: int  # seconds; a value with the top bit set reads as 0 (RFC 2181 8)
    value: str | None


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    is_response: bool  # QR
    opcode: int  # 0 QUERY, 4 NOTIFY, 5 UPDATE, ...
    rcode: int  # the header's 4 bits: 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...
    questions: tuple[Question, ...]
    answers: tuple[Record, ...]
    # Why parsing ended before every record the header counts: "truncated" (the bytes ended), "count_lies",
    # or the malformation met after the first question ("pointer_loop", "bad_rdata", ...); None when whole.
    stopped: str | None = None

    @property
    def cut(self) -> bool:
        """The bytes ended before the records the header counts: a cut message, or counts that lie."""
        return self.stopped in ("truncated", "count_lies")


def _label(raw: bytes) -> str:
    raw = raw.translate(_LOWER)
    if not raw.translate(None, _PLAIN):
        return raw.decode("ascii")
    return "".join(chr(b) if b in _PLAIN_SET else f"\\{b:03d}" for b in raw)


def read_name(data: bytes, pos: int) -> tuple[str, int]:
    """The name stored at ``pos`` and the offset just after it (after its first pointer, if it has one)."""
    labels: list[str] = []
    wire = 1  # the root's length byte
    end = -1
    limit = pos  # the next pointer must go to before this
    hops = 0
    visited: list[int] = []  # where this name's labels and pointers are (a few dozen at most)
    size = len(data)
    while True:
        if pos >= size:
            raise DnsError("truncated")
        length = data[pos]
        if length >= 0xC0:
            if pos + 1 >= size:
                raise DnsError("truncated")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            visited.append(pos)
            if end < 0:
                end = pos + 2
            hops += 1
            if target in visited:
                raise DnsError("pointer_loop")
            if target >= limit:
                raise DnsError("pointer_forward")
            if hops > MAX_HOPS:
                raise DnsError("too_many_pointers")
            limit = pos = target
            continue
        if length > 63:
            raise DnsError("bad_label_type")
        if length == 0:
            return ".".join(labels), pos + 1 if end < 0 else end
        wire += length + 1
        if wire > MAX_NAME:
            raise DnsError("name_too_long")
        if pos + 1 + length > size:
            raise DnsError("truncated")
        visited.append(pos)
        labels.append(_label(data[pos + 1 : pos + 1 + length]))
        pos += 1 + length


def _record(data: bytes, pos: int, keep: bool) -> tuple[Record | None, int]:
    name, pos = read_name(data, pos)
    if pos + _RECORD.size > len(data):
        raise DnsError("truncated")
    rtype, _rclass, ttl, rdlength = _RECORD.unpack_from(data, pos)
    pos += _RECORD.size
    end = pos + rdlength
    if end > len(data):
        raise DnsError("truncated")
    if not keep:
        return None, end
    value: str | None = None
    if rtype in (A, AAAA):
        if rdlength != (4 if rtype == A else 16):
            raise DnsError("bad_rdata")
        address = data[pos:end]
        value = str(ipaddress.IPv4Address(address) if rtype == A else ipaddress.IPv6Address(address))
    elif rtype == CNAME:
        value, after = read_name(data, pos)
        if after != end:
            raise DnsError("bad_rdata")
    return Record(name, rtype, ttl if ttl < 2**31 else 0, value), end


@functools.lru_cache(maxsize=64)
def parse(data: bytes) -> Message:
    """The message in ``data``, as much of it as parsed whole; DnsError when not even its question did.

    Kept for the last messages seen: the pipeline (names, metrics), tunnel.dns and tunnel.tool's rendezvous
    lookups each read the same record; a Message is immutable, so they share one parse."""
    if len(data) < HEADER:
        raise DnsError("short_header")
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    lies = HEADER + MIN_QUESTION * qdcount + MIN_RECORD * (ancount + nscount + arcount) > MAX_MESSAGE
    questions: list[Question] = []
    answers: list[Record] = []
    stopped = None
    pos = HEADER
    try:
        for _ in range(qdcount):
            name, pos = read_name(data, pos)
            if pos + _QUESTION.size > len(data):
                raise DnsError("truncated")
            questions.append(Question(name, *_QUESTION.unpack_from(data, pos)))
            pos += _QUESTION.size
        for count, keep in ((ancount, True), (nscount + arcount, False)):
            for _ in range(count):
                record, pos = _record(data, pos, keep)
                if record is not None:
                    answers.append(record)
    except DnsError as err:
        reason = "count_lies" if lies and err.reason == "truncated" else err.reason
        if qdcount and not questions:
            raise DnsError(reason) from None
        stopped = reason
    return Message(
        id=ident,
        is_response=bool(flags & 0x8000),
        opcode=(flags >> 11) & 0xF,
        rcode=flags & 0xF,
        questions=tuple(questions),
        answers=tuple(answers),
        stopped=stopped,
    )
