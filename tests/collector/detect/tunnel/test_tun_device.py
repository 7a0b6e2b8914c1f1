# SPDX-License-Identifier: Apache-2.0
"""tunnel.tun_device on the TUNSETIFF calls real VPNs, VM monitors, rootless networks and tunnel tools make."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.detect import Finding, Severity, State
from collector.detect.tunnel.tun_device import ALLOWED, TUNNELS, TunDeviceDetector, flag_names
from collector.enrich.process import ProcessTable
from probes.events import TunEvent
from tests.factories import common, exec_event, proc_event

# include/uapi/linux/if_tun.h
IFF_TUN, IFF_TAP, IFF_NO_PI, IFF_MULTI_QUEUE, IFF_VNET_HDR = 0x1, 0x2, 0x1000, 0x100, 0x4000
TUN = IFF_TUN | IFF_NO_PI
TAP_VM = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR


def tun_event(ifname: str = "tun0", flags: int = TUN, **kw: Any) -> TunEvent:
    mode = {IFF_TUN: "tun", IFF_TAP: "tap"}.get(flags & 0x3, "unknown")
    return TunEvent(**common(**kw), fd=5, ifname=ifname, mode=mode, flags_raw=flags)


def run(exe: str | None, args: list[str], ifname: str = "tun0", flags: int = TUN) -> list[Finding]:
    """The findings for one process (exec'd with ``exe`` and ``args``) issuing one TUNSETIFF."""
    table = ProcessTable()
    table.apply(exec_event(args, exe=exe, pid=4242))
    comm = (exe or args[0]).rsplit("/", 1)[-1][:15]
    return TunDeviceDetector().detect(tun_event(ifname, flags, comm=comm), State(table))


# (exe, argv, ifname, flags): each from the tool's docs and the source file tun_allowed.toml names.
BENIGN = [
    ("/usr/sbin/openvpn", ["/usr/sbin/openvpn", "--config", "/etc/openvpn/client/corp.conf"], "tun0", TUN),
    ("/usr/sbin/openvpn", ["openvpn", "--mktun", "--dev", "tap7"], "tap7", IFF_TAP | IFF_NO_PI),
    ("/usr/bin/wireguard-go", ["wireguard-go", "wg0"], "wg0", TUN),
    (
        "/usr/sbin/tailscaled",
        [
            "/usr/sbin/tailscaled",
            "--state=/var/lib/tailscale/tailscaled.state",
            "--socket=/run/tailscale/tailscaled.sock",
            "--port=41641",
        ],
        "tailscale0",
        TUN,
    ),
    ("/usr/bin/netbird", ["/usr/bin/netbird", "service", "run", "--log-level", "info"], "wt0", TUN),
    ("/usr/sbin/zerotier-one", ["/usr/sbin/zerotier-one"], "ztabcdef12", IFF_TAP | IFF_NO_PI),
    ("/usr/local/bin/nebula", ["/usr/local/bin/nebula", "-config", "/etc/nebula/config.yml"], "nebula1", TUN),
    ("/bin/warp-svc", ["/bin/warp-svc"], "CloudflareWARP", TUN),
    ("/usr/lib/ipsec/charon", ["/usr/lib/ipsec/charon", "--use-syslog"], "ipsec0", TUN),
    ("/usr/sbin/openconnect", ["openconnect", "--protocol=gp", "vpn.example.com"], "", TUN),
    ("/usr/sbin/vpnc", ["vpnc", "/etc/vpnc/default.conf"], "tun0", TUN),
    ("/usr/lib/systemd/systemd-networkd", ["/usr/lib/systemd/systemd-networkd"], "tap-vm", TAP_VM),
    ("/usr/bin/ip", ["ip", "tuntap", "add", "dev", "tap0", "mode", "tap", "user", "1000"], "tap0", IFF_TAP),
    (
        "/usr/bin/slirp4netns",
        ["slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback", "4321", "tap0"],
        "tap0",
        IFF_TAP | IFF_NO_PI,
    ),
    (
        "/usr/bin/passt",
        ["/usr/bin/pasta", "--config-net", "-t", "auto", "-u", "auto", "--netns", "/run/user/1000/netns/netns-1"],
        "tap0",
        IFF_TAP | IFF_NO_PI,
    ),  # pasta -> passt: the exe is passt
    ("/usr/bin/passt.avx2", ["pasta.avx2", "--config-net"], "tap0", IFF_TAP | IFF_NO_PI),
    ("/usr/bin/rootlesskit", ["rootlesskit", "--net=vpnkit", "--copy-up=/etc", "dockerd"], "tap0", IFF_TAP),
    (
        "/usr/bin/qemu-system-x86_64",
        [
            "qemu-system-x86_64",
            "-enable-kvm",
            "-netdev",
            "tap,id=n0,ifname=tap0,script=no,vhost=on,queues=4",
            "-device",
            "virtio-net-pci,netdev=n0,mq=on",
        ],
        "tap0",
        TAP_VM | IFF_MULTI_QUEUE,
    ),
    (
        "/usr/lib/qemu/qemu-bridge-helper",
        ["/usr/lib/qemu/qemu-bridge-helper", "--use-vnet", "--br=br0", "--fd=12"],
        "",
        TAP_VM,
    ),
    ("/usr/sbin/libvirtd", ["/usr/sbin/libvirtd", "--timeout", "120"], "vnet3", TAP_VM),
    ("/usr/bin/firecracker", ["firecracker", "--api-sock", "/tmp/fc.sock"], "tap0", TAP_VM),
    ("/usr/bin/cloud-hypervisor", ["cloud-hypervisor", "--net", "tap=tap0,mac=,ip=,mask="], "tap0", TAP_VM),
    (
        "/usr/local/bin/containerd-shim-kata-v2",
        [
            "/usr/local/bin/containerd-shim-kata-v2",
            "-namespace",
            "k8s.io",
            "-address",
            "/run/containerd/containerd.sock",
            "-id",
            "3f2a",
        ],
        "tap0_kata",
        TAP_VM | IFF_MULTI_QUEUE,
    ),
    ("/bin/busybox", ["tunctl", "-t", "tap0"], "tap0", IFF_TAP),
]


@pytest.mark.parametrize(("exe", "args", "ifname", "flags"), BENIGN)
def test_vpns_vms_and_container_networks_raise_nothing(exe: str, args: list[str], ifname: str, flags: int) -> None:
    """Listed VPN clients, VM monitors and rootless container networks create tun/tap devices silently."""
    assert run(exe, args, ifname, flags) == []


# (exe, argv, ifname, flags, named): tunnel tools that open a tun device, from their READMEs.
ALERTS = [
    ("/usr/sbin/iodine", ["iodine", "-f", "-P", "secret", "t1.example.com"], "dns0", TUN, True),
    ("/usr/sbin/iodined", ["iodined", "-f", "-c", "-P", "secret", "10.53.0.1", "t1.example.com"], "dns0", TUN, True),
    ("/usr/sbin/hans", ["hans", "-c", "203.0.113.5", "-p", "pw"], "tun0", TUN, True),
    ("/opt/icmptunnel/icmptunnel", ["./icmptunnel", "-c", "203.0.113.5"], "tun0", IFF_TUN | IFF_NO_PI, True),
    ("/usr/bin/ssh", ["ssh", "-w", "0:0", "root@203.0.113.5"], "tun0", IFF_TUN, True),
    ("/usr/bin/ssh", ["ssh", "-o", "Tunnel=ethernet", "-w", "any", "203.0.113.5"], "", IFF_TAP, True),
    ("/usr/lib/openssh/sshd-session", ["sshd-session: root@notty"], "tun1", IFF_TUN, True),
    ("/usr/local/bin/ligolo-proxy", ["ligolo-proxy", "-selfcert", "-laddr", "0.0.0.0:11601"], "ligolo", TUN, True),
    ("/usr/bin/gost", ["gost", "-L", "tun://:8421/203.0.113.5:8421?net=192.168.123.2/24"], "", TUN, True),
    ("/usr/bin/socat", ["socat", "TCP:203.0.113.5:9000", "TUN:192.168.255.2/24,up"], "tun0", IFF_TUN, True),
    ("/usr/local/bin/sing-box", ["sing-box", "run", "-c", "/etc/sing-box/config.json"], "tun0", TUN, True),
    (
        "/usr/local/bin/tun2socks",
        ["tun2socks", "-device", "tun://tun0", "-proxy", "socks5://127.0.0.1:1080"],
        "tun0",
        TUN,
        True,
    ),
    (
        "/usr/local/bin/tinyvpn_amd64",
        ["./tinyvpn_amd64", "-c", "-r", "203.0.113.5:4096", "-k", "pw"],
        "tun100",
        TUN,
        True,
    ),
    ("/usr/bin/python3.11", ["python3", "tunnel.py"], "tun0", TUN, False),  # pytun / fcntl.ioctl
    ("/tmp/.cache/agent", ["/tmp/.cache/agent"], "", TUN, False),  # an implant
    ("/usr/sbin/pppd", ["pppd", "pty", "ssh host pppd notty"], "tun9", TUN, False),  # not listed
    # argv[0] is not trusted when the exe is known: `exec -a openvpn ./iodine`.
    ("/tmp/x", ["openvpn", "--config", "c.ovpn"], "tun0", TUN, False),
]


@pytest.mark.parametrize(("exe", "args", "ifname", "flags", "named"), ALERTS)
def test_tunnel_tools_and_unknown_programs_raise(
    exe: str, args: list[str], ifname: str, flags: int, named: bool
) -> None:
    """A tun/tap device opened by anything not listed is high; a known tunnel tool is named as one."""
    [finding] = run(exe, args, ifname, flags)
    assert finding.rule.id == "tunnel.tun_device" and finding.level is Severity.HIGH
    ev = finding.evidence
    assert ev["ifname"] == ifname and ev["flags_raw"] == flags and ev["exe"] == exe and ev["fd"] == 5
    assert (ev["listed"] == "tunnel") is named
    assert ev["why"] in finding.summary and "pid 4242" in finding.summary


def test_summary_and_decoded_flags() -> None:
    """The summary names the device and the tool; the flags are decoded by their if_tun.h names."""
    [f] = run("/usr/sbin/iodine", ["iodine", "t1.example.com"], "dns0", TUN)
    assert f.summary == "iodine (pid 4242) opened a tun device dns0: iodine is a known tunnel tool: iodine: IP over DNS"
    assert f.evidence["flags"] == ["IFF_TUN", "IFF_NO_PI"] and f.evidence["mode"] == "tun"
    [g] = run("/tmp/agent", ["agent"], "", IFF_TAP)
    assert "tap device (name left to the kernel)" in g.summary


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        (0x0001, ["IFF_TUN"]),
        (0x5102, ["IFF_TAP", "IFF_MULTI_QUEUE", "IFF_NO_PI", "IFF_VNET_HDR"]),
        (0x0841, ["IFF_TUN", "IFF_NO_CARRIER", "IFF_PERSIST"]),
        (0xA000, ["IFF_ONE_QUEUE", "IFF_TUN_EXCL"]),
        (0x0000, []),
        (0x1_0080, ["unknown:0x10080"]),  # IFF_BACKPRESSURE (proposed) and bits past 16
    ],
)
def test_flag_names(flags: int, names: list[str]) -> None:
    """ifr_flags decode to if_tun.h names, and bits with no name stay visible as unknown:0x..."""
    assert flag_names(flags) == names


