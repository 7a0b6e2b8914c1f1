# SPDX-License-Identifier: Apache-2.0
"""tunnel.ssh_reverse and tunnel.ssh_forward against Debian's real clients (ssh, autossh, dbclient) and a loopback
sshd: each tunnel is really opened, and the alert names the client's pid, its ancestors and the right severity.
scp, git and `ssh host true` over the same sshd raise nothing at medium or above."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kernel.e2e import Agent, ConnectProxy, NetnsSshd, Sshd, free_port, ssh_client_argv, wait_port

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def config(sshd: Sshd) -> Path:
    """A client config for the loopback sshd: ssh hands -F on to the ssh it starts for -J."""
    path = sshd.dir / "ssh_config"
    path.write_text(
        f"Host *\n  IdentityFile {sshd.key}\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
        f"  BatchMode yes\n  LogLevel ERROR\n  Port {sshd.port}\n  AddressFamily inet\n"
    )
    return path


def _alert(agent: Agent, rule: str, pid: int, timeout: float = 10.0) -> dict[str, Any]:
    found = agent.wait_alert(lambda a: a["rule"] == rule and a["process"]["pid"] == pid, timeout)
    assert found is not None, agent.log_path.read_text()
    return found[0]


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=10)
    if proc.stderr:
        proc.stderr.close()


def _until(proc: subprocess.Popen[str], done: Any, timeout: float = 15.0) -> str:
    """Reads the client's stderr until ``done(text)`` or the timeout; what it read."""
    assert proc.stderr is not None
    text = ""
    deadline = time.monotonic() + timeout
    while not done(text) and time.monotonic() < deadline and proc.poll() is None:
        text += proc.stderr.readline()
    return text


def _opened(port: int) -> None:
    wait_port(port, timeout=15)  # the forward's listener is really there


@pytest.mark.parametrize(
    ("extra", "kind"),
    [
        (["-R", "0:127.0.0.1:9"], "remote"),
        (["-o", "RemoteForward=0 127.0.0.1:9"], "remote"),
        (["-R", "0"], "remote_dynamic"),  # a SOCKS proxy on the far side
    ],
    ids=["-R", "-o RemoteForward", "-R port"],
)
def test_ssh_remote_forward(agent: Agent, sshd: Sshd, extra: list[str], kind: str) -> None:
    """ssh -N with a remote forward in each spelling opens it on the real sshd and is named by pid, parent first."""
    argv = sshd.client_argv("-N", "-o", "ExitOnForwardFailure=yes", *extra, "root@127.0.0.1")
    ssh = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        banner = _until(ssh, lambda t: "Allocated port" in t)
        assert "Allocated port" in banner, banner  # the server really opened the remote forward
        alert = _alert(agent, "tunnel.ssh_reverse", ssh.pid)
        assert alert["severity"] == "high" and alert["process"]["exe"] == "/usr/bin/ssh"
        assert [f["kind"] for f in alert["evidence"]["forwards"]] == [kind]
        assert alert["ancestors"][0]["pid"] == os.getpid()  # the test that started it
    finally:
        _stop(ssh)


@pytest.mark.parametrize(
    ("option", "severity", "kind"),
    [("-D", "medium", "dynamic"), ("-L", "low", "local")],
    ids=["-D", "-L"],
)
def test_ssh_local_side_forward(agent: Agent, sshd: Sshd, option: str, severity: str, kind: str) -> None:
    """ssh -N -D (SOCKS) and -L open a real local listener and raise tunnel.ssh_forward at medium and low."""
    port = free_port()
    spec = f"127.0.0.1:{port}" if option == "-D" else f"127.0.0.1:{port}:127.0.0.1:{sshd.port}"
    ssh = subprocess.Popen(sshd.client_argv("-N", option, spec, "root@127.0.0.1"), stderr=subprocess.PIPE, text=True)
    try:
        _opened(port)
        alert = _alert(agent, "tunnel.ssh_forward", ssh.pid)
        assert alert["severity"] == severity
        assert alert["evidence"]["forwards"] == [{"argv": f"{option} {spec}", "spec": spec, "kind": kind}]
        assert alert["ancestors"][0]["pid"] == os.getpid()
    finally:
        _stop(ssh)


