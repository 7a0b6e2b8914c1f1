# SPDX-License-Identifier: Apache-2.0
"""tunnel.icmp: an ICMP socket (raw or "ping") opened by anything but a known ping tool; raw IP and packet
sockets, which can carry ICMP too, at low."""

from __future__ import annotations

import errno
import posixpath
import tomllib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from collector.detect import Finding, Rule, Severity, State
from collector.enrich.process import Process
from probes.events import Event, Kind, SocketEvent

RULE = Rule(
    id="tunnel.icmp",
    category="tunnel",
    severity=Severity.HIGH,
    description=(
        "socket(2) made an ICMP socket (AF_INET with IPPROTO_ICMP or AF_INET6 with IPPROTO_ICMPV6, SOCK_RAW or "
        "the unprivileged SOCK_DGRAM ping socket) and the process is not a ping or network tool from "
        "data/ping_tools.toml listed for that socket (ping, fping, mtr-packet, traceroute -I, clockdiff, oping, "
        "check_icmp, ICMP probers; ICMPv6 neighbour discovery in systemd-networkd, NetworkManager, dhcpcd, "
        "radvd, keepalived, routing daemons): high, the socket every ICMP tunnel needs (ptunnel and ptunnel-ng, "
        "icmptunnel, hans, icmpsh, pingtunnel, ICMP C2 implants). A refused socket() (EPERM, EACCES) raises "
        "too, as an attempt. Raw IP sockets of any other protocol (IPPROTO_RAW, or TCP/UDP with IP_HDRINCL, "
        "which write whole IP packets, ICMP included) and AF_PACKET sockets are low, unless the tool is listed "
        "for them (DHCP clients, tcpdump, lldpd, ptp4l, keepalived, BIRD/FRR, gVisor's sandbox): that is how "
        "udp2raw --raw-mode icmp and hping3 send ICMP without an ICMP socket; nothing in the socket alone "
        "says ICMP, hence low. Packet crafters and scanners (hping3, nping, nmap, masscan, sendip) are "
        "dual-use and raise, with what they can do in the alert. One alert per process, program and kind. "
        "Known false positives: ICMP health checks from programs not listed (a Go or Python service using "
        "pro-bing or icmplib, Cilium's health pings, smokeping's Perl probes: a script's exe is its "
        "interpreter), CNI and capture agents not listed opening packet sockets. Bypasses: the list goes by "
        "name, so a tunnel copied or renamed to ping passes (argv[0] counts only when the exe is unknown, "
        "busybox's applet only when the exe is busybox), a listed tool's own payload options (ping -p PATTERN "
        "carries 16 chosen bytes an echo, ping -s any size: a payload rule's business, not this one's), a socket "
        "made before the agent started, a socket passed over a unix socket (SCM_RIGHTS) from a listed tool, "
        "io_uring socket creation, and tunnels over other protocols."
    ),
    tags=("maturity_stable", "host", "container", "network", "mitre_command_and_control", "T1095", "T1572"),
    consumes=frozenset({Kind.SOCKET}),
)

IPPROTO_ICMP = 1
IPPROTO_ICMPV6 = 58
COMM_LEN = 15  # TASK_COMM_LEN 16 with its NUL: comm is the first 15 bytes of the exec'd name
SEEN_MAX = 4096  # (process, program, kind, outcome) already alerted: oldest forgotten first
_DELETED = " (deleted)"  # proc(5): /proc/PID/exe of an unlinked file
# IANA protocol numbers (https://www.iana.org/assignments/protocol-numbers) seen on raw sockets.
_IP_PROTOCOLS = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 51: "ah", 58: "icmpv6",
                 89: "ospf", 103: "pim", 112: "vrrp", 132: "sctp", 255: "raw"}  # fmt: skip
# include/uapi/linux/if_ether.h; socket(AF_PACKET, ..., htons(ETH_P_*)) passes the ethertype byte-swapped.
_ETHERTYPES = {0x0003: "all", 0x0800: "ip", 0x0806: "arp", 0x86DD: "ipv6", 0x888E: "eapol", 0x88F7: "ptp"}


@dataclass(frozen=True, slots=True)
class Program:
    """The name an allow-list judges a process by, and where it was read."""

    name: str
    by: str  # "exe" | "applet" (busybox/toybox) | "argv0" (exe unknown) | "comm" (process unknown)
    exe: str | None


def program(proc: Process | None, comm: str, multicall: frozenset[str]) -> Program:
    """Who a process is for an allow-list: its exe's basename, which a process cannot choose without
    being that file; argv[0] (which it can) only when the exe is unknown; comm when the process is."""
    exe = proc.exe if proc is not None else None
    args = proc.args if proc is not None else ()
    if exe:
        name = posixpath.basename(exe.removesuffix(_DELETED))
        if name in multicall and args:
            # busybox runs the applet argv[0] names, or argv[1] when argv[0] is busybox itself.
            applet = posixpath.basename(args[0])
            if applet in multicall and len(args) > 1:
                applet = posixpath.basename(args[1])
            if applet and applet not in multicall:
                return Program(applet, "applet", exe)
        return Program(name, "exe", exe)
    if args and args[0]:
        return Program(posixpath.basename(args[0]), "argv0", None)
    return Program(comm, "comm", None)


