# SPDX-License-Identifier: Apache-2.0
"""decode(raw) -> Event: kernel records (probes/events.h) to typed collector events.

Pure and public so that tests feed it bytes. A malformed record raises
DecodeError with a short reason that the read loop counts before going on.
"""

from __future__ import annotations

import ctypes as ct
import ipaddress
import struct
from collections.abc import Callable
from enum import IntEnum

from probes.errors import DecodeError
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
    RECORDS,
    ConnectRecord,
    DnsDirection,
    DnsRecord,
    EventHeader,
    EventKind,
    ExecRecord,
    GpuOpenHow,
    GpuOpenRecord,
    PayloadRecord,
    PayloadSyscall,
    SocketRecord,
    StdioHow,
    StdioRecord,
    TunRecord,
)

_HEADER = struct.Struct("<BBHIQIIIIQ16s")
assert _HEADER.size == ct.sizeof(EventHeader)
_AF_INET, _AF_INET6, _AF_PACKET = 2, 10, 17
_PROTOCOLS = {6: "tcp", 17: "udp"}
# include/net/tcp_states.h, lower-cased
_STATES = (
    "",
    "established",
    "syn_sent",
    "syn_recv",
    "fin_wait1",
    "fin_wait2",
    "time_wait",
    "close",
    "close_wait",
    "last_ack",
    "listen",
    "closing",
    "new_syn_recv",
    "bound_inactive",
)
_SOCK_TYPES = {1: "stream", 2: "dgram", 3: "raw", 5: "seqpacket"}
_TUN_MODES = {1: "tun", 2: "tap"}  # include/uapi/linux/if_tun.h IFF_TUN, IFF_TAP


def text(raw: bytes) -> str:
    """A NUL-terminated kernel string; bytes that are not UTF-8 stay visible as \\xNN."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


def family_name(family: int) -> str:
    return {_AF_INET: "ipv4", _AF_INET6: "ipv6"}.get(family, f"unknown:{family}")


def address(family: int, raw: bytes) -> str:
    """The destination as text; an IPv4-mapped IPv6 address shows as IPv4."""
    if family == _AF_INET:
        return str(ipaddress.IPv4Address(raw[:4]))
    if family == _AF_INET6:
        addr = ipaddress.IPv6Address(raw[:16])
        return str(addr.ipv4_mapped or addr)
    return raw.hex()


def _name(names: dict[int, str], n: int) -> str:
    return names.get(n, f"unknown:{n}")


def _enum_name(enum: type[IntEnum], n: int) -> str:
    """An enumerator's name in lower case; "unknown:N" for a value the enum lacks."""
    try:
        return enum(n).name.lower()
    except ValueError:
        return f"unknown:{n}"


def _syscall_name(n: int) -> str:
    return _enum_name(PayloadSyscall, n)


def _record(raw: bytes, cls: type[ct.Structure]) -> ct.Structure:
    return cls.from_buffer_copy(raw.ljust(ct.sizeof(cls), b"\0"))


def _common(raw: bytes) -> dict[str, object]:
    _k, _f, _s, _r, ktime, pid, tgid, ppid, uid, cgroup, comm = _HEADER.unpack_from(raw)
    return {
        "ktime_ns": ktime,
        "pid": pid,
        "tgid": tgid,
        "ppid": ppid,
        "uid": uid,
        "cgroup_id": cgroup,
        "comm": text(comm),
    }


def _exec(raw: bytes, flags: int) -> Event:
    rec = _record(raw, ExecRecord)
    assert isinstance(rec, ExecRecord)
    args_len = rec.args_len
    if args_len > len(raw) - ExecRecord.args.offset:
        raise DecodeError("exec_args_overrun", f"args_len {args_len} past the record")
    blob = raw[ExecRecord.args.offset : ExecRecord.args.offset + args_len]
    parts = blob.split(b"\0")
    if parts[-1] == b"":  # complete: every string NUL-terminated; else the last one was cut
        parts.pop()
    args = tuple(a.decode("utf-8", "backslashreplace") for a in parts)
    return ExecEvent(**_common(raw), filename=text(bytes(rec.filename)), args=args, flags_raw=flags)  # type: ignore[arg-type]


def _exit(raw: bytes, flags: int) -> Event:
    return ExitEvent(**_common(raw))  # type: ignore[arg-type]


def _connect(raw: bytes, flags: int) -> Event:
    rec = _record(raw, ConnectRecord)
    assert isinstance(rec, ConnectRecord)
    return ConnectEvent(
        **_common(raw),  # type: ignore[arg-type]
        fd=rec.fd,
        family=family_name(rec.family),
        daddr=address(rec.family, bytes(rec.daddr)),
        dport=rec.dport,
        ret_raw=rec.ret,
    )