def test_ssh_jump_through_the_same_sshd(agent: Agent, sshd: Sshd, config: Path) -> None:
    """ssh -J through the loopback sshd runs a command at low; the ssh -W that -J starts is named under it."""
    jump = f"root@localhost:{sshd.port}"  # another name for the same sshd: ssh refuses a jump to itself
    ssh = subprocess.run(
        ["ssh", "-F", str(config), "-J", jump, "root@127.0.0.1", "echo", "jumped"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert ssh.returncode == 0 and ssh.stdout == "jumped\n", ssh.stderr
    found = agent.wait_alert(
        lambda a: a["rule"] == "tunnel.ssh_forward" and a["evidence"]["forwards"][0]["kind"] == "jump"
        and a["ancestors"][0]["pid"] == os.getpid(), 10,
    )
    assert found is not None, agent.log_path.read_text()
    outer = found[0]
    assert outer["severity"] == "low" and outer["evidence"]["forwards"][0]["spec"] == jump
    # ssh runs the hop as `ssh ... -W '[127.0.0.1]:PORT' JUMP` under a shell it starts: a stdio forward, low.
    inner = agent.wait_alert(
        lambda a: a["rule"] == "tunnel.ssh_forward" and a["evidence"]["forwards"][0]["kind"] == "stdio"
        and outer["process"]["pid"] in [x["pid"] for x in a["ancestors"]], 10,
    )
    assert inner is not None and inner[0]["severity"] == "low"


def test_autossh_remote_forward(agent: Agent, sshd: Sshd, workdir: Path) -> None:
    """autossh -M 0 -R: autossh and the ssh it starts are both named, the ssh with autossh as its parent."""
    ssh_options = sshd.client_argv()[1:]
    autossh = subprocess.Popen(
        ["autossh", "-M", "0", *ssh_options, "-N", "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9",
         "root@127.0.0.1"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "AUTOSSH_GATETIME": "0"},
    )
    try:
        assert "Allocated port" in _until(autossh, lambda t: "Allocated port" in t)
        own = _alert(agent, "tunnel.ssh_reverse", autossh.pid)
        assert own["severity"] == "high" and own["ancestors"][0]["pid"] == os.getpid()
        found = agent.wait_alert(
            lambda a: a["rule"] == "tunnel.ssh_reverse" and a["process"]["exe"] == "/usr/bin/ssh"
            and a["ancestors"][0]["pid"] == autossh.pid, 10,
        )
        assert found is not None, agent.log_path.read_text()
        child = found[0]
        assert child["severity"] == "high" and child["ancestors"][1]["pid"] == os.getpid()
        forward = {"argv": "-R 0:127.0.0.1:9", "spec": "0:127.0.0.1:9", "kind": "remote"}
        assert child["evidence"]["forwards"] == [forward]
    finally:
        _stop(autossh)


def test_autossh_port_from_the_environment(agent: Agent, sshd: Sshd) -> None:
    """AUTOSSH_PORT=N (no -M) gives autossh's ssh a real remote monitor forward: high on autossh itself, quoting
    the variable, and on the ssh it starts."""
    port = free_port()
    autossh = subprocess.Popen(
        ["autossh", *sshd.client_argv()[1:], "-N", "-o", "ExitOnForwardFailure=yes", "root@127.0.0.1"],
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, "AUTOSSH_PORT": str(port), "AUTOSSH_GATETIME": "0"},
    )  # fmt: skip
    try:
        own = _alert(agent, "tunnel.ssh_reverse", autossh.pid)
        assert own["severity"] == "high"
        assert own["evidence"]["forwards"][:1] == [
            {"argv": f"AUTOSSH_PORT={port}", "spec": f"{port}:127.0.0.1:{port + 1}", "kind": "remote"}
        ]
        found = agent.wait_alert(
            lambda a: a["rule"] == "tunnel.ssh_reverse" and a["ancestors"][0]["pid"] == autossh.pid, 10
        )
        assert found is not None and found[0]["severity"] == "high", agent.log_path.read_text()[-2000:]
        wait_port(port)  # the monitor's local half really listens: autossh passed the forwards on
    finally:
        _stop(autossh)


@pytest.mark.parametrize(
    ("command", "tool"),
    [
        ("corkscrew 127.0.0.1 {proxy} %h %p", "corkscrew"),
        ("proxytunnel -q -p 127.0.0.1:{proxy} -d %h:%p", "proxytunnel"),
        ("ncat --proxy 127.0.0.1:{proxy} --proxy-type http %h %p", None),  # ncat's own CONNECT: no tunnel tool
    ],
    ids=["corkscrew", "proxytunnel", "ncat --proxy"],
)
def test_ssh_through_an_http_connect_proxy(agent: Agent, sshd: Sshd, command: str, tool: str | None) -> None:
    """ssh -R through an HTTP CONNECT proxy really forwards and is tunnel.ssh_reverse, high, quoting the
    ProxyCommand; one that runs a tunnelling tool also raises tunnel.tool on ssh at its exec, and on the tool."""
    if shutil.which(command.split(maxsplit=1)[0]) is None:
        pytest.skip(f"{command.split(maxsplit=1)[0]} is not installed")
    proxy = ConnectProxy()
    proxy_command = command.replace("{proxy}", str(proxy.port))
    argv = sshd.client_argv("-N", "-o", "ExitOnForwardFailure=yes", "-o", f"ProxyCommand={proxy_command}",
                            "-R", "0:127.0.0.1:9", "root@127.0.0.1")  # fmt: skip
    ssh = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        banner = _until(ssh, lambda t: "Allocated port" in t)
        assert "Allocated port" in banner, banner
        assert proxy.asked == [f"127.0.0.1:{sshd.port}"]  # the connection really went through the proxy
        alert = _alert(agent, "tunnel.ssh_reverse", ssh.pid)
        assert alert["severity"] == "high" and alert["evidence"]["proxy_command"] == proxy_command
        if tool is not None:
            on_ssh = _alert(agent, "tunnel.tool", ssh.pid)
            assert on_ssh["evidence"]["tool"] == tool and on_ssh["evidence"]["proxy_command"] == proxy_command
            found = agent.wait_alert(
                lambda a: a["rule"] == "tunnel.tool" and a["evidence"]["tool"] == tool
                and ssh.pid in [p["pid"] for p in a["ancestors"]], 10,
            )  # fmt: skip
            assert found is not None, agent.log_path.read_text()[-2000:]  # the tool's own exec, under ssh
        else:
            time.sleep(1)
            assert not [a for a in agent.alerts() if a["rule"] == "tunnel.tool" and a["process"]["pid"] == ssh.pid]
    finally:
        _stop(ssh)
        proxy.close()


def test_sshuttle_is_a_vpn_over_ssh(agent: Agent, workdir: Path) -> None:
    """sshuttle -r host SUBNETS (a VPN over ssh) is tunnel.ssh_forward, medium, on its pid; run in a network
    namespace of the test's, so its firewall rules touch nothing of the host's."""
    if shutil.which("sshuttle") is None:
        pytest.skip("sshuttle is not installed (Debian package sshuttle)")
    (workdir / "sshuttle").mkdir()
    box = NetnsSshd(workdir / "sshuttle", "sshuttle")
    try:
        ssh_cmd = shlex.join(ssh_client_argv(box.key, box.port))  # sshuttle -e: the ssh it runs, host added
        run = subprocess.Popen(
            box.inside("sshuttle", "-e", ssh_cmd, "-r", "root@127.0.0.1", "10.99.0.0/24"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            alert = _alert(agent, "tunnel.ssh_forward", run.pid)
            assert alert["severity"] == "medium" and alert["evidence"]["client"] == "sshuttle"
        finally:
            run.terminate()
            run.wait(timeout=15)
    finally:
        box.close()


@pytest.mark.skipif(shutil.which("dbclient") is None, reason="needs dropbear's client (Debian dropbear-bin)")
def test_dbclient_remote_forward(agent: Agent, sshd: Sshd) -> None:
    """dropbear's dbclient -R opens a real remote listener on the sshd and raises tunnel.ssh_reverse, high."""
    key = sshd.dir / "client_key.dropbear"
    if not key.exists():
        subprocess.run(["dropbearconvert", "openssh", "dropbear", str(sshd.key), str(key)], check=True,
                       capture_output=True)
    port = free_port()
    dbclient = subprocess.Popen(
        ["dbclient", "-yy", "-i", str(key), "-p", str(sshd.port), "-N", "-R", f"{port}:127.0.0.1:9", "root@127.0.0.1"],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        _opened(port)  # sshd listens on 127.0.0.1:port for the client
        alert = _alert(agent, "tunnel.ssh_reverse", dbclient.pid)
        assert alert["severity"] == "high" and alert["evidence"]["client"] == "dbclient"
        assert alert["ancestors"][0]["pid"] == os.getpid()
    finally:
        _stop(dbclient)


def test_benign_ssh_use_raises_nothing_at_medium_or_above(agent: Agent, sshd: Sshd, workdir: Path) -> None:
    """`ssh host true`, scp to and from the sshd, rsync -e ssh and git over ssh raise no ssh tunnel alert at medium
    or above."""
    ssh_command = " ".join(sshd.client_argv()[:-2])  # GIT_SSH_COMMAND: git adds -p PORT itself
    repo = workdir / "repo.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    payload = workdir / "payload.txt"
    payload.write_text("hello\n")
    # -O: the scp protocol (the test sshd has no sftp subsystem); scp runs ssh with -oClearAllForwardings=yes.
    scp = ["scp", "-O", "-q", "-i", str(sshd.key), "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-P", str(sshd.port)]
    runs = [
        sshd.client_argv("root@127.0.0.1", "true"),
        [*scp, str(payload), f"root@127.0.0.1:{workdir / 'copied.txt'}"],
        [*scp, f"root@127.0.0.1:{payload}", str(workdir / "back.txt")],
        ["rsync", "-e", " ".join(sshd.client_argv()), str(payload), f"root@127.0.0.1:{workdir / 'synced.txt'}"],
        ["git", "ls-remote", f"ssh://root@127.0.0.1:{sshd.port}{repo}"],
        ["git", "clone", "-q", f"ssh://root@127.0.0.1:{sshd.port}{repo}", str(workdir / "clone")],
    ]
    pids = []
    for argv in runs:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "GIT_SSH_COMMAND": ssh_command})
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, (argv, err)
        pids.append(proc.pid)
    time.sleep(1.5)
    # This module's rules only: tunnel.ssh_egress judges the same ssh by its port (this sshd's is not 22).
    theirs = [a for a in agent.alerts() if {a["process"]["pid"], *(x["pid"] for x in a["ancestors"])} & set(pids)
              and a["rule"] in ("tunnel.ssh_reverse", "tunnel.ssh_forward")]
    assert [a for a in theirs if a["severity"] in ("medium", "high", "critical")] == []
