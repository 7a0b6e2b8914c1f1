# SPDX-License-Identifier: Apache-2.0
"""ctypes mirror of probes/events.h; tests/probes/test_layout.py keeps the two in step."""

from __future__ import annotations

import ctypes as ct
from enum import IntEnum, IntFlag

COMM_LEN = 16
FILENAME_LEN = 256
ARGS_BUF = 4096
PAYLOAD_MAX = 256
IFNAMSIZ = 16
GPU_PATH_MAX = 128
DNS_MAX = 512  # a DNS message kept per record: the classic UDP limit (RFC 1035 4.2.1)


class EventKind(IntEnum):
    """enum event_kind: append only."""

    EXEC = 1
    EXIT = 2
    CONNECT = 3
    PAYLOAD = 4
    STDIO = 5
    SOCKET = 6
    TUN = 7
    DNS = 8
    GPU_OPEN = 9


class ExecFlags(IntFlag):
    ARGS_TRUNCATED = 1 << 0
    ARGV_FAULT = 1 << 3


class PayloadFlags(IntFlag):
    TRUNCATED = 1 << 0


class PayloadSyscall(IntEnum):
    WRITE = 1
    SENDTO = 2
    WRITEV = 3
    SENDMSG = 4
    SENDMMSG = 5
    READ = 6
    RECVFROM = 7
    RECVMSG = 8


class GpuOpenHow(IntEnum):
    PATH = 1
    DEVICE = 2
    FAILED = 3


class DnsDirection(IntEnum):
    QUERY = 1
    ANSWER = 2


class StdioHow(IntEnum):
    DUP2 = 1
    DUP3 = 2
    DUP = 3
    FCNTL = 4
    EXEC = 5


class EventHeader(ct.Structure):
    _fields_ = (
        ("kind", ct.c_uint8),
        ("flags", ct.c_uint8),
        ("size", ct.c_uint16),
        ("reserved", ct.c_uint32),
        ("ktime_ns", ct.c_uint64),
        ("pid", ct.c_uint32),
        ("tgid", ct.c_uint32),
        ("ppid", ct.c_uint32),
        ("uid", ct.c_uint32),
        ("cgroup_id", ct.c_uint64),
        ("comm", ct.c_char * COMM_LEN),
    )


class ExecRecord(ct.Structure):
    _fields_ = (
        ("hdr", EventHeader),
        ("args_len", ct.c_uint32),
        ("args_total", ct.c_uint32),
        ("filename", ct.c_char * FILENAME_LEN),
        ("args", ct.c_char * ARGS_BUF),
    )


class ExitRecord(ct.Structure):
    _fields_ = (("hdr", EventHeader),)


class ConnectRecord(ct.Structure):
    _fields_ = (
        ("hdr", EventHeader),
        ("fd", ct.c_int32),
        ("ret", ct.c_int32),
        ("family", ct.c_uint16),
        ("dport", ct.c_uint16),
        ("reserved", ct.c_uint32),
        ("daddr", ct.c_uint8 * 16),
    )


class PayloadRecord(ct.Structure):
    _fields_ = (
        ("hdr", EventHeader),
        ("fd", ct.c_int32),
        ("len_raw", ct.c_uint32),
        ("family", ct.c_uint16),
        ("dport", ct.c_uint16),
        ("data_len", ct.c_uint16),
        ("syscall", ct.c_uint8),
        ("reserved", ct.c_uint8),
        ("daddr", ct.c_uint8 * 16),
        ("data", ct.c_uint8 * PAYLOAD_MAX),
    )


class StdioRecord(ct.Structure):
    _fields_ = (
        ("hdr", EventHeader),
        ("fd", ct.c_int32),
        ("oldfd", ct.c_int32),
        ("how", ct.c_uint8),
        ("fds", ct.c_uint8),
        ("proto", ct.c_uint8),
        ("state", ct.c_uint8),
        ("family", ct.c_uint16),
        ("dport", ct.c_uint16),
        ("sport", ct.c_uint16),
        ("reserved", ct.c_uint16),
        ("reserved2", ct.c_uint32),
        ("daddr", ct.c_uint8 * 16),
        ("saddr", ct.c_uint8 * 16),
    )


class SocketRecord(ct.Structure):
    _fields_ = (
        ("hdr", EventHeader),
        ("ret", ct.c_int32),
        ("family", ct.c_uint32),
        ("type", ct.c_uint32),
        ("protocol", ct.c_uint32),
    )


class TunRecord(ct.Structure):
    _fields_ = (
        ("hdr", EventHeader),
        ("fd", ct.c_int32),
        ("ifr_flags", ct.c_uint16),
        ("reserved", ct.c_uint16),
        ("ifname", ct.c_char * IFNAMSIZ),
    )


class DnsRecord(ct.Structure):
    _fields_ = (
        ("hdr", EventHeader),
        ("fd", ct.c_int32),
        ("len_raw", ct.c_uint32),
        ("family", ct.c_uint16),
        ("port", ct.c_uint16),
        ("data_len", ct.c_uint16),
        ("syscall", ct.c_uint8),
        ("direction", ct.c_uint8),
        ("proto", ct.c_uint8),
        ("reserved", ct.c_uint8 * 7),
        ("server", ct.c_uint8 * 16),
        ("data", ct.c_uint8 * DNS_MAX),
    )


class GpuOpenRecord(ct.Structure):
    _fields_ = (
        ("hdr", EventHeader),
        ("ret", ct.c_int32),
        ("major", ct.c_uint32),
        ("minor", ct.c_uint32),
        ("how", ct.c_uint8),
        ("reserved", ct.c_uint8 * 3),
        ("path", ct.c_char * GPU_PATH_MAX),
    )


# Records sent with a variable tail: the fixed part is everything before it.
RECORDS: dict[EventKind, tuple[type[ct.Structure], int]] = {
    EventKind.EXEC: (ExecRecord, ExecRecord.args.offset),
    EventKind.EXIT: (ExitRecord, ct.sizeof(ExitRecord)),
    EventKind.CONNECT: (ConnectRecord, ct.sizeof(ConnectRecord)),
    EventKind.PAYLOAD: (PayloadRecord, PayloadRecord.data.offset),
    EventKind.STDIO: (StdioRecord, ct.sizeof(StdioRecord)),
    EventKind.SOCKET: (SocketRecord, ct.sizeof(SocketRecord)),
    EventKind.TUN: (TunRecord, ct.sizeof(TunRecord)),
    EventKind.DNS: (DnsRecord, DnsRecord.data.offset),
    EventKind.GPU_OPEN: (GpuOpenRecord, ct.sizeof(GpuOpenRecord)),
}
