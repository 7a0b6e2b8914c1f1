# SPDX-License-Identifier: Apache-2.0
"""tunnel.icmp, tunnel.tun_device and tunnel.dns against the real tools: ptunnel-ng, iodine and iodined in a
network namespace, a home-made ICMP socket and TUN device; ping, ip tuntap and ordinary lookups stay quiet.
One agent for the module."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kernel.e2e import Agent, UnderSh, free_port, wait_port

pytestmark = pytest.mark.kernel


def _alert(agent: Agent, rule: str, pid: int, timeout: float = 8.0) -> dict[str, Any]:
    found = agent.wait_alert(lambda a: a["rule"] == rule and a["process"]["pid"] == pid, timeout)
    assert found is not None, agent.log_path.read_text()[-3000:]
    return found[0]


def _quiet(agent: Agent, rules: set[str], pids: set[int]) -> list[dict[str, Any]]:
    return [a for a in agent.alerts() if a["rule"] in rules and a["process"]["pid"] in pids]


@pytest.mark.skipif(shutil.which("ptunnel-ng") is None, reason="ptunnel-ng is not installed")
def test_ptunnel_ng_opens_an_icmp_socket(agent: Agent) -> None:
    """ptunnel-ng's raw ICMP socket (made when a client connects to its port) is tunnel.icmp, high, on its pid."""
    port = free_port()
    run = UnderSh(["ptunnel-ng", "-p127.0.0.1", f"-l{port}", "-r127.0.0.1", "-R22"], stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            alert = _alert(agent, "tunnel.icmp", run.pid)
        assert alert["severity"] == "high" and alert["ancestors"][0]["pid"] == run.sh.pid
    finally:
        run.stop()


ICMP_SOCKET = "import socket,time;s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP);time.sleep(2)"
TUN = (
    "import fcntl,os,struct,time;f=os.open('/dev/net/tun',os.O_RDWR);"
    "fcntl.ioctl(f,0x400454ca,struct.pack('16sH','cmtun%d'.encode(),0x1001));time.sleep(2)"
)


@pytest.mark.parametrize(("code", "rule"), [(ICMP_SOCKET, "tunnel.icmp"), (TUN, "tunnel.tun_device")])
def test_home_made_icmp_socket_and_tun_device(agent: Agent, code: str, rule: str) -> None:
    """A script opening a raw ICMP socket, or a TUN device with TUNSETIFF, is high."""
    run = UnderSh([sys.executable, "-c", code])
    try:
        alert = _alert(agent, rule, run.pid)
        assert alert["severity"] == "high"
    finally:
        run.stop()


def test_ping_and_ip_tuntap_are_quiet(agent: Agent) -> None:
    """ping over IPv4 and IPv6 and `ip tuntap add`/`del` raise no ICMP or TUN alert."""
    pids: set[int] = set()
    for argv in (
        ["ping", "-c", "1", "-W", "2", "127.0.0.1"],
        ["ping", "-6", "-c", "1", "-W", "2", "::1"],
        ["ip", "tuntap", "add", "dev", "cmquiet0", "mode", "tun"],
        ["ip", "tuntap", "del", "dev", "cmquiet0", "mode", "tun"],
    ):
        if shutil.which(argv[0]) is None:
            pytest.skip(f"{argv[0]} is not installed")
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        assert proc.wait(timeout=10) == 0, argv
        pids.add(proc.pid)
    time.sleep(1.5)
    assert _quiet(agent, {"tunnel.icmp", "tunnel.tun_device"}, pids) == []


class Iodine:
    """iodined serving t1.example.test on 127.0.0.1:53 in a network namespace, and the iodine client there."""

    def __init__(self, workdir: Path) -> None:
        self.netns = f"coalmine-iodine-{id(self)}"
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(self.inside("ip", "link", "set", "lo", "up"), check=True)
        self.log = (workdir / "iodined.log").open("w")
        self.server = subprocess.Popen(
            self.inside("iodined", "-f", "-c", "-l", "127.0.0.1", "-P", "secretpassword", "10.77.0.1",
                        "t1.example.test"),
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        time.sleep(0.5)
        self.client = UnderSh(
            self.inside("iodine", "-f", "-r", "-P", "secretpassword", "127.0.0.1", "t1.example.test"),
            stderr=subprocess.DEVNULL,
        )

    def inside(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def close(self) -> None:
        self.client.stop()
        self.server.terminate()
        self.server.wait(timeout=10)
        self.log.close()
        subprocess.run(["ip", "netns", "del", self.netns], check=False)


@pytest.mark.skipif(shutil.which("iodined") is None, reason="iodine is not installed (Debian package iodine)")
def test_iodine_server_and_client_open_tun_devices(agent: Agent, workdir: Path) -> None:
    """iodined and the iodine client each set up a TUN device: tunnel.tun_device, high, on each pid."""
    tunnel = Iodine(workdir)
    try:
        server = _alert(agent, "tunnel.tun_device", tunnel.server.pid, timeout=10)
        client = _alert(agent, "tunnel.tun_device", tunnel.client.pid, timeout=15)
        assert server["severity"] == client["severity"] == "high"
    finally:
        tunnel.close()
