# SPDX-License-Identifier: Apache-2.0
"""The DNS sensor in the real kernel: queries on every send path, answers on every receive path, glibc's
resolver, dig over UDP and TCP, against dnsmasq in a network namespace; other UDP and TCP traffic is not DNS."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.events import DnsEvent, PayloadEvent
from tests.kernel.e2e import NetnsDns
from tests.kernel.helpers import Collected

pytestmark = pytest.mark.kernel

NAMES = {"www.example.test": "10.1.2.3", "pool.example.test": "10.1.2.4"}
# dig's query for www.example.test A, id 0xabcd, RD set (RFC 1035 4.1.1)
QUERY = bytes.fromhex("abcd01000001000000000000") + b"\x03www\x07example\x04test\x00" + b"\x00\x01\x00\x01"


@pytest.fixture
def k(loaded: Collected) -> Collected:
    loaded.begin()
    return loaded


@pytest.fixture(scope="module")
def dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsDns]:
    if shutil.which("dnsmasq") is None:
        pytest.skip("dnsmasq is not installed (Debian package dnsmasq-base)")
    server = NetnsDns(tmp_path_factory.mktemp("dns"), "dns", NAMES)
    yield server
    server.close()


@pytest.fixture
def server53() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.2:53 that the test answers from by hand."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.2", 53))
    except OSError as exc:
        pytest.skip(f"cannot bind 127.0.0.2:53: {exc}")
    s.settimeout(5)
    yield s
    s.close()


def _dns(k: Collected, pid: int, want: int, timeout: float = 3.0) -> list[DnsEvent]:
    found = k.find(DnsEvent, lambda e: e.tgid == pid, timeout)
    k.settle(0.2)
    found = k.find(DnsEvent, lambda e: e.tgid == pid, 0)
    assert len(found) >= want, found
    return found


def _answer(server: socket.socket) -> None:
    data, addr = server.recvfrom(512)
    server.sendto(data[:2] + b"\x81\x80" + data[4:], addr)  # the query back, as a response


def test_unconnected_sendto_and_recvfrom(k: Collected, server53: socket.socket) -> None:
    """sendto() with an address on port 53 is a query; the answer recvfrom() gets is seen on the same socket."""
    k.begin()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.sendto(QUERY, ("127.0.0.2", 53))
        _answer(server53)
        c.settimeout(5)
        c.recvfrom(512)
        fd = c.fileno()
    q, a = _dns(k, os.getpid(), 2)
    assert (q.direction, q.syscall, q.fd, q.server, q.port, q.proto) == ("query", "sendto", fd, "127.0.0.2", 53, "udp")
    assert q.data == QUERY and not q.truncated
    assert (a.direction, a.syscall, a.server) == ("answer", "recvfrom", "127.0.0.2") and a.data[2:4] == b"\x81\x80"


@pytest.mark.parametrize("how", ["send", "write", "sendmsg"])
def test_connected_socket_every_query_and_answer(k: Collected, server53: socket.socket, how: str) -> None:
    """A socket connected to port 53 reports each message it sends, by any send call, and each it receives."""
    k.begin()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.connect(("127.0.0.2", 53))
        for _ in range(3):
            {"send": c.send, "write": lambda b: os.write(c.fileno(), b), "sendmsg": lambda b: c.sendmsg([b])}[how](
                QUERY
            )
        for _ in range(3):
            _answer(server53)
        c.settimeout(5)
        c.recv(512)
        os.read(c.fileno(), 512)
        c.recvmsg(512)
    found = _dns(k, os.getpid(), 6)
    assert [e.direction for e in found] == ["query"] * 3 + ["answer"] * 3
    assert [e.syscall for e in found[3:]] == ["recvfrom", "read", "recvmsg"]
    # the socket's first send is its first payload too (a pool on port 53 is still seen by the payload rules)
    assert len(k.find(PayloadEvent, lambda e: e.tgid == os.getpid() and e.dport == 53, 0)) == 1


def test_glibc_resolver_sendmmsg_queries_and_answers(k: Collected, dns: NetnsDns) -> None:
    """getent ahosts asks A and AAAA in one sendmmsg() on a connected socket: both queries and the answer are seen."""
    k.begin()
    proc = subprocess.run(
        dns.inside("getent", "ahosts", "www.example.test"), check=False, capture_output=True, text=True
    )
    assert "10.1.2.3" in proc.stdout
    pid = _getent_pid(k)
    found = _dns(k, pid, 2)
    queries = [e for e in found if e.direction == "query"]
    assert queries and all(e.server == "127.0.0.1" and e.port == 53 for e in queries)
    assert {e.syscall for e in queries} == {"sendmmsg"} and len(queries) >= 2  # A and AAAA, one call
    assert any(b"\x03www\x07example\x04test" in e.data for e in queries)
    assert any(e.direction == "answer" and bytes([10, 1, 2, 3]) in e.data for e in found)


def _getent_pid(k: Collected) -> int:
    from probes.events import ExecEvent

    execs = k.find(ExecEvent, lambda e: e.comm == "getent", 2.0)
    assert execs
    return execs[-1].tgid


@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
def test_dig_over_udp_and_tcp(k: Collected, dns: NetnsDns, transport: str) -> None:
    """dig's query and answer are seen over UDP and over TCP (the 2-byte length prefix taken off)."""
    if shutil.which("dig") is None:
        pytest.skip("dig is not installed (Debian package bind9-dnsutils)")
    k.begin()
    proc = subprocess.Popen(
        dns.inside("dig", transport, "+tries=1", "+time=2", "@127.0.0.1", "pool.example.test", "A"),
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = proc.communicate(timeout=10)
    assert "10.1.2.4" in out
    found = _dns(k, proc.pid, 2)
    proto = "tcp" if transport == "+tcp" else "udp"
    assert {e.proto for e in found} == {proto}
    query = next(e for e in found if e.direction == "query")
    assert query.data[12:13] == b"\x04" and b"\x04pool\x07example\x04test" in query.data
    assert any(e.direction == "answer" and bytes([10, 1, 2, 4]) in e.data for e in found)


def test_other_traffic_is_not_dns(k: Collected, tmp_path: Path) -> None:
    """UDP to another port and an unconnected UDP socket that never sent to port 53 leave no DNS record."""
    k.begin()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c,
    ):
        server.bind(("127.0.0.1", 0))
        c.sendto(QUERY, server.getsockname())
        server.recvfrom(512)
        server.sendto(QUERY, c.getsockname())
        c.recvfrom(512)
    k.settle(0.3)
    assert k.find(DnsEvent, lambda e: e.tgid == os.getpid(), 0) == []
