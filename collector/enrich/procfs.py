# SPDX-License-Identifier: Apache-2.0
"""Read processes from /proc: the process table's seed, and its fallback for strangers."""

from __future__ import annotations

import os
import time
from pathlib import Path

from collector.enrich.cgroups import CgroupResolver
from probes.events import ProcEvent

MAX_CMDLINE = 32 * 1024  # bytes of /proc/<pid>/cmdline kept: argv can be megabytes


def _read(path: Path, limit: int = 64 * 1024) -> bytes | None:
    try:
        with path.open("rb") as f:
            return f.read(limit)
    except OSError:
        return None


def parse_stat(raw: bytes) -> tuple[str, int] | None:
    """(comm, ppid) from /proc/<pid>/stat; comm may hold spaces and parentheses."""
    open_, close = raw.find(b"("), raw.rfind(b")")
    if open_ < 0 or close < open_:
        return None
    rest = raw[close + 1 :].split()
    if len(rest) < 2 or not rest[1].isdigit():
        return None
    return raw[open_ + 1 : close].decode("utf-8", "backslashreplace"), int(rest[1])


def parse_uid(status: bytes) -> int | None:
    """The real uid from /proc/<pid>/status."""
    for line in status.splitlines():
        if line.startswith(b"Uid:"):
            fields = line.split()
            return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
    return None


def parse_cmdline(raw: bytes) -> tuple[str, ...]:
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return tuple(p.decode("utf-8", "backslashreplace") for p in parts)


def parse_cgroup_v2(raw: bytes) -> str | None:
    """The cgroup v2 path ("0::/path") from /proc/<pid>/cgroup."""
    for line in raw.splitlines():
        if line.startswith(b"0::"):
            return line[3:].decode("utf-8", "backslashreplace")
    return None


def exe(pid: int, proc: Path = Path("/proc")) -> str | None:
    try:
        return os.readlink(proc / str(pid) / "exe")
    except OSError:
        return None


def snapshot(pid: int, cgroups: CgroupResolver, proc: Path = Path("/proc")) -> ProcEvent | None:
    """The process as /proc shows it now, or None when it is gone or unreadable."""
    base = proc / str(pid)
    stat = _read(base / "stat")
    parsed = parse_stat(stat) if stat else None
    if parsed is None:
        return None
    comm, ppid = parsed
    uid = parse_uid(_read(base / "status") or b"")
    cmdline = _read(base / "cmdline", MAX_CMDLINE) or b""
    cg_path = parse_cgroup_v2(_read(base / "cgroup") or b"")
    return ProcEvent(
        ktime_ns=time.monotonic_ns(),  # CLOCK_MONOTONIC, as bpf_ktime_get_ns()
        pid=pid,
        tgid=pid,
        ppid=ppid,
        uid=uid if uid is not None else -1,
        cgroup_id=cgroups.id_of(cg_path) if cg_path is not None else 0,
        comm=comm,
        exe=exe(pid, proc),
        args=parse_cmdline(cmdline),
    )


def pids(proc: Path = Path("/proc")) -> list[int]:
    """Every process id in /proc, ascending."""
    try:
        return sorted(int(name) for name in os.listdir(proc) if name.isdigit())
    except OSError:
        return []
