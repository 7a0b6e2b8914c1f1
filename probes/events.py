# SPDX-License-Identifier: Apache-2.0
"""Typed events: what every stage after the decoder sees, and what recordings hold.

Kernel events (exec, exit, connect, payload) come from probes.decode; the agent
adds two kinds of its own so that a recording replays with the same context:
``proc`` (a process found in /proc: at start-up, or first seen without its exec)
and ``cgroup`` (the path of a cgroup id). They are all here, in probes/, so that
the decoder needs nothing of collector/ and one enum names every kind.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from probes.layout import ExecFlags


class Kind(StrEnum):
    EXEC = "exec"
    EXIT = "exit"
    CONNECT = "connect"
    PAYLOAD = "payload"
    PROC = "proc"
    CGROUP = "cgroup"
    STDIO = "stdio"
    SOCKET = "socket"
    TUN = "tun"
    DNS = "dns"
    RELAY = "relay"
    GPU_OPEN = "gpu_open"


@dataclass(frozen=True, slots=True)
class Event:
    """Fields every event has: who did it and when (CLOCK_MONOTONIC ns)."""

    KIND: ClassVar[Kind]
    ktime_ns: int
    pid: int  # thread id
    tgid: int  # process id
    ppid: int  # 0 when unknown
    uid: int
    cgroup_id: int
    comm: str


@dataclass(frozen=True, slots=True)
class ExecEvent(Event):
    KIND: ClassVar[Kind] = Kind.EXEC
    filename: str  # as passed to execve, may be relative
    args: tuple[str, ...]
    flags_raw: int  # ExecFlags
    exe: str | None = None  # /proc/<pid>/exe, when the agent could read it
    # For an OpenSSH client: the ssh_config lines it will apply that the tunnel rules read ("RemoteForward 8 h:8"),
    # in ssh's order, and where each is ("/root/.ssh/config:3"): read at exec (collector.enrich.sshconf).
    ssh_config: tuple[str, ...] = ()
    ssh_config_from: tuple[str, ...] = ()
    # NAME=value of the environment variables the agent reads at exec, and only those (environments hold
    # secrets): AUTOSSH_* for autossh (collector.enrich.sshconf). Recorded, so a replay reads the same.
    environ: tuple[str, ...] = ()

    @property
    def args_truncated(self) -> bool:
        """argv is cut (longer than probes.layout.ARGS_BUF bytes) or could not be read."""
        return bool(self.flags_raw & (ExecFlags.ARGS_TRUNCATED | ExecFlags.ARGV_FAULT))


@dataclass(frozen=True, slots=True)
class ExitEvent(Event):
    KIND: ClassVar[Kind] = Kind.EXIT


@dataclass(frozen=True, slots=True)
class ConnectEvent(Event):
    KIND: ClassVar[Kind] = Kind.CONNECT
    fd: int
    family: str  # "ipv4" | "ipv6" | "unknown:<n>"
    daddr: str
    dport: int
    ret_raw: int  # 0 or -errno
    # The socket's own end, looked up in /proc when an alert is raised on the event (collector.enrich.sockets):
    # recorded with the event, so a replay raises the same alert. None when not looked up or not found.
    proto: str | None = None  # "tcp" | "udp"
    saddr: str | None = None
    sport: int | None = None

    @property
    def started(self) -> bool:
        return self.ret_raw in (0, -errno.EINPROGRESS)

    @property
    def error(self) -> str | None:
        if self.ret_raw >= 0:
            return None
        return errno.errorcode.get(-self.ret_raw, f"unknown:{-self.ret_raw}")


@dataclass(frozen=True, slots=True)
class PayloadEvent(Event):
    KIND: ClassVar[Kind] = Kind.PAYLOAD
    fd: int
    family: str
    daddr: str
    dport: int
    syscall: str  # "write" | "sendto" | "writev" | "sendmsg"
    len_raw: int  # bytes the syscall was asked to send
    data: bytes  # the first bytes, at most probes.layout.PAYLOAD_MAX
    # The socket's own end, looked up in /proc when an alert is raised on the event (collector.enrich.sockets):
    # recorded with the event, so a replay raises the same alert. None when not looked up or not found.
    proto: str | None = None  # "tcp" | "udp"
    saddr: str | None = None
    sport: int | None = None

    @property
    def truncated(self) -> bool:
        return self.len_raw > len(self.data)


@dataclass(frozen=True, slots=True)
class ProcEvent(Event):
    """A process as /proc showed it: seeds the process table."""

    KIND: ClassVar[Kind] = Kind.PROC
    exe: str | None
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CgroupEvent(Event):
    """The path of ``cgroup_id`` under the cgroup v2 mount (pid fields are 0)."""

    KIND: ClassVar[Kind] = Kind.CGROUP
    path: str


@dataclass(frozen=True, slots=True)
class StdioEvent(Event):
    """An IPv4/IPv6 socket became a process's fd 0, 1 or 2: a dup2()/dup3()/dup()/fcntl(F_DUPFD) of it onto
    one of them, or an exec whose new program has one there (the reverse-shell signal, issue 13 item 4)."""

    KIND: ClassVar[Kind] = Kind.STDIO
    how: str  # "dup2" | "dup3" | "dup" | "fcntl" | "exec"
    fd: int  # the stdio fd that holds the socket now (for an exec: the lowest of them)
    oldfd: int  # the fd copied; -1 for an exec
    fds: str  # which of 0, 1, 2 hold an IPv4/IPv6 socket after the call, e.g. "012" or "0"
    proto: str  # "tcp" | "udp" | "unknown:<n>"
    state: str  # the socket's state, tcp_states.h names lower-cased: "established", "syn_sent", "listen", ...
    family: str  # "ipv4" | "ipv6"
    daddr: str  # the peer ("0.0.0.0" / "::" when not connected)
    dport: int
    saddr: str  # the socket's own address and port
    sport: int
    # Whether the socket's own port has a TCP listener in the process's network namespace (an accepted
    # connection: inetd, socket activation), looked up live in /proc (collector.enrich.sockets) and recorded
    # with the event, so a replay decides alike. None when not looked up (UDP, or the process is gone).
    inbound: bool | None = None


@dataclass(frozen=True, slots=True)
class SocketEvent(Event):
    """A raw or ICMP socket was created (socket(2) with SOCK_RAW, or an ICMP/ICMPv6 datagram socket)."""

    KIND: ClassVar[Kind] = Kind.SOCKET
    fd: int  # the new fd, or -1 when socket() failed
    family: str  # "ipv4" | "ipv6" | "packet" | "unknown:<n>"
    type: str  # "raw" | "dgram" | "unknown:<n>"
    protocol: int  # IPPROTO_* as passed (1 = ICMP, 58 = ICMPv6, 255 = raw IP; for packet sockets the ethertype)
    ret_raw: int  # the fd, or -errno


@dataclass(frozen=True, slots=True)
class TunEvent(Event):
    """ioctl(fd, TUNSETIFF) on /dev/net/tun: the process creates or attaches a TUN/TAP interface."""

    KIND: ClassVar[Kind] = Kind.TUN
    fd: int
    ifname: str  # as requested ("" lets the kernel pick tunN/tapN)
    mode: str  # "tun" | "tap" | "unknown"
    flags_raw: int  # ifr_flags (IFF_TUN 0x1, IFF_TAP 0x2, IFF_NO_PI 0x1000, IFF_MULTI_QUEUE 0x100, ...)


@dataclass(frozen=True, slots=True)
class DnsEvent(Event):
    """One DNS message a process sent to port 53 (a query) or received from it (an answer), raw."""

    KIND: ClassVar[Kind] = Kind.DNS
    fd: int
    direction: str  # "query" | "answer"
    proto: str  # "udp" | "tcp"
    family: str  # "ipv4" | "ipv6"
    server: str  # the name server's address (the query's destination, the answer's source)
    port: int  # its port (53)
    syscall: str  # the syscall that carried it: "sendto", "sendmsg", "sendmmsg", "write", "recvfrom", ...
    len_raw: int  # bytes the syscall sent or received
    data: bytes  # the DNS message's first bytes (at most probes.layout.DNS_MAX; TCP: after the 2-byte length)

    @property
    def truncated(self) -> bool:
        return self.len_raw > len(self.data)


@dataclass(frozen=True, slots=True)
class RelayEvent(Event):
    """A shell's stdin and output are relayed to a network connection by another process (agent-made, from
    /proc: collector.enrich.relay). The header is the shell's; the holder is the process with the connection."""

    KIND: ClassVar[Kind] = Kind.RELAY
    holder: int  # the process that holds the connection and the other end of the shell's stdio
    holder_comm: str
    link: str  # how the shell's stdio reaches it: "pipe", "fifo", "pty", "unix" (a socketpair)
    fds: str  # which of the shell's 0, 1, 2 lead to a connection holder
    fd: int  # the holder's socket
    family: str
    daddr: str
    dport: int
    via: int | None = None  # a sibling that passes the holder's output on to the shell's stdin (`cat fifo | sh`)


@dataclass(frozen=True, slots=True)
class GpuOpenEvent(Event):
    """A process opened a GPU device file, or tried to (issue 14): one per process and device, from the
    kernel (probes/exec.bpf.c)."""

    KIND: ClassVar[Kind] = Kind.GPU_OPEN
    how: str  # "path" (a GPU device prefix), "device" (another path, a GPU's device number), "failed"
    path: str  # as passed to the call ("" when the kernel could not keep it)
    ret_raw: int  # the fd, or -errno
    major: int  # the device number, when known (the open succeeded, or the agent looked at the path)
    minor: int

    @property
    def opened(self) -> bool:
        return self.ret_raw >= 0


EVENT_TYPES: dict[Kind, type[Event]] = {
    cls.KIND: cls
    for cls in (
        ExecEvent,
        ExitEvent,
        ConnectEvent,
        PayloadEvent,
        ProcEvent,
        CgroupEvent,
        StdioEvent,
        SocketEvent,
        TunEvent,
        DnsEvent,
        RelayEvent,
        GpuOpenEvent,
    )
}
