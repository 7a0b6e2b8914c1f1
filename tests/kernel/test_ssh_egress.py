# SPDX-License-Identifier: Apache-2.0
"""tunnel.ssh_egress against real clients and Debian's sshd: paramiko, a copied ssh binary and plain ssh raise it;
ssh to port 22 (an sshd in a network namespace the test makes) does not. And the parser agrees with sshd."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.detect.protocols.ssh import parse
from collector.source.recording import Replay
from probes.events import PayloadEvent
from tests.collector.detect.protocols.test_ssh import NOT_SSH, OPENSSH_ACCEPTS, REAL
from tests.kernel.e2e import Agent, NetnsSshd, Sshd

pytestmark = pytest.mark.kernel

RULE = "tunnel.ssh_egress"

PARAMIKO_CLIENT = """\
import json, os, sys
import paramiko
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
client.connect("127.0.0.1", port=int(sys.argv[1]), username="root", key_filename=sys.argv[2],
               look_for_keys=False, allow_agent=False, timeout=10)
_, out, _ = client.exec_command("echo ok")
print(json.dumps({"pid": os.getpid(), "out": out.read().decode().strip(), "version": paramiko.__version__}))
client.close()
"""


def _netns_sshd(workdir: Path, name: str) -> NetnsSshd:
    d = workdir / f"netns-{name}"
    d.mkdir()
    return NetnsSshd(d, name)


@pytest.fixture(scope="module")
def sshd22(workdir: Path) -> Iterator[NetnsSshd]:
    server = _netns_sshd(workdir, "ssh22")
    yield server
    server.close()


def _under_sh(argv: list[str]) -> tuple[subprocess.Popen[str], int]:
    """Start ``argv`` as the child of a real sh; returns sh and the child's pid."""
    sh = subprocess.Popen(
        ["sh", "-c", '"$@" & echo $!; wait $!', "sh", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert sh.stdout is not None
    return sh, int(sh.stdout.readline())


def _finish(sh: subprocess.Popen[str]) -> str:
    out, err = sh.communicate(timeout=30)
    assert sh.returncode == 0, err
    return out


def _alert_for(agent: Agent, pid: int) -> dict[str, Any]:
    found = agent.wait_alert(lambda a: a["rule"] == RULE and a["process"]["pid"] == pid, 10)
    assert found is not None, agent.log_path.read_text()[-3000:]
    return found[0]


def _assert_lineage(alert: dict[str, Any], sh_pid: int) -> None:
    assert alert["severity"] == "high"
    assert alert["ancestors"][0]["pid"] == sh_pid and alert["ancestors"][0]["comm"] == "sh"
    assert alert["ancestors"][1]["pid"] == os.getpid()  # the test that started sh


def test_paramiko_to_port_22(agent: Agent, sshd22: NetnsSshd, workdir: Path) -> None:
    """A paramiko client that logs in to sshd on port 22 is high: a library, not an ssh binary; named by pid."""
    script = workdir / "paramiko_client.py"
    script.write_text(PARAMIKO_CLIENT)
    sh, pid = _under_sh(sshd22.inside(sys.executable, str(script), "22", str(sshd22.key)))
    printed = json.loads(_finish(sh))
    assert printed["pid"] == pid and printed["out"] == "ok"  # it really logged in and ran a command
    alert = _alert_for(agent, pid)
    _assert_lineage(alert, sh.pid)
    assert alert["process"]["exe"] == os.path.realpath(sys.executable)
    assert alert["network"]["daddr"] == "127.0.0.1" and alert["network"]["dport"] == 22
    ident = alert["evidence"]["identification"]
    assert ident == {
        "protoversion": "2.0",
        "software": f"paramiko_{printed['version']}",
        "comments": None,
        "complete": True,
    }
    assert alert["evidence"]["ssh_client"] is False
    assert "not an SSH client binary" in alert["summary"]


def test_copied_ssh_binary(agent: Agent, sshd: Sshd, workdir: Path) -> None:
    """/usr/bin/ssh copied under another name is not an ssh client binary; it is high, with its OpenSSH version."""
    copy = workdir / "sync-helper"
    shutil.copy2("/usr/bin/ssh", copy)
    argv = [str(copy), *sshd.client_argv("root@127.0.0.1", "true")[1:]]
    sh, pid = _under_sh(argv)
    _finish(sh)
    alert = _alert_for(agent, pid)
    _assert_lineage(alert, sh.pid)
    assert alert["process"]["exe"] == str(copy) and alert["network"]["dport"] == sshd.port
    assert alert["evidence"]["identification"]["software"].startswith("OpenSSH_")
    assert alert["evidence"]["ssh_client"] is False


def test_plain_ssh_to_a_port_not_22(agent: Agent, sshd: Sshd) -> None:
    """The real ssh to sshd on its non-22 loopback port is high because of the port."""
    sh, pid = _under_sh(sshd.client_argv("root@127.0.0.1", "true"))
    _finish(sh)
    alert = _alert_for(agent, pid)
    _assert_lineage(alert, sh.pid)
    assert alert["process"]["exe"] == "/usr/bin/ssh" and alert["network"]["dport"] == sshd.port
    assert alert["evidence"]["ssh_client"] is True
    assert alert["summary"].endswith("an SSH client on a port other than 22")


def test_ssh_to_port_22_is_quiet(agent: Agent, sshd22: NetnsSshd) -> None:
    """The real ssh to sshd on port 22 raises nothing, though its identification was seen and judged."""
    sh, pid = _under_sh(sshd22.client_argv("root@127.0.0.1", "true"))
    _finish(sh)
    deadline = time.monotonic() + 10
    head = None
    while head is None and time.monotonic() < deadline:
        time.sleep(0.2)  # the recording is flushed after each batch the agent handles
        heads = [e for e in Replay(agent.record_path) if isinstance(e, PayloadEvent) and e.tgid == pid]
        head = heads[0] if heads else None
    assert head is not None and head.dport == 22 and head.data.startswith(b"SSH-2.0-OpenSSH_")
    time.sleep(1.0)
    assert [a for a in agent.alerts() if a["process"]["pid"] == pid] == []


def _lines_sshd_reads() -> list[bytes]:
    """Every table line that sshd can judge: whole lines (a cut one leaves it waiting for more)."""
    table = [r[0] for r in REAL] + [n[0] for n in NOT_SSH] + [o[0] for o in OPENSSH_ACCEPTS]
    return [line for line in table if b"\n" in line]


ORACLE = """\
import json, socket, sys
results = []
for line in json.load(sys.stdin):
    s = socket.create_connection(("127.0.0.1", 22), timeout=5)
    data = bytes.fromhex(line)
    while not s.recv(1) == b"\\n":  # the server's banner
        pass
    s.sendall(data)
    got = b""
    while len(got) < 6:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    s.close()
    results.append(len(got) >= 6 and got[5] == 20)  # SSH_MSG_KEXINIT: sshd took the identification
print(json.dumps(results))
"""


def test_parser_agrees_with_sshd(workdir: Path) -> None:
    """Each whole line of the parser's tables is an identification exactly when Debian's sshd accepts it."""
    server = _netns_sshd(workdir, "oracle")  # its own sshd: refused clients may be penalised (PerSourcePenalties)
    try:
        lines = _lines_sshd_reads()
        run = subprocess.run(
            server.inside(sys.executable, "-c", ORACLE),
            input=json.dumps([line.hex() for line in lines]),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        accepted = json.loads(run.stdout)
    finally:
        server.close()
    disagree = [(line, ok) for line, ok in zip(lines, accepted, strict=True) if ok != (parse(line) is not None)]
    assert disagree == []
    assert sum(accepted) >= len(REAL) and not all(accepted)  # both answers were given
