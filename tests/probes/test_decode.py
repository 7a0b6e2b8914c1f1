# SPDX-License-Identifier: Apache-2.0
"""decode() on records built byte for byte as the kernel writes them, and on malformed ones."""

from __future__ import annotations

import contextlib
import ctypes as ct
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.errors import DecodeError
from probes.decode import decode
from probes.events import ConnectEvent, ExecEvent, ExitEvent, PayloadEvent
from probes.layout import (
    ConnectRecord,
    EventKind,
    ExecFlags,
    ExecRecord,
    ExitRecord,
    PayloadRecord,
    PayloadSyscall,
)


def _header(rec: ct.Structure, kind: EventKind, size: int, flags: int = 0) -> None:
    h = rec.hdr  # type: ignore[attr-defined]
    h.kind, h.flags, h.size = kind, flags, size
    h.ktime_ns, h.pid, h.tgid, h.ppid, h.uid, h.cgroup_id = 123456789, 4243, 4242, 1, 1000, 77
    h.comm = b"xmrig"


def exec_record(args: list[bytes], filename: bytes = b"/usr/bin/xmrig", flags: int = 0, cut: int = 0) -> bytes:
    rec = ExecRecord()
    blob = b"".join(a + b"\0" for a in args)
    blob = blob[: len(blob) - cut]
    rec.args_len, rec.args_total = len(blob), len(blob) + cut
    rec.filename = filename
    ct.memmove(ct.addressof(rec) + ExecRecord.args.offset, blob, len(blob))
    size = ExecRecord.args.offset + len(blob)
    _header(rec, EventKind.EXEC, size, flags)
    return bytes(rec)[:size]


def connect_record(family: int, addr: bytes, port: int, ret: int) -> bytes:
    rec = ConnectRecord()
    _header(rec, EventKind.CONNECT, ct.sizeof(rec))
    rec.fd, rec.ret, rec.family, rec.dport = 5, ret, family, port
    ct.memmove(rec.daddr, addr, len(addr))
    return bytes(rec)


def payload_record(data: bytes, len_raw: int | None = None) -> bytes:
    rec = PayloadRecord()
    size = PayloadRecord.data.offset + len(data)
    _header(rec, EventKind.PAYLOAD, size)
    rec.fd, rec.family, rec.dport, rec.data_len = 5, socket.AF_INET, 3333, len(data)
    rec.len_raw = len(data) if len_raw is None else len_raw
    rec.syscall = PayloadSyscall.WRITEV
    ct.memmove(rec.daddr, bytes([203, 0, 113, 7]), 4)
    ct.memmove(rec.data, data, len(data))
    return bytes(rec)[:size]


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


@given(st.binary(max_size=400))
def test_random_bytes_only_raise_decode_error(raw: bytes) -> None:
    """Whatever the bytes, decode returns an event or raises DecodeError."""
    with contextlib.suppress(DecodeError):
        decode(raw)


@given(st.sampled_from(list(EventKind)), st.binary(min_size=400, max_size=3000))
def test_random_record_bodies(kind: EventKind, body: bytes) -> None:
    """A valid header over random bytes decodes or raises DecodeError, never anything else."""
    raw = bytearray(body)
    raw[0] = kind
    raw[2:4] = len(raw).to_bytes(2, "little") if len(raw) < 65536 else b"\0\0"
    with contextlib.suppress(DecodeError):
        decode(bytes(raw))
