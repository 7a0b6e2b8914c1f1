# SPDX-License-Identifier: Apache-2.0
"""decode() on records built byte for byte as the kernel writes them, and on malformed ones."""

from __future__ import annotations

import ctypes as ct
import ipaddress
import socket
from typing import NamedTuple

import pytest
from hypothesis import event as tally  # outcome counts, shown by --hypothesis-show-statistics
from hypothesis import given
from hypothesis import strategies as st

from collector.errors import DecodeError
from probes.decode import decode
from probes.events import (
    ConnectEvent,
    DnsEvent,
    Event,
    ExecEvent,
    ExitEvent,
    GpuOpenEvent,
    PayloadEvent,
    SocketEvent,
    StdioEvent,
    TunEvent,
)
from probes.layout import (
    ARGS_BUF,
    COMM_LEN,
    FILENAME_LEN,
    PAYLOAD_MAX,
    RECORDS,
    ConnectRecord,
    DnsRecord,
    EventHeader,
    EventKind,
    ExecFlags,
    ExecRecord,
    ExitRecord,
    PayloadRecord,
    PayloadSyscall,
)

# Every reason decode() may give: the read loop counts by reason, so the set is closed.
OVERRUNS = {"exec_args_overrun", "payload_overrun", "dns_overrun"}  # a length field past its record
REASONS = {"short_record", "unknown_kind", "bad_size", "exec_args_overrun", "payload_overrun", "dns_overrun"}
EVENT_OF_KIND: dict[int, type[Event]] = {
    EventKind.EXEC: ExecEvent,
    EventKind.EXIT: ExitEvent,
    EventKind.CONNECT: ConnectEvent,
    EventKind.PAYLOAD: PayloadEvent,
    EventKind.STDIO: StdioEvent,
    EventKind.SOCKET: SocketEvent,
    EventKind.TUN: TunEvent,
    EventKind.DNS: DnsEvent,
    EventKind.GPU_OPEN: GpuOpenEvent,
}
HEADER_SIZE = ct.sizeof(EventHeader)


class Ident(NamedTuple):
    """The header's identity fields, as the kernel fills them."""

    ktime_ns: int = 123456789
    pid: int = 4243
    tgid: int = 4242
    ppid: int = 1
    uid: int = 1000
    cgroup_id: int = 77
    comm: bytes = b"xmrig"


DEFAULT_IDENT = Ident()


def _header(rec: ct.Structure, kind: EventKind, size: int, flags: int = 0, ident: Ident = DEFAULT_IDENT) -> None:
    h = rec.hdr  # type: ignore[attr-defined]
    h.kind, h.flags, h.size = kind, flags, size
    h.ktime_ns, h.pid, h.tgid, h.ppid, h.uid, h.cgroup_id, h.comm = ident


def exec_record(
    args: list[bytes], filename: bytes = b"/usr/bin/xmrig", flags: int = 0, cut: int = 0, ident: Ident = DEFAULT_IDENT
) -> bytes:
    rec = ExecRecord()
    blob = b"".join(a + b"\0" for a in args)
    blob = blob[: len(blob) - cut]
    rec.args_len, rec.args_total = len(blob), len(blob) + cut
    rec.filename = filename
    ct.memmove(ct.addressof(rec) + ExecRecord.args.offset, blob, len(blob))
    size = ExecRecord.args.offset + len(blob)
    _header(rec, EventKind.EXEC, size, flags, ident)
    return bytes(rec)[:size]


def connect_record(
    family: int, addr: bytes, port: int, ret: int, *, fd: int = 5, flags: int = 0, ident: Ident = DEFAULT_IDENT
) -> bytes:
    rec = ConnectRecord()
    _header(rec, EventKind.CONNECT, ct.sizeof(rec), flags, ident)
    rec.fd, rec.ret, rec.family, rec.dport = fd, ret, family, port
    ct.memmove(rec.daddr, addr, len(addr))
    return bytes(rec)