def _payload(raw: bytes, flags: int) -> Event:
    rec = _record(raw, PayloadRecord)
    assert isinstance(rec, PayloadRecord)
    start = PayloadRecord.data.offset
    if rec.data_len > len(raw) - start:
        raise DecodeError("payload_overrun", f"data_len {rec.data_len} past the record")
    return PayloadEvent(
        **_common(raw),  # type: ignore[arg-type]
        fd=rec.fd,
        family=family_name(rec.family),
        daddr=address(rec.family, bytes(rec.daddr)),
        dport=rec.dport,
        syscall=_syscall_name(rec.syscall),
        len_raw=rec.len_raw,
        data=raw[start : start + rec.data_len],
    )


def _stdio(raw: bytes, flags: int) -> Event:
    rec = _record(raw, StdioRecord)
    assert isinstance(rec, StdioRecord)
    how = _enum_name(StdioHow, rec.how)
    return StdioEvent(
        **_common(raw),  # type: ignore[arg-type]
        how=how,
        fd=rec.fd,
        oldfd=rec.oldfd,
        fds="".join(str(i) for i in range(3) if rec.fds >> i & 1),
        proto=_name(_PROTOCOLS, rec.proto),
        state=_STATES[rec.state] if 0 < rec.state < len(_STATES) else f"unknown:{rec.state}",
        family=family_name(rec.family),
        daddr=address(rec.family, bytes(rec.daddr)),
        dport=rec.dport,
        saddr=address(rec.family, bytes(rec.saddr)),
        sport=rec.sport,
    )


def _socket(raw: bytes, flags: int) -> Event:
    rec = _record(raw, SocketRecord)
    assert isinstance(rec, SocketRecord)
    family = "packet" if rec.family == _AF_PACKET else family_name(rec.family)
    return SocketEvent(
        **_common(raw),  # type: ignore[arg-type]
        fd=rec.ret if rec.ret >= 0 else -1,
        family=family,
        type=_name(_SOCK_TYPES, rec.type),
        protocol=rec.protocol,
        ret_raw=rec.ret,
    )


def _tun(raw: bytes, flags: int) -> Event:
    rec = _record(raw, TunRecord)
    assert isinstance(rec, TunRecord)
    mode = _TUN_MODES.get(rec.ifr_flags & 0x3, "unknown")
    return TunEvent(
        **_common(raw),  # type: ignore[arg-type]
        fd=rec.fd,
        ifname=text(bytes(rec.ifname)),
        mode=mode,
        flags_raw=rec.ifr_flags,
    )


def _dns(raw: bytes, flags: int) -> Event:
    rec = _record(raw, DnsRecord)
    assert isinstance(rec, DnsRecord)
    start = DnsRecord.data.offset
    if rec.data_len > len(raw) - start:
        raise DecodeError("dns_overrun", f"data_len {rec.data_len} past the record")
    direction = _enum_name(DnsDirection, rec.direction)
    data = raw[start : start + rec.data_len]
    proto = _name(_PROTOCOLS, rec.proto)
    len_raw = rec.len_raw
    # TCP (RFC 1035 4.2.2, RFC 7766): each message follows its 2-byte length; a send of both at once has it
    if proto == "tcp" and len(data) >= 2 and int.from_bytes(data[:2], "big") == len_raw - 2:
        data, len_raw = data[2:], len_raw - 2
    return DnsEvent(
        **_common(raw),  # type: ignore[arg-type]
        fd=rec.fd,
        direction=direction,
        proto=proto,
        family=family_name(rec.family),
        server=address(rec.family, bytes(rec.server)),
        port=rec.port,
        syscall=_syscall_name(rec.syscall),
        len_raw=len_raw,
        data=data,
    )


def _gpu_open(raw: bytes, flags: int) -> Event:
    rec = _record(raw, GpuOpenRecord)
    assert isinstance(rec, GpuOpenRecord)
    how = _enum_name(GpuOpenHow, rec.how)
    return GpuOpenEvent(
        **_common(raw),  # type: ignore[arg-type]
        how=how,
        path=text(bytes(rec.path)),
        ret_raw=rec.ret,
        major=rec.major,
        minor=rec.minor,
    )


DECODERS: dict[EventKind, Callable[[bytes, int], Event]] = {
    EventKind.EXEC: _exec,
    EventKind.EXIT: _exit,
    EventKind.CONNECT: _connect,
    EventKind.PAYLOAD: _payload,
    EventKind.STDIO: _stdio,
    EventKind.SOCKET: _socket,
    EventKind.TUN: _tun,
    EventKind.DNS: _dns,
    EventKind.GPU_OPEN: _gpu_open,
}


def decode(raw: bytes) -> Event:
    """One ring-buffer record to one event; DecodeError(reason) when malformed."""
    if len(raw) < _HEADER.size:
        raise DecodeError("short_record", f"{len(raw)} bytes")
    kind_raw, flags, size = raw[0], raw[1], int.from_bytes(raw[2:4], "little")
    try:
        kind = EventKind(kind_raw)
    except ValueError:
        raise DecodeError("unknown_kind", str(kind_raw)) from None
    _cls, fixed = RECORDS[kind]
    if size != len(raw) or size < fixed:
        raise DecodeError("bad_size", f"{kind.name.lower()} record says {size} bytes, got {len(raw)}")
    return DECODERS[kind](raw, flags)
