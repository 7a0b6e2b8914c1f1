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

from tests.kernel.e2e import Agent, NetnsDns, UnderSh, free_port, wait_port

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
    """iodined serving t1.example.test in one network namespace, the iodine client in another, joined by a veth
    pair the test makes (so the tunnel's traffic really crosses DNS): iodined on 10.98.0.1:53, the client's
    name server."""

    def __init__(self, workdir: Path) -> None:
        tag = f"{id(self) % 100000}"
        self.server_ns, self.client_ns = f"coalmine-iodined-{tag}", f"coalmine-iodine-{tag}"
        for ns in (self.server_ns, self.client_ns):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        veth = f"cmv{tag}"
        subprocess.run(["ip", "link", "add", f"{veth}a", "netns", self.server_ns, "type", "veth", "peer",
                        f"{veth}b", "netns", self.client_ns], check=True)  # fmt: skip
        for ns, dev, addr in (
            (self.server_ns, f"{veth}a", "10.98.0.1/24"),
            (self.client_ns, f"{veth}b", "10.98.0.2/24"),
        ):
            subprocess.run(["ip", "-n", ns, "addr", "add", addr, "dev", dev], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        self.log = (workdir / "iodined.log").open("w")
        self.server = subprocess.Popen(
            ["ip", "netns", "exec", self.server_ns, "iodined", "-f", "-c", "-l", "10.98.0.1", "-P", "secretpassword",
             "10.77.0.1", "t1.example.test"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        time.sleep(0.5)
        self.client = UnderSh(
            ["ip", "netns", "exec", self.client_ns, "iodine", "-f", "-r", "-m", "1000", "-P", "secretpassword",
             "10.98.0.1", "t1.example.test"],
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def ping_through(self, count: int) -> bool:
        """Pings iodined's end of the tunnel from the client's: each packet crosses DNS queries."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # the tunnel is up once the client's dns0 has its address
            up = subprocess.run(["ip", "-n", self.client_ns, "addr"], capture_output=True, text=True, check=False)
            if "10.77.0." in up.stdout:
                break
            time.sleep(0.2)
        time.sleep(1)  # -m sets the fragment size (no autoprobe): the login is done once dns0 has its address
        argv = ["ip", "netns", "exec", self.client_ns, "ping", "-c", str(count), "-i", "0.2", "-W", "2", "10.77.0.1"]
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0

    def close(self) -> None:
        self.client.stop()
        self.server.terminate()
        self.server.wait(timeout=10)
        self.log.close()
        for ns in (self.server_ns, self.client_ns):
            subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.mark.skipif(shutil.which("iodined") is None, reason="iodine is not installed (Debian package iodine)")
def test_iodine_dns_tunnel(agent: Agent, workdir: Path) -> None:
    """iodined and the iodine client each set up a TUN device (tunnel.tun_device, high, on each pid), and the
    client's stream of encoded queries under t1.example.test is tunnel.dns, high, on the client's pid."""
    tunnel = Iodine(workdir)
    try:
        server = _alert(agent, "tunnel.tun_device", tunnel.server.pid, timeout=10)
        client = _alert(agent, "tunnel.tun_device", tunnel.client.pid, timeout=15)
        assert server["severity"] == client["severity"] == "high"
        assert tunnel.ping_through(30), "no ping crossed the DNS tunnel"  # 30 packets: some 40 queries of data
        dns = _alert(agent, "tunnel.dns", tunnel.client.pid, timeout=15)
        assert dns["severity"] == "high" and dns["evidence"]["domain"] == "example.test"
        assert dns["network"]["daddr"] == "10.98.0.1" and dns["network"]["dport"] == 53
    finally:
        tunnel.close()


def test_ordinary_lookups_are_quiet(agent: Agent, workdir: Path) -> None:
    """getent and dig lookups of ordinary names, a few hundred of them, raise no tunnel.dns."""
    if shutil.which("dnsmasq") is None or shutil.which("dig") is None:
        pytest.skip("needs dnsmasq and dig (Debian packages dnsmasq-base, bind9-dnsutils)")
    names = {f"host{i}.corp.example.test": f"10.2.{i // 250}.{i % 250 + 1}" for i in range(300)}
    dns = NetnsDns(workdir, "lookups", {"corp.example.test": "10.2.0.1"})
    try:
        batch = workdir / "names.txt"
        batch.write_text("\n".join(names) + "\n")
        dig = subprocess.Popen(dns.inside("dig", "+short", "@127.0.0.1", "-f", str(batch)), stdout=subprocess.DEVNULL)
        getent = subprocess.Popen(dns.inside("getent", "hosts", "www.corp.example.test"), stdout=subprocess.DEVNULL)
        assert dig.wait(timeout=60) == 0 and getent.wait(timeout=10) == 0
        time.sleep(1.5)
        assert _quiet(agent, {"tunnel.dns"}, {dig.pid, getent.pid}) == []
    finally:
        dns.close()


def test_a_tunnel_services_rendezvous_lookup_is_named(agent: Agent, workdir: Path) -> None:
    """Looking up a name under trycloudflare.com (cloudflared's quick tunnels) is tunnel.tool, medium, on the
    process that asked (glibc's resolver, through dnsmasq in a namespace of the test's)."""
    if shutil.which("dnsmasq") is None:
        pytest.skip("needs dnsmasq (Debian package dnsmasq-base)")
    dns = NetnsDns(workdir, "rendezvous", {"trycloudflare.com": "10.3.0.1"})
    try:
        argv = dns.inside("getent", "hosts", "calm-river-7.trycloudflare.com")
        getent = subprocess.Popen(argv, stdout=subprocess.PIPE)
        out, _ = getent.communicate(timeout=10)
        assert b"10.3.0.1" in out
        alert = _alert(agent, "tunnel.tool", getent.pid)
        assert alert["severity"] == "medium" and alert["evidence"]["tool"] == "cloudflared"
        assert alert["evidence"]["domain"] == "trycloudflare.com" and alert["network"]["daddr"] == "127.0.0.1"
    finally:
        dns.close()


def test_a_web_server_and_its_clients_are_quiet(agent: Agent) -> None:
    """`python -m http.server` and curl against it raise nothing at medium or above, under any rule."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_port(port)
        curls = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/"]) for _ in range(3)]
        assert all(c.wait(timeout=10) == 0 for c in curls)
        time.sleep(1.5)
        pids = {server.pid, *(c.pid for c in curls)}
        loud = [a for a in agent.alerts() if a["process"]["pid"] in pids and a["severity"] != "low"]
        assert loud == []
    finally:
        server.terminate()
        server.wait(timeout=10)