def payload_record(
    data: bytes,
    len_raw: int | None = None,
    *,
    family: int = socket.AF_INET,
    addr: bytes = bytes([203, 0, 113, 7]),
    port: int = 3333,
    fd: int = 5,
    syscall: int = PayloadSyscall.WRITEV,
    flags: int = 0,
    ident: Ident = DEFAULT_IDENT,
) -> bytes:
    rec = PayloadRecord()
    size = PayloadRecord.data.offset + len(data)
    _header(rec, EventKind.PAYLOAD, size, flags, ident)
    rec.fd, rec.family, rec.dport, rec.data_len = fd, family, port, len(data)
    rec.len_raw = len(data) if len_raw is None else len_raw
    rec.syscall = syscall
    ct.memmove(rec.daddr, addr, len(addr))
    ct.memmove(rec.data, data, len(data))
    return bytes(rec)[:size]


def exit_record(flags: int = 0, ident: Ident = DEFAULT_IDENT) -> bytes:
    rec = ExitRecord()
    _header(rec, EventKind.EXIT, ct.sizeof(rec), flags, ident)
    return bytes(rec)


def test_exec() -> None:
    """argv comes back as the process passed it, with the header's identity fields."""
    event = decode(exec_record([b"xmrig", b"-o", b"pool:3333", b"--donate-level=1"]))
    assert isinstance(event, ExecEvent)
    assert event.args == ("xmrig", "-o", "pool:3333", "--donate-level=1")
    assert (event.filename, event.comm, event.pid, event.tgid, event.ppid, event.uid, event.cgroup_id) == (
        "/usr/bin/xmrig",
        "xmrig",
        4243,
        4242,
        1,
        1000,
        77,
    )
    assert not event.args_truncated


def test_exec_hostile_argv_bytes() -> None:
    """Non-UTF-8 and control bytes in argv survive as visible escapes, never raise."""
    event = decode(exec_record([b"sh", b"-c", b"\xff\xfe\x1b[31mred\n"]))
    assert isinstance(event, ExecEvent)
    assert event.args[2] == "\\xff\\xfe\x1b[31mred\n"
    assert not event.args_truncated


def test_connect_ipv4_and_mapped_ipv6() -> None:
    """IPv4 and IPv4-mapped IPv6 destinations both read as dotted quads; errors keep their errno."""
    v4 = decode(connect_record(socket.AF_INET, bytes([127, 0, 0, 1]), 3333, -111))
    assert isinstance(v4, ConnectEvent)
    assert (v4.family, v4.daddr, v4.dport, v4.error, v4.started) == ("ipv4", "127.0.0.1", 3333, "ECONNREFUSED", False)
    mapped = decode(
        connect_record(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, "::ffff:198.51.100.4"), 443, -115)
    )
    assert isinstance(mapped, ConnectEvent)
    assert (mapped.family, mapped.daddr, mapped.started) == ("ipv6", "198.51.100.4", True)
    v6 = decode(connect_record(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, "2001:db8::7"), 3333, 0))
    assert isinstance(v6, ConnectEvent) and v6.daddr == "2001:db8::7"


def test_payload() -> None:
    """The captured head, its syscall, and whether more was sent than captured."""
    event = decode(payload_record(b'{"id":1}\n', len_raw=4096))
    assert isinstance(event, PayloadEvent)
    assert (event.data, event.syscall, event.daddr, event.truncated) == (b'{"id":1}\n', "writev", "203.0.113.7", True)


def test_exit() -> None:
    """An exit record is just a header."""
    rec = ExitRecord()
    _header(rec, EventKind.EXIT, ct.sizeof(rec))
    assert isinstance(decode(bytes(rec)), ExitEvent)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "short_record"),
        (b"\x01" * 10, "short_record"),
        (bytes([99]) + bytes(80), "unknown_kind"),
        (exec_record([b"a"])[:-1], "bad_size"),  # size field disagrees with the record length
        (payload_record(b"abc")[:-2], "bad_size"),
    ],
)
def test_malformed(raw: bytes, reason: str) -> None:
    """Malformed records raise DecodeError with a countable reason."""
    with pytest.raises(DecodeError) as info:
        decode(raw)
    assert info.value.reason == reason


def test_cut_argv_keeps_the_partial_last_string() -> None:
    """When the kernel cut argv, the last string is kept as far as it goes and the event says so."""
    event = decode(exec_record([b"xmrig", b"--url=stratum+tcp://pool:3333"], flags=ExecFlags.ARGS_TRUNCATED, cut=10))
    assert isinstance(event, ExecEvent)
    assert event.args == ("xmrig", "--url=stratum+tcp://") and event.args_truncated


