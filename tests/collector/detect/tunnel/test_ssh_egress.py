# SPDX-License-Identifier: Apache-2.0
"""tunnel.ssh_egress: SSH on an outbound connection from what is not an ssh client, or to a port not 22."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.detect import Finding, Severity, State
from collector.detect.protocols.ssh import parse
from collector.detect.tunnel.ssh_egress import RULE, SshEgressDetector
from collector.enrich.process import ProcessTable
from probes.events import PayloadEvent
from tests.factories import connect_event, exec_event, payload_event, proc_event

DETECT = SshEgressDetector().detect
OPENSSH = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n"
PARAMIKO = b"SSH-2.0-paramiko_2.12.0\r\n"


def _run(args: list[str], exe: str | None, data: bytes, dport: int, **kw: Any) -> list[Finding]:
    """The detector's findings on ``data`` sent to ``dport`` by a process exec'd as ``args``."""
    table = ProcessTable()
    table.apply(exec_event(args, exe, pid=4242))
    return DETECT(payload_event(data, daddr="203.0.113.5", dport=dport, pid=4242, **kw), State(table))


ALERTS = [
    # (argv, exe, first bytes, port, why it is high)
    (["python3", "tunnel.py"], "/usr/bin/python3.11", PARAMIKO, 22, "paramiko to 22"),
    (["python3", "-m", "asyncssh_client"], "/usr/bin/python3.11", b"SSH-2.0-AsyncSSH_2.10.1\r\n", 22, "asyncssh"),
    (["/opt/agent/bin/agent", "connect"], "/opt/agent/bin/agent", b"SSH-2.0-Go\r\n", 443, "Go to 443"),
    (["./x"], "/tmp/.cache/x", b"SSH-2.0-libssh_0.10.4\r\n", 22, "libssh in a dropped binary"),
    (["java", "-jar", "jenkins-agent.jar"], "/usr/lib/jvm/bin/java", b"SSH-2.0-JSCH-0.1.55\r\n", 22, "JSch"),
    (["/tmp/sync"], "/tmp/sync", OPENSSH, 22, "ssh copied under another name"),
    (["kworker"], "/dev/shm/kworker", OPENSSH, 2222, "renamed ssh to 2222"),
    (["ssh", "-p", "2222", "host"], "/usr/bin/ssh", OPENSSH, 2222, "real ssh to a port not 22"),
    (["ssh", "-p", "443", "host"], "/usr/bin/ssh", OPENSSH, 443, "real ssh to 443"),
    (["dbclient", "-p", "8022", "host"], "/usr/bin/dbclient", b"SSH-2.0-dropbear_2022.83\r\n", 8022, "dbclient"),
    # argv[0] says ssh (exec -a ssh python3 ...), the bytes say paramiko
    (["ssh", "tunnel.py"], "/usr/bin/python3.11", PARAMIKO, 22, "named ssh, speaks paramiko"),
    (["/usr/bin/ssh"], "/tmp/ssh", b"SSH-2.0-Go\r\n", 22, "a Go binary named ssh"),
    (["sshd", "-i"], "/usr/sbin/sshd", b"SSH-2.0-OpenSSH_9.2p1\r\n", 4444, "sshd dialling out (reverse connect)"),
    (["python3", "t.py"], "/usr/bin/python3.11", b"SSH-2.0-paramiko_2.12.0 " + b"c" * 300, 22, "cut at 256"),
    (["python3", "t.py"], "/usr/bin/python3.11", b"SSH-1.99-paramiko_2.12.0\r\n", 22, "1.99"),
    (["python3", "t.py"], "/usr/bin/python3.11", b"SSH-2.5-paramiko_2.12.0\n", 22, "2.5 and LF alone"),
]


@pytest.mark.parametrize(("args", "exe", "data", "dport", "why"), ALERTS, ids=[a[4] for a in ALERTS])
def test_alerts_high(args: list[str], exe: str, data: bytes, dport: int, why: str) -> None:
    """SSH from a process that is not an ssh client, or to a port not 22, is one high finding of this rule."""
    findings = _run(args, exe, data, dport)
    assert len(findings) == 1, why
    assert findings[0].rule is RULE and findings[0].level is Severity.HIGH


QUIET = [
    # (argv, exe, first bytes, port, why)
    (["ssh", "host", "uptime"], "/usr/bin/ssh", OPENSSH, 22, "plain ssh to 22"),
    (["ssh", "-R", "8080:localhost:80", "host"], "/usr/bin/ssh", OPENSSH, 22, "ssh -R to 22: the argv rule's"),
    (["/usr/bin/ssh", "-x", "git@github.com", "git-upload-pack 'o/r.git'"], "/usr/bin/ssh", OPENSSH, 22, "git"),
    (["dbclient", "host"], "/usr/bin/dbclient", b"SSH-2.0-dropbear_2022.83\r\n", 22, "dbclient to 22"),
    (["dropbearmulti", "dbclient", "host"], "/usr/bin/dropbearmulti", b"SSH-2.0-dropbear_2022.83\r\n", 22, "multi"),
    (["plink", "-ssh", "host"], "/usr/bin/plink", b"SSH-2.0-PuTTY_Release_0.78\r\n", 22, "plink to 22"),
    (["ssh", "host"], "/usr/bin/ssh", b"SSH-2.0-OpenSSH_for_Windows_8.1\r\n", 22, "OpenSSH for Windows"),
    (["python3", "x.py"], "/usr/bin/python3.11", b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 22, "HTTP to 22"),
    (["curl", "https://h"], "/usr/bin/curl", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 443, "TLS"),
    (["python3", "x.py"], "/usr/bin/python3.11", b"POST / HTTP/1.1\r\n\r\nSSH-2.0-Go\r\n", 80, "SSH-2.0 later"),
    (["nmap", "-sV", "h"], "/usr/bin/nmap", b"SSH-1.5-Nmap-SSH1-Hostkey\r\n", 22, "SSH-1.5"),
    (["python3", "x.py"], "/usr/bin/python3.11", b"SSH-2.", 22, "cut before the dash"),
]


@pytest.mark.parametrize(("args", "exe", "data", "dport", "why"), QUIET, ids=[q[4] for q in QUIET])
def test_quiet(args: list[str], exe: str, data: bytes, dport: int, why: str) -> None:
    """An ssh client binary speaking its own protocol to port 22, and what is not SSH, raise nothing."""
    assert _run(args, exe, data, dport) == [], why


def test_evidence_and_summary() -> None:
    """The finding names the process, destination and implementation, and keeps what matched."""
    [finding] = _run(["python3", "tunnel.py"], "/usr/bin/python3.11", PARAMIKO, 443, comm="python3")
    assert finding.summary == (
        "python3 (pid 4242) speaks SSH to 203.0.113.5:443 (paramiko_2.12.0): not an SSH client binary"
    )
    assert finding.evidence == {
        "signature": "ssh identification SSH-2.0",
        "identification": {"protoversion": "2.0", "software": "paramiko_2.12.0", "comments": None, "complete": True},
        "ssh_client": False,
        "payload_head": "SSH-2.0-paramiko_2.12.0\r\n",
        "payload_truncated": False,
        "syscall": "write",
    }


def test_reasons_in_the_summary() -> None:
    """The summary says why: an ssh client to a port not 22, or a process named ssh sending another implementation."""
    [port] = _run(["ssh", "-p", "2222", "h"], "/usr/bin/ssh", OPENSSH, 2222, comm="ssh")
    assert port.summary.endswith("(OpenSSH_9.2p1): an SSH client on a port other than 22")
    assert port.evidence["ssh_client"] is True
    assert port.evidence["identification"]["comments"] == "Debian-2+deb12u10"
    [named] = _run(["ssh", "t.py"], "/usr/bin/python3.11", PARAMIKO, 22, comm="ssh")
    assert named.summary.endswith("named as an SSH client, but paramiko_2.12.0 is not one's")
    assert named.evidence["ssh_client"] is False


def test_ipv6_destination_and_cut_payload() -> None:
    """An IPv6 destination is bracketed; a cut payload says so in the evidence."""
    table = ProcessTable()
    table.apply(exec_event(["python3", "t.py"], "/usr/bin/python3.11", pid=7))
    data = b"SSH-2.0-paramiko_2.12.0 " + b"c" * 232
    event = payload_event(data, daddr="2001:db8::5", dport=22, pid=7, comm="python3")
    event = dataclasses.replace(event, family="ipv6", len_raw=400)
    [finding] = DETECT(event, State(table))
    assert "to [2001:db8::5]:22 (paramiko_2.12.0)" in finding.summary
    assert finding.evidence["payload_truncated"] is True
    assert finding.evidence["identification"]["complete"] is False


def test_unknown_process_is_not_an_ssh_client() -> None:
    """A sender the process table does not know cannot be vouched for: even OpenSSH to port 22 is high."""
    [finding] = DETECT(payload_event(OPENSSH, dport=22, pid=999), State(ProcessTable()))
    assert finding.level is Severity.HIGH and finding.evidence["ssh_client"] is False


def test_process_from_proc_scan() -> None:
    """A process seeded from /proc (a proc event, not an exec) is judged by its exe and argv the same way."""
    table = ProcessTable()
    table.apply(proc_event(31, 1, args=("ssh", "host"), exe="/usr/bin/ssh"))
    table.apply(proc_event(32, 1, args=("python3", "t.py"), exe="/usr/bin/python3.11"))
    assert DETECT(payload_event(OPENSSH, dport=22, pid=31), State(table)) == []
    assert len(DETECT(payload_event(PARAMIKO, dport=22, pid=32), State(table))) == 1


def test_other_kinds_are_ignored() -> None:
    """Only payload events are read."""
    assert DETECT(connect_event(dport=22), State(ProcessTable())) == []
    assert RULE.consumes == frozenset({PayloadEvent.KIND})


@given(st.binary(max_size=256), st.integers(0, 65535))
def test_findings_match_the_parser(data: bytes, dport: int) -> None:
    """From a non-ssh process a finding is raised exactly when the bytes start with an SSH identification."""
    findings = _run(["python3", "x.py"], "/usr/bin/python3.11", data, dport)
    assert len(findings) == (parse(data) is not None)
    for f in findings:
        assert f.evidence["payload_head"] == data.decode("utf-8", "backslashreplace")
