# SPDX-License-Identifier: Apache-2.0
"""The local end of a connected socket (protocol, source address and port), from /proc.

The connect and payload records name the destination only: reading the
socket's own address in the kernel would cost every connect a chain of
pointer reads. An alert is rare, so the agent looks the local end up when it
raises one: ``/proc/<pid>/fd/<fd>`` names the socket's inode, and the
process's own network namespace lists it in ``/proc/<pid>/net/{tcp,udp}[6]``.
The socket must still be open, and still connected to the recorded
destination (an fd number reused by another connection is not believed).
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

# /proc/net files by protocol; each lists the sockets of the reading process's network namespace
TABLES = (("tcp", "tcp"), ("tcp", "tcp6"), ("udp", "udp"), ("udp", "udp6"))
_INODE_COLUMN = 9  # sl, local, remote, st, tx:rx, tr:when, retrnsmt, uid, timeout, inode


@dataclass(frozen=True, slots=True)
class LocalEnd:
    proto: str  # "tcp" | "udp"
    saddr: str
    sport: int


class Lookup(StrEnum):
    """How a lookup ended, for the agent's metrics."""

    FOUND = "found"
    CLOSED = "closed"  # the fd is gone or no longer a socket: the process closed it or exited
    NOT_LISTED = "not_listed"  # a socket, but in no tcp/udp table (another protocol)
    REUSED = "reused"  # the fd is now a socket connected elsewhere


# How the pipeline calls local_end(): tgid, fd, daddr, dport (live runs only; a replay has the results).
LocalEndLookup = Callable[[int, int, str, int], "LocalEnd | Lookup"]


def parse_address(field: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """``0100007F:1F90`` or a 32-digit IPv6 form: the kernel prints each 32-bit word of the address in
    the host's byte order (``%08X``) and the port in hex. Raises ValueError on anything else."""
    host, sep, port = field.partition(":")
    if not sep or len(port) != 4:
        raise ValueError(f"not an address:port field: {field!r:.60}")
    raw = bytes.fromhex(host)
    if len(raw) not in (4, 16):
        raise ValueError(f"address of {len(raw)} bytes: {field!r:.60}")
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.IPv4Address(raw) if len(raw) == 4 else ipaddress.IPv6Address(raw)
    return address, int(port, 16)


def find_in_table(text: str, inode: int) -> tuple[str, str] | None:
    """(local, remote) fields of the line for ``inode`` in a /proc/net/{tcp,udp}[6] table."""
    wanted = str(inode)
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) > _INODE_COLUMN and cols[_INODE_COLUMN] == wanted:
            return cols[1], cols[2]
    return None


def socket_inode(link: str) -> int | None:
    """The inode in a ``socket:[12345]`` fd link; None for anything else."""
    if link.startswith("socket:[") and link.endswith("]") and link[8:-1].isdigit():
        return int(link[8:-1])
    return None


def local_end(tgid: int, fd: int, daddr: str, dport: int, proc: Path = Path("/proc")) -> LocalEnd | Lookup:
    """The local end of ``tgid``'s socket ``fd``, if it is still connected to ``daddr``:``dport``."""
    try:
        inode = socket_inode(str((proc / str(tgid) / "fd" / str(fd)).readlink()))
    except OSError:
        inode = None
    if inode is None:
        return Lookup.CLOSED
    for proto, table in TABLES:
        try:
            text = (proc / str(tgid) / "net" / table).read_text()
        except OSError:
            continue  # the protocol is not built in, or the process just exited
        fields = find_in_table(text, inode)
        if fields is not None:
            return _connected_to(proto, fields, daddr, dport)
    return Lookup.NOT_LISTED


_TCP_LISTEN = "0A"  # include/net/tcp_states.h TCP_LISTEN, as /proc/net/tcp prints the state (%02X)


def has_listener(tgid: int, port: int, proc: Path = Path("/proc")) -> bool | None:
    """Whether a TCP socket listens on ``port`` in ``tgid``'s network namespace (so a connection whose own
    port it is was accepted, not opened); None when the tables cannot be read (the process is gone)."""
    read_any = False
    for proto, table in TABLES:
        if proto != "tcp":
            continue
        try:
            text = (proc / str(tgid) / "net" / table).read_text()
        except OSError:
            continue
        read_any = True
        for line in text.splitlines()[1:]:
            cols = line.split()
            if len(cols) > 3 and cols[3] == _TCP_LISTEN and cols[1].endswith(f":{port:04X}"):
                return True
    return False if read_any else None


def _connected_to(proto: str, fields: tuple[str, str], daddr: str, dport: int) -> LocalEnd | Lookup:
    try:
        (saddr, sport), remote = parse_address(fields[0]), parse_address(fields[1])
        destination = ipaddress.ip_address(daddr)
    except ValueError:
        return Lookup.NOT_LISTED
    if remote != (destination, dport):
        return Lookup.REUSED
    return LocalEnd(proto, str(saddr), sport)