def test_args_len_past_the_record() -> None:
    """An args_len that points past the record is an error, not an over-read."""
    raw = bytearray(exec_record([b"a", b"b"]))
    raw[ExecRecord.args_len.offset] = 200
    with pytest.raises(DecodeError) as info:
        decode(bytes(raw))
    assert info.value.reason == "exec_args_overrun"


# Strategies for records as the kernel writes them.
U8, U16 = st.integers(0, 2**8 - 1), st.integers(0, 2**16 - 1)
S32, U32, U64 = st.integers(-(2**31), 2**31 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)


def kernel_strings(max_bytes: int) -> st.SearchStrategy[bytes]:
    """C strings of at most ``max_bytes`` bytes: UTF-8 text or any bytes, never a NUL."""
    raw = st.one_of(st.text(max_size=max_bytes // 4).map(str.encode), st.binary(max_size=max_bytes))
    return raw.map(lambda b: b.replace(b"\0", b""))


IDENTS = st.builds(Ident, U64, U32, U32, U32, U32, U64, kernel_strings(COMM_LEN - 1))
ARGVS = st.lists(kernel_strings(200), max_size=20)  # at most 20 * 201 bytes: within ARGS_BUF - 1
ADDRESSES = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))
OTHER_FAMILIES = U16.filter(lambda f: f not in (socket.AF_INET, socket.AF_INET6))


def _family(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return socket.AF_INET if addr.version == 4 else socket.AF_INET6


def _shown(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """How decode shows a destination: an IPv4-mapped IPv6 address as the IPv4 address."""
    mapped = addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) else None
    return str(mapped or addr)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def _assert_ident(event: Event, ident: Ident) -> None:
    assert (event.ktime_ns, event.pid, event.tgid, event.ppid, event.uid, event.cgroup_id, event.comm) == (
        *ident[:6],
        _text(ident.comm),
    )


@given(IDENTS, U8, kernel_strings(FILENAME_LEN - 1), ARGVS)
def test_exec_round_trips(ident: Ident, flags: int, filename: bytes, args: list[bytes]) -> None:
    """Any argv (empty strings, non-UTF-8 bytes), filename, flags and identity come back field for field."""
    event = decode(exec_record(args, filename, flags, ident=ident))
    assert isinstance(event, ExecEvent)
    assert event.args == tuple(_text(a) for a in args)
    assert (event.filename, event.flags_raw, event.exe) == (_text(filename), flags, None)
    assert event.args_truncated == bool(flags & (ExecFlags.ARGS_TRUNCATED | ExecFlags.ARGV_FAULT))
    _assert_ident(event, ident)


@given(
    st.lists(st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=300), min_size=1, max_size=13),
    st.data(),
)
def test_cut_argv_round_trips_as_far_as_it_goes(args: list[str], data: st.DataObject) -> None:
    """A cut anywhere in argv gives back exactly the bytes the kernel kept, split at their NULs."""
    blob = b"".join(a.encode() + b"\0" for a in args)
    cut = data.draw(st.integers(1, len(blob)), label="cut")
    event = decode(exec_record([a.encode() for a in args], flags=ExecFlags.ARGS_TRUNCATED, cut=cut))
    assert isinstance(event, ExecEvent) and event.args_truncated
    assert "\0".join(event.args).encode() == blob[: len(blob) - cut].removesuffix(b"\0")


@given(ident=IDENTS, flags=U8, fd=S32, ret=S32, port=U16, addr=ADDRESSES)
def test_connect_round_trips(
    *, ident: Ident, flags: int, fd: int, ret: int, port: int, addr: ipaddress.IPv4Address | ipaddress.IPv6Address
) -> None:
    """Any fd, result, port and IPv4 or IPv6 destination come back as the kernel wrote them."""
    event = decode(connect_record(_family(addr), addr.packed, port, ret, fd=fd, flags=flags, ident=ident))
    assert isinstance(event, ConnectEvent)
    assert (event.fd, event.ret_raw, event.dport) == (fd, ret, port)
    assert (event.family, event.daddr) == (f"ipv{addr.version}", _shown(addr))
    assert (event.proto, event.saddr, event.sport) == (None, None, None)  # the agent adds these, not the kernel
    _assert_ident(event, ident)


