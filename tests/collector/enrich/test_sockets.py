# SPDX-License-Identifier: Apache-2.0
"""A socket's local end from /proc: the kernel's table format, fd reuse, and real loopback sockets."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.enrich.sockets import LocalEnd, Lookup, find_in_table, local_end, parse_address, socket_inode

# Lines as this kernel printed them (x86-64, little-endian) for loopback sockets, with what getsockname() said.
ADDRESSES = [
    ("0100007F:84DE", "127.0.0.1", 34014),
    ("00000000:07E8", "0.0.0.0", 2024),
    ("0F02000A:0050", "10.0.2.15", 80),  # each 32-bit word printed in host order: the bytes read backwards
    ("00000000000000000000000001000000:8C3C", "::1", 35900),
    ("0000000000000000FFFF00000100007F:C7D2", "::ffff:127.0.0.1", 51154),
    ("00000000000000000000000000000000:B9AF", "::", 47535),
    ("B80D0120000000000000000001000000:01BB", "2001:db8::1", 443),
]


@pytest.mark.skipif(sys.byteorder != "little", reason="the lines were printed by a little-endian kernel")
@pytest.mark.parametrize(("field", "address", "port"), ADDRESSES)
def test_parse_address(field: str, address: str, port: int) -> None:
    """A /proc/net address field reads as the address and port getsockname() gave, IPv4, IPv6 and mapped."""
    assert parse_address(field) == (ipaddress.ip_address(address), port)


@pytest.mark.parametrize(
    "field", ["", "0100007F", "0100007F:84D", "0100007G:84DE", "01007F:84DE", "0100007F:84DE:1", ":0050"]
)
def test_parse_address_refuses_other_fields(field: str) -> None:
    """A field without both halves, of the wrong width or with a non-hex digit is a ValueError."""
    with pytest.raises(ValueError):
        parse_address(field)


TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:D571 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 51350451 2 00000000d4754327
   2: 0100007F:84DE 0100007F:D571 01 00000000:00000000 00:00000000 00000000     0        0 51350452 2 0000000058002f3b
   3: 0100007F:D571 0100007F:84DE 01 00000000:00000000 00:00000000 00000000     0        0 0 1 00000000e175ab3a
"""  # trailing columns (rto, ato, quick/pingpong, cwnd, ssthresh) cut
UDP = """\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 1770: 0100007F:AE87 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 51350457 2 0000001ca08f13 0
"""


def test_find_in_table() -> None:
    """A socket's line is found by inode in TCP and UDP tables (inode 0: the unheld accepted socket), else None."""
    assert find_in_table(TCP, 51350452) == ("0100007F:84DE", "0100007F:D571")
    assert find_in_table(TCP, 0) == ("0100007F:D571", "0100007F:84DE")  # an accepted socket no fd holds yet
    assert find_in_table(TCP, 5135045) is None and find_in_table("", 1) is None
    assert find_in_table(UDP, 51350457) == ("0100007F:AE87", "0100007F:0035")


@pytest.mark.parametrize(
    ("link", "inode"),
    [
        ("socket:[51350452]", 51350452),
        ("pipe:[77]", None),
        ("/dev/null", None),
        ("socket:[]", None),
        ("socket:[1", None),
    ],
)
def test_socket_inode(link: str, inode: int | None) -> None:
    """Only a well-formed socket:[N] fd link gives an inode."""
    assert socket_inode(link) == inode


@pytest.fixture
def fake_proc(tmp_path: Path) -> Path:
    """/proc for pid 80: fd 5 the TCP socket of TCP's line 2, fd 6 the UDP socket, fd 7 a pipe, fd 8 a socket
    of no tcp/udp table; no tcp6 or udp6 file (a kernel without IPv6)."""
    pid = tmp_path / "80"
    (pid / "fd").mkdir(parents=True)
    (pid / "net").mkdir()
    (pid / "net" / "tcp").write_text(TCP)
    (pid / "net" / "udp").write_text(UDP)
    for fd, target in [(5, "socket:[51350452]"), (6, "socket:[51350457]"), (7, "pipe:[9]"), (8, "socket:[424242]")]:
        (pid / "fd" / str(fd)).symlink_to(target)
    return tmp_path


@pytest.mark.parametrize(
    ("fd", "daddr", "dport", "expected"),
    [
        (5, "127.0.0.1", 54641, LocalEnd("tcp", "127.0.0.1", 34014)),
        (6, "127.0.0.1", 53, LocalEnd("udp", "127.0.0.1", 44679)),
        (5, "127.0.0.1", 3333, Lookup.REUSED),  # fd 5 now connects elsewhere
        (5, "10.1.1.1", 54641, Lookup.REUSED),
        (5, "::ffff:127.0.0.2", 54641, Lookup.REUSED),
        (5, "not an address", 54641, Lookup.NOT_LISTED),
        (7, "127.0.0.1", 54641, Lookup.CLOSED),  # fd 7 is a pipe now
        (9, "127.0.0.1", 54641, Lookup.CLOSED),  # fd 9 is closed
        (8, "127.0.0.1", 54641, Lookup.NOT_LISTED),
    ],
)
def test_local_end_from_a_proc_tree(fake_proc: Path, fd: int, daddr: str, dport: int, expected: object) -> None:
    """The fd's socket gives its local end when its peer is the event's; else why not (reused, closed, unlisted)."""
    assert local_end(80, fd, daddr, dport, fake_proc) == expected


def test_local_end_of_a_process_that_exited(fake_proc: Path) -> None:
    """A pid gone from /proc reads as closed."""
    assert local_end(81, 5, "127.0.0.1", 54641, fake_proc) == Lookup.CLOSED


def _pair(family: socket.AddressFamily, kind: socket.SocketKind, host: str) -> Iterator[socket.socket]:
    server = socket.socket(family, kind)
    server.bind((host, 0))
    if kind == socket.SOCK_STREAM:
        server.listen()
    client = socket.socket(family, kind)
    client.connect(server.getsockname())
    try:
        yield client
    finally:
        client.close()
        server.close()


@pytest.mark.parametrize(
    ("family", "kind", "host", "proto"),
    [
        (socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1", "tcp"),
        (socket.AF_INET6, socket.SOCK_STREAM, "::1", "tcp"),
        (socket.AF_INET6, socket.SOCK_STREAM, "::ffff:127.0.0.1", "tcp"),  # v4-mapped on an IPv6 socket
        (socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.3", "udp"),
        (socket.AF_INET6, socket.SOCK_DGRAM, "::1", "udp"),
    ],
)
def test_local_end_of_real_sockets(
    family: socket.AddressFamily, kind: socket.SocketKind, host: str, proto: str
) -> None:
    """This kernel's /proc, for sockets this process connected on loopback: what getsockname() says."""
    if family == socket.AF_INET6 and not socket.has_ipv6:
        pytest.skip("no IPv6")
    for client in _pair(family, kind, host):
        saddr, sport = client.getsockname()[:2]
        daddr, dport = client.getpeername()[:2]
        found = local_end(os.getpid(), client.fileno(), daddr, dport)
        assert found == LocalEnd(proto, str(ipaddress.ip_address(saddr)), sport)
        assert local_end(os.getpid(), client.fileno(), daddr, dport + 1 if dport < 65535 else 1) == Lookup.REUSED
        fd = client.fileno()
    assert local_end(os.getpid(), fd, daddr, dport) == Lookup.CLOSED
