# SPDX-License-Identifier: Apache-2.0
"""Event factories for tests: typed events with realistic defaults."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from collector.source.recording import Recorder
from probes.events import (
    CgroupEvent,
    ConnectEvent,
    Event,
    ExecEvent,
    ExitEvent,
    PayloadEvent,
    ProcEvent,
    StdioEvent,
)

COMMON: dict[str, Any] = {"ktime_ns": 1_000_000_000, "pid": 4242, "tgid": 4242, "ppid": 4000, "uid": 1000}


def common(**kw: Any) -> dict[str, Any]:
    out = {**COMMON, "cgroup_id": 7, "comm": "proc", **kw}
    if "pid" in kw and "tgid" not in kw:
        out["tgid"] = kw["pid"]
    return out


def exec_event(args: list[str] | tuple[str, ...], exe: str | None = None, **kw: Any) -> ExecEvent:
    filename = kw.pop("filename", exe or (args[0] if args else ""))
    comm = kw.pop("comm", (exe or filename).rsplit("/", 1)[-1][:15])
    return ExecEvent(**common(comm=comm, **kw), filename=filename, args=tuple(args), flags_raw=0, exe=exe)


LOCAL_END = ("proto", "saddr", "sport")


def payload_event(data: bytes, daddr: str = "203.0.113.7", dport: int = 3333, **kw: Any) -> PayloadEvent:
    local = {k: kw.pop(k) for k in LOCAL_END if k in kw}
    return PayloadEvent(
        **common(**kw),
        fd=5,
        family="ipv4",
        daddr=daddr,
        dport=dport,
        syscall="write",
        len_raw=len(data),
        data=data,
        **local,
    )


def connect_event(daddr: str = "203.0.113.7", dport: int = 3333, ret: int = 0, **kw: Any) -> ConnectEvent:
    return ConnectEvent(**common(**kw), fd=5, family="ipv4", daddr=daddr, dport=dport, ret_raw=ret)


def stdio_event(
    fds: str,
    *,
    how: str = "dup2",
    fd: int | None = None,
    oldfd: int = 3,
    daddr: str = "203.0.113.9",
    dport: int = 4444,
    **kw: Any,
) -> StdioEvent:
    """A socket onto stdio: by default TCP, connected, from 10.0.0.5:43210."""
    sock: dict[str, Any] = {"proto": "tcp", "state": "established", "family": "ipv4"}
    sock |= {"saddr": "10.0.0.5", "sport": 43210}
    sock.update({k: kw.pop(k) for k in [*sock, "inbound"] if k in kw})
    return StdioEvent(
        **common(**kw),
        how=how,
        fd=int(fds[-1]) if fd is None else fd,
        oldfd=-1 if how == "exec" else oldfd,
        fds=fds,
        daddr=daddr,
        dport=dport,
        **sock,
    )


def proc_event(pid: int, ppid: int, args: tuple[str, ...] = (), exe: str | None = None, **kw: Any) -> ProcEvent:
    return ProcEvent(**common(pid=pid, ppid=ppid, **kw), exe=exe, args=args)


def exit_event(pid: int, **kw: Any) -> ExitEvent:
    return ExitEvent(**common(pid=pid, **kw))


def cgroup_event(cgroup_id: int, path: str) -> CgroupEvent:
    return CgroupEvent(0, 0, 0, 0, 0, cgroup_id, "", path)


def write_recording(path: Path, events: Iterable[Event], **header: Any) -> None:
    """A recording file holding ``events``, as `coalmine run --record` writes one."""
    recorder = Recorder(path, {"host": "node-1", "boot_id": "b", "realtime_offset_ns": 0, **header})
    for event in events:
        recorder.write(event)
    recorder.close()