@given(OTHER_FAMILIES, st.binary(min_size=16, max_size=16))
def test_connect_of_another_family_is_named_unknown(family: int, addr: bytes) -> None:
    """A family decode does not know shows as unknown:<n>, its address as hex, and does not fail."""
    event = decode(connect_record(family, addr, 80, 0))
    assert isinstance(event, ConnectEvent)
    assert (event.family, event.daddr) == (f"unknown:{family}", addr.hex())


@given(
    ident=IDENTS,
    flags=U8,
    data=st.binary(max_size=PAYLOAD_MAX),
    len_raw=U32,
    fd=S32,
    port=U16,
    syscall=U8,
    addr=ADDRESSES,
)
def test_payload_round_trips(
    *,
    ident: Ident,
    flags: int,
    data: bytes,
    len_raw: int,
    fd: int,
    port: int,
    syscall: int,
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    """Any captured bytes, sent length, syscall, fd and destination come back as the kernel wrote them."""
    raw = payload_record(data, len_raw, family=_family(addr), addr=addr.packed, port=port, fd=fd, syscall=syscall,
                         flags=flags, ident=ident)
    event = decode(raw)
    assert isinstance(event, PayloadEvent)
    assert (event.data, event.len_raw, event.fd, event.dport) == (data, len_raw, fd, port)
    assert (event.family, event.daddr) == (f"ipv{addr.version}", _shown(addr))
    known = {s.value: s.name.lower() for s in PayloadSyscall}
    assert event.syscall == known.get(syscall, f"unknown:{syscall}")
    assert event.truncated == (len_raw > len(data))
    _assert_ident(event, ident)


@given(IDENTS, U8)
def test_exit_round_trips(ident: Ident, flags: int) -> None:
    """An exit record's identity comes back whatever its flags."""
    event = decode(exit_record(flags, ident))
    assert type(event) is ExitEvent
    _assert_ident(event, ident)


VALID_RECORDS = st.one_of(
    st.builds(lambda i, f, n, a: exec_record(a, n, f, ident=i), IDENTS, U8, kernel_strings(FILENAME_LEN - 1), ARGVS),
    st.builds(
        lambda i, fd, ret, port, addr: connect_record(_family(addr), addr.packed, port, ret, fd=fd, ident=i),
        IDENTS,
        S32,
        S32,
        U16,
        ADDRESSES,
    ),
    st.builds(
        lambda i, d, n, sc: payload_record(d, n, syscall=sc, ident=i), IDENTS, st.binary(max_size=PAYLOAD_MAX), U32, U8
    ),
    st.builds(exit_record, U8, IDENTS),
)
# Where to write a byte: often the fields decode checks (kind, size, args_len, data_len), anywhere else too.
CHECKED = [
    0,
    2,
    3,
    *range(ExecRecord.args_len.offset, ExecRecord.args_len.offset + ExecRecord.args_len.size),
    *range(PayloadRecord.data_len.offset, PayloadRecord.data_len.offset + PayloadRecord.data_len.size),
]
POSITIONS = st.one_of(st.sampled_from(CHECKED), st.integers(0, 95), st.integers(0, ExecRecord.args.offset + ARGS_BUF))


@given(
    VALID_RECORDS,
    st.lists(st.tuples(POSITIONS, U8), max_size=6),
    st.one_of(st.none(), st.integers(0, ExecRecord.args.offset + ARGS_BUF)),
    st.binary(max_size=64),
    st.booleans(),
)
def test_mutated_records_decode_or_raise_a_known_reason(
    record: bytes, writes: list[tuple[int, int]], cut: int | None, extra: bytes, fix_size: bool
) -> None:
    """A valid record with bytes overwritten, cut or appended gives its kind's event or a known DecodeError."""
    raw = bytearray(record)
    for at, byte in writes:
        raw[at % len(raw)] = byte
    if cut is not None:
        del raw[cut:]
    raw += extra
    if fix_size and len(raw) >= 4:  # past the size check, on to the decoders' own checks
        raw[2:4] = (len(raw) % 2**16).to_bytes(2, "little")
    try:
        decoded = decode(bytes(raw))
    except DecodeError as exc:
        tally(exc.reason)  # which of decode's checks the examples reached
        assert exc.reason in REASONS
        return
    tally(type(decoded).__name__)
    assert type(decoded) is EVENT_OF_KIND[raw[0]]
    assert int.from_bytes(raw[2:4], "little") == len(raw) >= RECORDS[EventKind(raw[0])][1]


def _first_failed_check(raw: bytes) -> str | None:
    """The reason of the header check ``raw`` fails (decode checks length, then kind, then size), or None."""
    if len(raw) < HEADER_SIZE:
        return "short_record"
    if raw[0] not in EVENT_OF_KIND:
        return "unknown_kind"
    if int.from_bytes(raw[2:4], "little") != len(raw) or len(raw) < RECORDS[EventKind(raw[0])][1]:
        return "bad_size"
    return None


@given(
    st.one_of(st.binary(max_size=HEADER_SIZE), st.binary(min_size=HEADER_SIZE, max_size=400)),
    st.one_of(st.none(), st.sampled_from(list(EventKind)), U8),
    st.booleans(),
)
def test_random_bytes_only_raise_decode_error(raw: bytes, kind: int | None, fix_size: bool) -> None:
    """Any bytes give their kind's event or DecodeError; a bad header, the reason of the first check it fails."""
    buf = bytearray(raw)
    if kind is not None and buf:
        buf[0] = kind
    if fix_size and len(buf) >= 4:
        buf[2:4] = len(buf).to_bytes(2, "little")
    raw = bytes(buf)
    expected = _first_failed_check(raw)
    try:
        decoded = decode(raw)
    except DecodeError as exc:
        tally(exc.reason)
        assert exc.reason == expected if expected else exc.reason in OVERRUNS
        return
    tally(type(decoded).__name__)
    assert expected is None and type(decoded) is EVENT_OF_KIND[raw[0]]


@given(st.sampled_from(list(EventKind)), st.binary(min_size=400, max_size=3000), st.data())
def test_random_record_bodies(kind: EventKind, body: bytes, data: st.DataObject) -> None:
    """A valid header on random bytes decodes (its fields intact) unless a length field overruns: that reason."""
    raw = bytearray(body)
    raw[0] = kind
    raw[2:4] = len(raw).to_bytes(2, "little") if len(raw) < 65536 else b"\0\0"
    field = {
        EventKind.EXEC: ExecRecord.args_len,
        EventKind.PAYLOAD: PayloadRecord.data_len,
        EventKind.DNS: DnsRecord.data_len,
    }.get(kind)
    tail = len(raw) - RECORDS[kind][1]  # bytes after the fixed part
    if field is not None and data.draw(st.booleans(), label="length fits"):
        raw[field.offset : field.offset + field.size] = data.draw(st.integers(0, tail)).to_bytes(field.size, "little")
    length = int.from_bytes(raw[field.offset : field.offset + field.size], "little") if field is not None else 0
    try:
        decoded = decode(bytes(raw))
    except DecodeError as exc:
        tally(exc.reason)
        overrun = {EventKind.EXEC: "exec_args_overrun", EventKind.DNS: "dns_overrun"}.get(kind, "payload_overrun")
        assert length > tail and exc.reason == overrun
        return
    tally(type(decoded).__name__)
    assert length <= tail and type(decoded) is EVENT_OF_KIND[kind]
    h = EventHeader.from_buffer_copy(bytes(raw[:HEADER_SIZE]))
    _assert_ident(decoded, Ident(h.ktime_ns, h.pid, h.tgid, h.ppid, h.uid, h.cgroup_id, h.comm))
    if isinstance(decoded, PayloadEvent):
        assert decoded.data == bytes(raw[RECORDS[kind][1] :][:length])
    if isinstance(decoded, ExecEvent):  # NUL-terminated strings back to back, the last one perhaps cut
        blob = bytes(raw[RECORDS[kind][1] :][:length])
        assert decoded.args == (tuple(_text(a) for a in blob.removesuffix(b"\0").split(b"\0")) if blob else ())