@dataclass(frozen=True, slots=True)
class Names:
    """Program names from a data file: exact names and "name*" prefixes."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def of(cls, names: Iterable[str]) -> Names:
        names = tuple(names)
        return cls(frozenset(n for n in names if not n.endswith("*")), tuple(n[:-1] for n in names if n.endswith("*")))

    def match(self, prog: Program) -> bool:
        if prog.by == "comm":  # the kernel cut the name at COMM_LEN
            return any(n[:COMM_LEN] == prog.name for n in self.exact) or any(
                prog.name.startswith(p[:COMM_LEN]) for p in self.prefixes
            )
        return prog.name in self.exact or prog.name.startswith(self.prefixes)


@dataclass(frozen=True, slots=True)
class Entry:
    names: Names
    what: str
    sockets: frozenset[str]  # for [[allowed]]: the kinds it may open


def entries(raw: dict[str, Any], table: str) -> tuple[Entry, ...]:
    return tuple(Entry(Names.of(e["names"]), e["what"], frozenset(e.get("sockets", ()))) for e in raw.get(table, ()))


def first(table: tuple[Entry, ...], prog: Program) -> Entry | None:
    return next((e for e in table if e.names.match(prog)), None)


_RAW = tomllib.loads(resources.files("collector.detect.data").joinpath("ping_tools.toml").read_text())
MULTICALL = frozenset(_RAW["multicall"])
ALLOWED = entries(_RAW, "allowed")
DUAL_USE = entries(_RAW, "dual_use")
TUNNELS = entries(_RAW, "tunnel")
KINDS = ("icmp", "icmpv6", "raw", "packet")


def kind(event: SocketEvent) -> str | None:
    """What the socket can do, as ping_tools.toml names it; None for sockets that are not IP or packet
    (raw netlink, CAN, PF_KEY) or an IP socket that is neither raw nor ICMP."""
    if event.family == "packet":
        return "packet"
    if (event.family, event.protocol) == ("ipv4", IPPROTO_ICMP) and event.type in ("raw", "dgram"):
        return "icmp"
    if (event.family, event.protocol) == ("ipv6", IPPROTO_ICMPV6) and event.type in ("raw", "dgram"):
        return "icmpv6"
    if event.family in ("ipv4", "ipv6") and event.type == "raw":
        return "raw"
    return None


def protocol_name(event: SocketEvent) -> str:
    if event.family == "packet":
        swapped = ((event.protocol & 0xFF) << 8) | ((event.protocol >> 8) & 0xFF)  # ntohs
        return _ETHERTYPES.get(swapped, f"unknown:{event.protocol}")
    return _IP_PROTOCOLS.get(event.protocol, f"unknown:{event.protocol}")


def _why(prog: Program, sock: str) -> tuple[str, str | None] | None:
    """Why this socket raises and which list names the program ("tunnel", "dual_use", "allowed"), or None
    when the program is allowed this kind of socket."""
    if tunnel := first(TUNNELS, prog):
        return f"{prog.name} is a known ICMP tunnel tool ({tunnel.what})", "tunnel"
    if dual := first(DUAL_USE, prog):
        return f"{prog.name} is dual-use: {dual.what}", "dual_use"
    allowed = first(ALLOWED, prog)
    if allowed is None:
        return "not a known ping or network tool", None
    if sock in allowed.sockets:
        return None
    return f"{prog.name} is a known tool for {', '.join(sorted(allowed.sockets))} sockets, not {sock}", "allowed"


_WHAT = {
    "icmp": "an ICMP socket",
    "icmpv6": "an ICMPv6 socket",
    "raw": "a raw IP socket (it can write any IP packet, ICMP included)",
    "packet": "a packet socket (AF_PACKET: any frame, ICMP included)",
}


class IcmpDetector:
    rule = RULE

    def __init__(self, max_seen: int = SEEN_MAX) -> None:
        self._seen: OrderedDict[tuple[int, str, str, bool], None] = OrderedDict()
        self._max = max_seen

    def detect(self, event: Event, state: State) -> list[Finding]:
        if not isinstance(event, SocketEvent) or (sock := kind(event)) is None:
            return []
        prog = program(state.processes.get(event.tgid), event.comm, MULTICALL)
        found = _why(prog, sock)
        if found is None:
            return []
        why, listed = found
        ok = event.ret_raw >= 0
        key = (event.tgid, prog.name, sock, ok)
        if key in self._seen:
            return []
        self._seen[key] = None
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
        error = None if ok else errno.errorcode.get(-event.ret_raw, f"unknown:{-event.ret_raw}")
        socket_type = "ping (SOCK_DGRAM)" if event.type == "dgram" else event.type
        what = f"{_WHAT[sock]} ({event.family}, {socket_type}, {protocol_name(event)})"
        did = f"opened {what}" if ok else f"tried to open {what}, refused with {error}"
        summary = f"{event.comm} (pid {event.tgid}) {did}: {why}"
        evidence = {
            "signature": f"{sock} socket",
            "socket": sock,
            "family": event.family,
            "type": event.type,
            "protocol": event.protocol,
            "protocol_name": protocol_name(event),
            "fd": event.fd,
            "error": error,
            "exe": prog.exe,
            "program": prog.name,
            "identified_by": prog.by,
            "listed": listed,
            "why": why,
        }
        severity = Severity.HIGH if sock in ("icmp", "icmpv6") else Severity.LOW
        return [Finding(RULE, event, summary, evidence, severity)]
