# SPDX-License-Identifier: Apache-2.0
"""tunnel.tun_device: a process that is no known VPN, VM monitor or container network creates or attaches
a TUN/TAP device (ioctl TUNSETIFF on /dev/net/tun)."""

from __future__ import annotations

import tomllib
from collections import OrderedDict
from importlib import resources

from collector.detect import Finding, Rule, Severity, State
from collector.detect.tunnel.icmp import entries, first, program
from probes.events import Event, Kind, TunEvent

RULE = Rule(
    id="tunnel.tun_device",
    category="tunnel",
    severity=Severity.HIGH,
    description=(
        "ioctl(TUNSETIFF) on /dev/net/tun, which creates a TUN (layer 3) or TAP (layer 2) interface or "
        "attaches to one, by a process that is not in data/tun_allowed.toml (OpenVPN, userspace WireGuard, "
        "Tailscale, NetBird, ZeroTier, Nebula, tinc, Cloudflare WARP, strongSwan kernel-libipsec, OpenConnect, "
        "vpnc, NetworkManager, systemd-networkd, ip tuntap/tunctl, slirp4netns, passt/pasta, RootlessKit, "
        "QEMU and its bridge helper, libvirt, Firecracker, Cloud Hypervisor, crosvm, Kata): a VPN into or out "
        "of the node that routes whole networks, not one port. Catches iodine (IP over DNS), hans and "
        "icmptunnel (IP over ICMP), ssh -w and sshd with PermitTunnel, ligolo-ng's proxy, gost and socat TUN "
        "addresses, tinyfecVPN, tun2socks and proxy clients with a tun inbound (sing-box, mihomo), and any "
        "implant that opens a tun device. The process is judged by its exe's basename (busybox by its applet; "
        "argv[0] only when the exe is unknown). Known false positives: VPNs, VM monitors and network agents "
        "not listed (Mullvad, SoftEther, fastd, flanneld's udp backend, LXD/Incus VMs), tests that make tun "
        "devices. Bypasses: the list goes by name, so a tool renamed or copied to openvpn or "
        "qemu-system-x86_64 passes; a listed VPN pointed at an unsanctioned server (openvpn --config "
        "attacker.ovpn) passes; a tun fd handed over by a listed process (qemu-bridge-helper, libvirt, "
        "SCM_RIGHTS); macvtap (/dev/tapN, made over netlink) and kernel tunnels made over netlink (WireGuard, "
        "GRE, IPIP, VXLAN, Geneve, ip xfrm) issue no TUNSETIFF; a device attached before the agent started."
    ),
    tags=("maturity_stable", "host", "container", "network", "mitre_command_and_control", "T1572"),
    consumes=frozenset({Kind.TUN}),
)

SEEN_MAX = 4096  # (process, program, interface) already alerted: oldest forgotten first
# include/uapi/linux/if_tun.h, TUNSETIFF ifr_flags; IFF_NOFILTER shares 0x1000 with IFF_NO_PI (TUNSETQUEUE's).
IFF_FLAGS = (
    (0x0001, "IFF_TUN"),
    (0x0002, "IFF_TAP"),
    (0x0010, "IFF_NAPI"),
    (0x0020, "IFF_NAPI_FRAGS"),
    (0x0040, "IFF_NO_CARRIER"),
    (0x0100, "IFF_MULTI_QUEUE"),
    (0x0200, "IFF_ATTACH_QUEUE"),
    (0x0400, "IFF_DETACH_QUEUE"),
    (0x0800, "IFF_PERSIST"),
    (0x1000, "IFF_NO_PI"),
    (0x2000, "IFF_ONE_QUEUE"),
    (0x4000, "IFF_VNET_HDR"),
    (0x8000, "IFF_TUN_EXCL"),
)

_RAW = tomllib.loads(resources.files("collector.detect.data").joinpath("tun_allowed.toml").read_text())
MULTICALL = frozenset(_RAW["multicall"])
ALLOWED = entries(_RAW, "allowed")
TUNNELS = entries(_RAW, "tunnel")


def flag_names(flags_raw: int) -> list[str]:
    """The IFF_* names set in ``flags_raw``, and "unknown:0x..." for the bits left."""
    names = [name for bit, name in IFF_FLAGS if flags_raw & bit]
    rest = flags_raw & ~sum(bit for bit, _ in IFF_FLAGS)
    return [*names, f"unknown:{rest:#x}"] if rest else names


class TunDeviceDetector:
    rule = RULE

    def __init__(self, max_seen: int = SEEN_MAX) -> None:
        self._seen: OrderedDict[tuple[int, str, str], None] = OrderedDict()
        self._max = max_seen

    def detect(self, event: Event, state: State) -> list[Finding]:
        if not isinstance(event, TunEvent):
            return []
        prog = program(state.processes.get(event.tgid), event.comm, MULTICALL)
        tunnel = first(TUNNELS, prog)
        if tunnel is None and first(ALLOWED, prog) is not None:
            return []
        # One alert per process and interface: QEMU-style multiqueue attaches issue TUNSETIFF once per queue.
        key = (event.tgid, prog.name, event.ifname)
        if key in self._seen:
            return []
        self._seen[key] = None
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
        why = (
            f"{prog.name} is a known tunnel tool: {tunnel.what}"
            if tunnel
            else "not a known VPN, VM or container network"
        )
        device = (
            f"{event.mode} device {event.ifname}" if event.ifname else f"{event.mode} device (name left to the kernel)"
        )
        summary = f"{event.comm} (pid {event.tgid}) opened a {device}: {why}"
        evidence = {
            "signature": "TUNSETIFF",
            "ifname": event.ifname,
            "mode": event.mode,
            "flags": flag_names(event.flags_raw),
            "flags_raw": event.flags_raw,
            "fd": event.fd,
            "exe": prog.exe,
            "program": prog.name,
            "identified_by": prog.by,
            "listed": "tunnel" if tunnel else None,
            "why": why,
        }
        return [Finding(RULE, event, summary, evidence, Severity.HIGH)]