def test_one_alert_per_process_and_interface() -> None:
    """Multiqueue attaches (one TUNSETIFF per queue) are one alert; another interface or process is another."""
    table = ProcessTable()
    table.apply(exec_event(["./agent"], exe="/tmp/agent", pid=4242))
    det, state = TunDeviceDetector(), State(table)
    out = [f for _ in range(4) for f in det.detect(tun_event("tap0", IFF_TAP | IFF_MULTI_QUEUE), state)]
    out += det.detect(tun_event("tap1"), state) + det.detect(tun_event("tap0", pid=4343), state)
    assert [(f.evidence["ifname"], f.event.tgid) for f in out] == [("tap0", 4242), ("tap1", 4242), ("tap0", 4343)]


def test_seen_is_bounded() -> None:
    """The dedupe memory forgets its oldest entries past its bound."""
    det, state = TunDeviceDetector(max_seen=2), State(ProcessTable())
    assert all(det.detect(tun_event(pid=p, comm="x"), state) for p in (1, 2, 3))
    assert det.detect(tun_event(pid=1, comm="x"), state)


def test_unknown_or_proc_seeded_process() -> None:
    """A process never seen is judged by comm (cut at 15); one seeded from /proc by its exe."""
    state = State(ProcessTable())
    assert TunDeviceDetector().detect(tun_event(comm="qemu-system-x86"), state) == []
    assert TunDeviceDetector().detect(tun_event(comm="containerd-shim"), state) == []
    [f] = TunDeviceDetector().detect(tun_event(comm="iodine"), state)
    assert f.evidence["identified_by"] == "comm" and f.evidence["listed"] == "tunnel"
    table = ProcessTable()
    table.apply(proc_event(4242, 1, ("/usr/sbin/tailscaled",), exe="/usr/sbin/tailscaled"))
    assert TunDeviceDetector().detect(tun_event("tailscale0", comm="tailscaled"), State(table)) == []


def test_data_file_is_well_formed() -> None:
    """Every entry has names; no name is both allowed and a known tunnel tool."""
    allowed = {n for e in ALLOWED for n in e.names.exact}
    tunnels = {n for e in TUNNELS for n in e.names.exact}
    assert allowed and tunnels and not allowed & tunnels
    assert all(e.names.exact or e.names.prefixes for e in ALLOWED + TUNNELS)


@given(
    ifname=st.text(max_size=16),
    flags=st.integers(0, 2**16 - 1),
    exe=st.none() | st.text(max_size=40),
    args=st.lists(st.text(max_size=20), max_size=3),
)
def test_any_tun_event_never_crashes(ifname: str, flags: int, exe: str | None, args: list[str]) -> None:
    """Any interface name, flags and process name gives zero or one finding, never an exception."""
    table = ProcessTable()
    table.apply(proc_event(4242, 1, tuple(args), exe=exe))
    assert len(TunDeviceDetector().detect(tun_event(ifname, flags), State(table))) <= 1
