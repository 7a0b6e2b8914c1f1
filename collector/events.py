# SPDX-License-Identifier: Apache-2.0
"""Typed events: what every stage after the loader sees, and what recordings hold.

Kernel events (exec, exit, connect, payload) come from probes.decode; the agent
adds two kinds of its own so that a recording replays with the same context:
``proc`` (a process found in /proc: at start-up, or first seen without its exec)
and ``cgroup`` (the path of a cgroup id).
"""

from __future__ import annotations

import errno
from dataclasses import MISSING, dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar


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
    flags_raw: int  # probes.layout.ExecFlags
    exe: str | None = None  # /proc/<pid>/exe, when the agent could read it

    @property
    def args_truncated(self) -> bool:
        """argv is cut (longer than probes.layout.ARGS_BUF bytes) or could not be read."""
        return bool(self.flags_raw & 0b1001)  # ExecFlags.ARGS_TRUNCATED | ExecFlags.ARGV_FAULT


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
    # The socket's own end, looked up in /proc when an alert is raised on the event (collector.sockets):
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
    # The socket's own end, looked up in /proc when an alert is raised on the event (collector.sockets):
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
_FIELDS: dict[type[Event], tuple[str, ...]] = {cls: tuple(f.name for f in fields(cls)) for cls in EVENT_TYPES.values()}
# Fields a recording may leave out at the end of an event: those with defaults, added after version 1 began.
_REQUIRED: dict[type[Event], int] = {
    cls: sum(f.default is MISSING and f.default_factory is MISSING for f in fields(cls)) for cls in EVENT_TYPES.values()
}
_TUPLE_FIELDS = frozenset({"args"})
# What a field may hold once decoded, by its annotation (this module uses only these).
_CHECKS: dict[str, Any] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bytes": lambda v: isinstance(v, bytes),
    "str | None": lambda v: v is None or isinstance(v, str),
    "int | None": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)),
    "tuple[str, ...]": lambda v: isinstance(v, tuple) and all(isinstance(a, str) for a in v),
}
_FIELD_CHECKS: dict[type[Event], tuple[Any, ...]] = {
    cls: tuple(_CHECKS[str(f.type)] for f in fields(cls)) for cls in EVENT_TYPES.values()
}


def to_wire(event: Event) -> list[Any]:
    """A msgpack-ready list: the kind, then the fields in declaration order."""
    return [event.KIND.value, *(getattr(event, name) for name in _FIELDS[type(event)])]


def from_wire(item: object) -> Event:
    """Inverse of to_wire; raises ValueError on anything that is not a valid event."""
    if not isinstance(item, list) or not item:
        raise ValueError("event is not a non-empty list")
    try:
        cls = EVENT_TYPES[Kind(item[0])]
    except (ValueError, TypeError):
        raise ValueError(f"unknown event kind {item[0]!r}") from None
    values = item[1:]
    if not _REQUIRED[cls] <= len(values) <= len(_FIELDS[cls]):
        raise ValueError(f"{cls.KIND.value} event has {len(values)} fields, expected {len(_FIELDS[cls])}")
    names = _FIELDS[cls][: len(values)]
    kwargs: dict[str, Any] = {
        n: tuple(v) if n in _TUPLE_FIELDS and isinstance(v, list) else v for n, v in zip(names, values, strict=True)
    }
    for (name, value), check in zip(kwargs.items(), _FIELD_CHECKS[cls], strict=False):
        if not check(value):
            raise ValueError(f"{cls.KIND.value} event field {name} has a bad value {value!r:.40}")
    return cls(**kwargs)
