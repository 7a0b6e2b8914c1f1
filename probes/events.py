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


EVENT_TYPES: dict[Kind, type[Event]] = {
    cls.KIND: cls for cls in (ExecEvent, ExitEvent, ConnectEvent, PayloadEvent, ProcEvent, CgroupEvent)
}
