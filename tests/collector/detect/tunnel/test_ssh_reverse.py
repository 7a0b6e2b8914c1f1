# SPDX-License-Identifier: Apache-2.0
"""tunnel.ssh_reverse on real command lines, in every spelling of a remote forward."""

from __future__ import annotations

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
    (["autossh", "-M", "20000", "-NR", "2222:localhost:22", "host"], "/usr/bin/dash", "2222:localhost:22"),
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
    """Each forward of one command is quoted as written."""
    argv = ["ssh", "-R", "1:l:1", "-oRemoteForward=2 l:2", "host"]
    (finding,) = DETECT(exec_event(argv, exe="/usr/bin/ssh"), STATE)
    assert finding.evidence["forwards"] == [
        {"argv": "-R 1:l:1", "spec": "1:l:1"},
        {"argv": "-oRemoteForward=2 l:2", "spec": "2 l:2"},
    ]


def _event(argv: list[str], exe: str | None) -> ExecEvent:
    """The exec as test_remote_forward builds it: a wrapper script's path is the exec'd filename."""
    script = next((a for a in argv[1:3] if a.endswith(("/dbclient", "/autossh"))), None)
    return exec_event(argv, exe=exe, **({"filename": script} if script else {}))


def _forwards(event: ExecEvent) -> list[dict[str, str]]:
    findings = DETECT(event, STATE)
    assert len(findings) <= 1
    return findings[0].evidence["forwards"] if findings else []


# Flags and options of every client in the table that say nothing about forwards (-p takes a value).
UNRELATED = st.lists(st.sampled_from([["-v"], ["-4"], ["-C"], ["-p", "22"], ["-q"], ["-T"]]), min_size=1, max_size=4)
CASES = [(argv, exe) for argv, exe, _spec in REVERSE] + NOT_REVERSE


@pytest.mark.parametrize(("argv", "exe"), CASES, ids=[" ".join(c[0])[:60] for c in CASES])
@settings(max_examples=15)  # per command line: a few hundred insertions in all, of a small space
@given(UNRELATED)
def test_unrelated_flags_before_the_host_change_nothing(
    argv: list[str], exe: str | None, flags: list[list[str]]
) -> None:
    """-v, -4, -C, -p 22 inserted right after the client's name leave the forwards found exactly as they were."""
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
        assert spelling in words or any(f"{a} {b}" == spelling for a, b in pairwise(words))
        assert spec in spelling
        assert _asks_for_remote_forward([spelling])


EMPTY_SPEC_IS_QUOTED = "an empty -R value is quoted as a forward, though ssh refuses it (Bad remote forwarding)"


@pytest.mark.xfail(reason=EMPTY_SPEC_IS_QUOTED, strict=True)
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
        (None, (), False),
    ],
)
def test_is_ssh_client(exe: str | None, args: tuple[str, ...], client: bool) -> None:
    """A process is an SSH client by its exe or argv[0] (or a multi-call binary's argv[1]), nothing else."""
    from collector.detect.tunnel.ssh import is_ssh_client

    assert is_ssh_client(exe, args) is client
