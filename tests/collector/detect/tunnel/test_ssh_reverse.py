# SPDX-License-Identifier: Apache-2.0
"""tunnel.ssh_reverse on real command lines, in every spelling of a remote forward."""

from __future__ import annotations

import dataclasses
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.detect import State
from collector.detect.tunnel.ssh import client_argv
from collector.detect.tunnel.ssh_reverse import SshReverseDetector
from collector.enrich.process import ProcessTable
from probes.events import ExecEvent
from tests.factories import exec_event

STATE = State(ProcessTable())
DETECT = SshReverseDetector().detect

REVERSE = [
    # (argv, exe, expected forward spec)
    (["ssh", "-R", "8080:localhost:80", "user@203.0.113.5"], "/usr/bin/ssh", "8080:localhost:80"),
    (["ssh", "-N", "-R", "2222:localhost:22", "attacker@203.0.113.5"], "/usr/bin/ssh", "2222:localhost:22"),
    (["ssh", "-fNR", "9000:127.0.0.1:9000", "host"], "/usr/bin/ssh", "9000:127.0.0.1:9000"),
    (["ssh", "-NfR", "9000:127.0.0.1:9000", "host"], "/usr/bin/ssh", "9000:127.0.0.1:9000"),
    (["ssh", "-R8080:localhost:80", "host"], "/usr/bin/ssh", "8080:localhost:80"),
    (["ssh", "-NR8080:localhost:80", "host"], "/usr/bin/ssh", "8080:localhost:80"),
    (["ssh", "-R", "0.0.0.0:8080:localhost:80", "host"], "/usr/bin/ssh", "0.0.0.0:8080:localhost:80"),
    (["ssh", "-R", "[::]:8080:[::1]:80", "host"], "/usr/bin/ssh", "[::]:8080:[::1]:80"),
    (["ssh", "-R", "1080", "host"], "/usr/bin/ssh", "1080"),  # reverse dynamic (SOCKS) forward
    (["ssh", "-R", "/tmp/agent.sock:localhost:22", "host"], "/usr/bin/ssh", "/tmp/agent.sock:localhost:22"),
    (["ssh", "-o", "RemoteForward=8080 localhost:80", "host"], "/usr/bin/ssh", "8080 localhost:80"),
    (["ssh", "-o", "RemoteForward 8080 localhost:80", "host"], "/usr/bin/ssh", "8080 localhost:80"),
    (["ssh", "-oRemoteForward=8080 localhost:80", "host"], "/usr/bin/ssh", "8080 localhost:80"),
    (["ssh", "-oRemoteForward 8080 localhost:80", "host"], "/usr/bin/ssh", "8080 localhost:80"),
    (["ssh", "-o", "remoteforward = 8080 localhost:80", "host"], "/usr/bin/ssh", "8080 localhost:80"),
    (["ssh", "-o", "REMOTEFORWARD\t8080\tlocalhost:80", "host"], "/usr/bin/ssh", "8080\tlocalhost:80"),
    (["ssh", "-p", "2222", "-i", "/root/.ssh/id_ed25519", "-o", "StrictHostKeyChecking=no", "-R",
      "9999:localhost:22", "-N", "user@198.51.100.9"], "/usr/bin/ssh", "9999:localhost:22"),
    (["ssh", "user@host", "-R", "8080:localhost:80"], "/usr/bin/ssh", "8080:localhost:80"),  # after the host
    (["ssh", "-4", "-C", "-T", "-N", "-R", "8080:localhost:80", "host"], "/usr/bin/ssh", "8080:localhost:80"),
    (["ssh", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=30", "-R", "8:l:8", "h"], "/usr/bin/ssh",
     "8:l:8"),
    (["ssh", "-O", "forward", "-R", "8080:localhost:80", "host"], "/usr/bin/ssh", "8080:localhost:80"),
    (["/usr/bin/ssh", "-R", "8080:localhost:80", "host"], None, "8080:localhost:80"),  # exe unknown: argv[0]
    (["./tool", "-R", "8080:localhost:80", "host"], "/tmp/.x/ssh", "8080:localhost:80"),  # renamed argv[0]
    (["autossh", "-M", "0", "-f", "-N", "-R", "8080:localhost:80", "host"], "/usr/lib/autossh/autossh",
     "8080:localhost:80"),
    (["autossh", "-M", "0", "-NR", "2222:localhost:22", "host"], "/usr/bin/dash", "2222:localhost:22"),
    (["autossh", "-M0", "-oremoteforward=2222 localhost:22", "host"], "/usr/lib/autossh/autossh", "2222 localhost:22"),
    (["autossh", "-M", "20000:7", "-fNR2:l:2", "host"], "/usr/lib/autossh/autossh", "2:l:2"),  # echo port: no -R
    (["autossh", "-M", "20000", "host"], "/usr/lib/autossh/autossh", "20000:127.0.0.1:20001"),  # the monitor loop
    (["dbclient", "host", "-R", "8080:localhost:80"], "/usr/bin/dbclient", "8080:localhost:80"),  # after the host
    (["dbclient", "-NR8080:localhost:80", "u@a/22,u@b"], "/usr/bin/dbclient", "8080:localhost:80"),
    (["plink", "host", "-R", "8080:localhost:80", "-N"], "/usr/bin/plink", "8080:localhost:80"),
    (["ssh", "-R", "127.0.0.1:1080", "host"], "/usr/bin/ssh", "127.0.0.1:1080"),  # reverse SOCKS on an address
    (["ssh", "-o", "RemoteForward 1080", "host"], "/usr/bin/ssh", "1080"),  # reverse SOCKS by -o
    (["ssh", "-o", 'RemoteForward "8080" "localhost:80"', "host"], "/usr/bin/ssh", '"8080" "localhost:80"'),
    (["ssh", "-o", "  RemoteForward=8080 localhost:80  ", "host"], "/usr/bin/ssh", "8080 localhost:80"),
    (["ssh", "-CqTnNR", "8080:localhost:80", "host"], "/usr/bin/ssh", "8080:localhost:80"),
    (["ssh", "ssh://root@203.0.113.5:2222", "-R", "8080:localhost:80"], "/usr/bin/ssh", "8080:localhost:80"),
    (["ssh", "-W", "h:22", "-o", "ClearAllForwardings=no", "-R", "1:l:1", "j"], "/usr/bin/ssh", "1:l:1"),
    (["dbclient", "-N", "-R", "8080:localhost:80", "host"], "/usr/bin/dbclient", "8080:localhost:80"),
    # a wrapper script, as the kernel lays out its argv: interpreter, script path, then the arguments
    (["/bin/sh", "/usr/local/bin/dbclient", "-N", "-R", "8080:localhost:80", "host"], "/usr/bin/dash",
     "8080:localhost:80"),
    (["/bin/bash", "-e", "/usr/bin/autossh", "-M", "0", "-NR", "2222:localhost:22", "host"], "/usr/bin/bash",
     "2222:localhost:22"),
    (["dropbearmulti", "dbclient", "-y", "-N", "-R", "8080:localhost:80", "host"], "/usr/bin/dropbearmulti",
     "8080:localhost:80"),
    (["plink", "-ssh", "-R", "8080:localhost:80", "-P", "22", "host"], "/usr/bin/plink", "8080:localhost:80"),
]

NOT_REVERSE = [
    (["ssh", "host", "uptime"], "/usr/bin/ssh"),
    (["ssh", "-L", "8080:localhost:80", "host"], "/usr/bin/ssh"),
    (["ssh", "-D", "1080", "host"], "/usr/bin/ssh"),
    (["ssh", "-W", "%h:%p", "jump"], "/usr/bin/ssh"),
    (["ssh", "host", "echo", "-R", "8080:x:80"], "/usr/bin/ssh"),  # -R belongs to the remote command
    (["ssh", "--", "host", "-R", "8080:x:80"], "/usr/bin/ssh"),
    (["ssh", "-p", "22R", "host"], "/usr/bin/ssh"),  # R is the port's value
    (["ssh", "-l", "R", "host"], "/usr/bin/ssh"),
    (["ssh", "-i", "/keys/-R", "host"], "/usr/bin/ssh"),
    (["ssh", "-E", "/tmp/-R.log", "host"], "/usr/bin/ssh"),
    (["ssh", "-o", "RemoteCommand=tmux -R", "host"], "/usr/bin/ssh"),
    (["ssh", "-o", "ProxyCommand ssh -R 1:x:2 jump", "host"], "/usr/bin/ssh"),  # the inner ssh is its own exec
    (["ssh", "-oRemoteForward=", "host"], "/usr/bin/ssh"),  # no spec: ssh refuses it
    (["ssh", "host", "-R"], "/usr/bin/ssh"),  # -R without a value: ssh refuses to run
    (["ssh", "-o", "SendEnv=GIT_PROTOCOL", "git@github.com", "git-upload-pack 'org/repo.git'"], "/usr/bin/ssh"),
    (["sshd", "-D", "-R"], "/usr/sbin/sshd"),  # OpenSSH re-exec flag (elastic/detection-rules #4857)
    (["/usr/sbin/sshd", "-D", "-e", "-R"], "/usr/sbin/sshd"),
    (["scp", "-R", "a:/x", "b:/y"], "/usr/bin/scp"),
    (["rsync", "-R", "-e", "ssh", "src/", "host:dst/"], "/usr/bin/rsync"),
    (["grep", "-R", "8080:localhost:80", "."], "/usr/bin/grep"),
    (["dropbearmulti", "dropbear", "-R", "-p", "2222"], "/usr/bin/dropbearmulti"),  # the server: -R makes host keys
    (["ssh", "-o", "RemoteForward=8080:localhost:80", "host"], "/usr/bin/ssh"),  # one word, 3 fields: ssh refuses it
    (["ssh", "-R", "a:b:c:d:e", "host"], "/usr/bin/ssh"),  # five fields: Bad remote forwarding specification
    (["ssh", "-R", "", "host"], "/usr/bin/ssh"),  # empty: refused
    (["ssh", "-W", "h:22", "-R", "1:l:1", "jump"], "/usr/bin/ssh"),  # -W makes ClearAllForwardings default to yes
    (["ssh", "-oClearAllForwardings=yes", "-R", "1:l:1", "host"], "/usr/bin/ssh"),
    (["ssh", "-O", "cancel", "-R", "1:l:1", "host"], "/usr/bin/ssh"),  # removes a forward from a master
    (["ssh", "-O", "exit", "-R", "1:l:1", "host"], "/usr/bin/ssh"),
    (["ssh", "-G", "-R", "1:l:1", "host"], "/usr/bin/ssh"),  # prints the configuration and exits
    (["ssh", "-V", "-R", "1:l:1", "host"], "/usr/bin/ssh"),
    (["ssh", "-R", "1:l:1", "host", "-p"], "/usr/bin/ssh"),  # -p without its value: usage, exit
    (["ssh", "-o", "SetEnv X=RemoteForward", "host"], "/usr/bin/ssh"),  # a value that mentions the key
    (["ssh", "-o", "RemoteForward", "host"], "/usr/bin/ssh"),  # no argument after keyword
    (["autossh", "-M", "0", "host", "tail", "-R", "1:l:1"], "/usr/lib/autossh/autossh"),
    (["autossh", "-M", "20000:7", "host"], "/usr/lib/autossh/autossh"),  # echo service: local half only
    (["dbclient", "-R", "1080", "host"], "/usr/bin/dbclient"),  # dropbear has no reverse SOCKS: it exits
    (["dbclient", "-V", "-R", "1:l:1", "host"], "/usr/bin/dbclient"),
    (["plink", "host", "cmd", "-R", "1:l:1"], "/usr/bin/plink"),  # the remote command
    (["plink", "-R"], "/usr/bin/plink"),
    (["/usr/bin/python3", "/usr/bin/sshuttle", "-r", "u@h", "0/0"], "/usr/bin/python3.11"),  # tunnel.ssh_forward's
]


@pytest.mark.parametrize(("argv", "exe", "spec"), REVERSE, ids=[" ".join(r[0])[:60] for r in REVERSE])
def test_remote_forward(argv: list[str], exe: str | None, spec: str) -> None:
    """Every spelling of a remote forward raises one alert that quotes the forward."""
    script = next((a for a in argv[1:3] if a.endswith(("/dbclient", "/autossh"))), None)
    findings = DETECT(exec_event(argv, exe=exe, **({"filename": script} if script else {})), STATE)
    assert len(findings) == 1
    assert findings[0].rule.id == "tunnel.ssh_reverse"
    assert [f["spec"] for f in findings[0].evidence["forwards"]] == [spec]


@pytest.mark.parametrize(("argv", "exe"), NOT_REVERSE, ids=[" ".join(n[0])[:60] for n in NOT_REVERSE])
def test_no_remote_forward(argv: list[str], exe: str) -> None:
    """Other SSH use, sshd's re-exec and -R flags of other tools raise nothing."""
    assert DETECT(exec_event(argv, exe=exe), STATE) == []


def test_two_forwards_in_one_command() -> None:
    """Each forward of one command is quoted as written, with its kind; the finding is high."""
    argv = ["ssh", "-R", "1:l:1", "-oRemoteForward=2", "-oPermitRemoteOpen=db:5432 any", "host"]
    (finding,) = DETECT(exec_event(argv, exe="/usr/bin/ssh"), STATE)
    assert finding.evidence["forwards"] == [
        {"argv": "-R 1:l:1", "spec": "1:l:1", "kind": "remote"},
        {"argv": "-oRemoteForward=2", "spec": "2", "kind": "remote_dynamic"},
    ]
    assert finding.evidence["permit_remote_open"] == ["db:5432", "any"]
    assert finding.evidence["forwards_total"] == 2 and finding.evidence["client"] == "ssh"
    assert finding.level == "high" and finding.evidence["signature"] == "ssh remote forward"


def test_autossh_monitor_is_quoted_as_the_ssh_child_will_get_it() -> None:
    """autossh -M 20000 gives ssh -R 20000:127.0.0.1:20001: quoted under -M, with the forwards it passes on."""
    argv = ["autossh", "-M", "20000", "-fNR", "2:l:2", "host"]
    (finding,) = DETECT(exec_event(argv, exe="/usr/lib/autossh/autossh"), STATE)
    assert finding.evidence["forwards"] == [
        {"argv": "-M 20000", "spec": "20000:127.0.0.1:20001", "kind": "remote"},
        {"argv": "-NR 2:l:2", "spec": "2:l:2", "kind": "remote"},  # as autossh passes it on: its -f stripped
    ]


@pytest.mark.parametrize(
    ("argv", "environ", "forwards"),
    [
        (["autossh", "-N", "host"], ("AUTOSSH_PORT=20000",), [("AUTOSSH_PORT=20000", "20000:127.0.0.1:20001")]),
        (
            ["autossh", "-M", "0", "-N", "host"],
            ("AUTOSSH_GATETIME=0", "AUTOSSH_PORT=30000"),
            [("AUTOSSH_PORT=30000", "30000:127.0.0.1:30001")],
        ),
        (["autossh", "-M", "20000", "-N", "host"], ("AUTOSSH_PORT=0",), []),  # the environment wins: monitoring off
        (["autossh", "-M", "20000", "-N", "host"], ("AUTOSSH_PORT=",), [("-M 20000", "20000:127.0.0.1:20001")]),
        (["autossh", "-N", "host"], ("AUTOSSH_PORT=20000:7",), []),  # an echo port: the local half only
    ],
)
def test_autossh_port_from_the_environment(
    argv: list[str], environ: tuple[str, ...], forwards: list[tuple[str, str]]
) -> None:
    """AUTOSSH_PORT sets autossh's monitor loop and overrides -M (an empty one does not), as autossh(1) says."""
    event = dataclasses.replace(exec_event(argv, exe="/usr/lib/autossh/autossh"), environ=environ)
    findings = DETECT(event, STATE)
    got = [(f["argv"], f["spec"]) for f in findings[0].evidence["forwards"]] if findings else []
    assert got == forwards


def test_thousands_of_forwards_quote_the_first_32() -> None:
    """A command line with 5000 forwards raises one finding quoting 32 and counting all."""
    (finding,) = DETECT(exec_event(["ssh", *["-R", "1:l:1"] * 5000, "host"], exe="/usr/bin/ssh"), STATE)
    assert len(finding.evidence["forwards"]) == 32 and finding.evidence["forwards_total"] == 5000


def test_proxy_command_is_evidence() -> None:
    """The first ProxyCommand rides along as evidence (a tool it runs is its own exec, judged by its own rule)."""
    argv = ["ssh", "-o", "ProxyCommand=socat - PROXY:proxy:%h:%p", "-o", "ProxyCommand nc x 1", "-R", "1:l:1", "h"]
    (finding,) = DETECT(exec_event(argv, exe="/usr/bin/ssh"), STATE)
    assert finding.evidence["proxy_command"] == "socat - PROXY:proxy:%h:%p"


def _event(argv: list[str], exe: str | None) -> ExecEvent:
    """The exec as test_remote_forward builds it: a wrapper script's path is the exec'd filename."""
    script = next((a for a in argv[1:3] if a.endswith(("/dbclient", "/autossh"))), None)
    return exec_event(argv, exe=exe, **({"filename": script} if script else {}))


def _forwards(event: ExecEvent) -> list[dict[str, str]]:
    findings = DETECT(event, STATE)
    assert len(findings) <= 1
    return findings[0].evidence["forwards"] if findings else []


# Flags and options of every client in the table that say nothing about forwards (-l takes a value in each).
UNRELATED = st.lists(st.sampled_from([["-v"], ["-4"], ["-C"], ["-l", "root"], ["-q"], ["-T"]]), min_size=1, max_size=4)
CASES = [(argv, exe) for argv, exe, _spec in REVERSE] + NOT_REVERSE


@pytest.mark.parametrize(("argv", "exe"), CASES, ids=[" ".join(c[0])[:60] for c in CASES])
@settings(max_examples=15)  # per command line: a few hundred insertions in all, of a small space
@given(UNRELATED)
def test_unrelated_flags_before_the_host_change_nothing(
    argv: list[str], exe: str | None, flags: list[list[str]]
) -> None:
    """-v, -4, -C, -l root inserted right after the client's name leave the forwards found exactly as they were."""
    before = _event(argv, exe)
    found = client_argv(before)
    at = len(argv) - len(found[1]) + 1 if found else 1  # after the client's own argv[0]
    extra = [word for flag in flags for word in flag]
    after = _event([*argv[:at], *extra, *argv[at:]], exe)
    assert _forwards(after) == _forwards(before)


CLIENT_EXES = ["/usr/bin/ssh", "/usr/lib/autossh/autossh", "/usr/bin/dbclient", "/usr/bin/plink"]
# Words a command line is made of, the spellings of a forward among them, and anything else.
WORDS = st.one_of(
    st.sampled_from(["-o", "-L", "-D", "-W", "-J", "-N", "-f", "-p", "22", "-l", "-i", "--", "-", "host", "user@host",
                     "8080:localhost:80", "LocalForward=1 l:1", "-oLocalForward 1 l:1", "-oProxyJump=j", "r", "-r"]),
    st.text(max_size=20),
)


def _asks_for_remote_forward(words: list[str]) -> bool:
    return any("R" in w or "remoteforward" in w.lower() for w in words)


@settings(max_examples=300)  # cheap, and a forward spelled with another letter hides among many words
@given(st.sampled_from(CLIENT_EXES), st.lists(WORDS, max_size=25).filter(lambda ws: not _asks_for_remote_forward(ws)))
def test_argv_without_an_r_or_remoteforward_finds_nothing(exe: str, words: list[str]) -> None:
    """Without an 'R' letter or 'RemoteForward' anywhere in argv, no client is found to forward remotely."""
    assert _forwards(exec_event([exe.rsplit("/", 1)[-1], *words], exe=exe)) == []


FORWARD_WORDS = st.sampled_from(["-R", "-R1:l:1", "-NR", "-oRemoteForward=2 l:2", "RemoteForward 3 l:3"])


@given(st.sampled_from(CLIENT_EXES), st.lists(st.one_of(WORDS, FORWARD_WORDS), max_size=25))
def test_any_argv_never_raises(exe: str, argv: list[str]) -> None:
    """Hostile or random argv never crashes the detector; each forward it quotes is written in argv as quoted."""
    words = [exe.rsplit("/", 1)[-1], *argv]
    for forward in _forwards(exec_event(words, exe=exe)):
        spelling, spec = forward["argv"], forward["spec"]
        if exe.endswith("autossh"):  # quoted as autossh hands it to ssh: -f stripped, "--" and empty words dropped
            assert spec in " ".join(words)
        else:
            assert spelling in words or any(f"{a} {b}" == spelling for a, b in pairwise(words))
        assert spec in spelling
        assert _asks_for_remote_forward([spelling])


def test_an_empty_remote_forward_is_refused_as_ssh_refuses_it() -> None:
    """ssh -R '' exits with "Bad remote forwarding specification", as -oRemoteForward= does: nothing to report."""
    assert DETECT(exec_event(["ssh", "-R", "", "host"], exe="/usr/bin/ssh"), STATE) == []


@pytest.mark.parametrize(
    ("exe", "args", "client"),
    [
        ("/usr/bin/ssh", ("ssh", "host"), True),
        (None, ("/usr/bin/autossh", "-M", "0", "host"), True),
        ("/usr/bin/dropbearmulti", ("dropbearmulti", "dbclient", "host"), True),
        ("/usr/bin/dropbearmulti", ("dropbearmulti", "dropbear", "-R"), False),  # the server
        ("/usr/bin/python3.11", ("python3", "paramiko_client.py"), False),
        ("/usr/sbin/sshd", ("sshd", "-D"), False),
        ("/usr/bin/plink", ("plink", "host"), True),
        ("/usr/bin/python3.11", ("/usr/bin/python3", "/usr/bin/sshuttle", "-r", "h", "0/0"), False),  # runs ssh
        ("/usr/bin/sshuttle", ("sshuttle", "-r", "h", "0/0"), False),
        (None, (), False),
    ],
)
def test_is_ssh_client(exe: str | None, args: tuple[str, ...], client: bool) -> None:
    """A process is an SSH client by its exe or argv[0] (or a multi-call binary's argv[1]), nothing else."""
    from collector.detect.tunnel.ssh import is_ssh_client

    assert is_ssh_client(exe, args) is client
