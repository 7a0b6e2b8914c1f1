# SPDX-License-Identifier: Apache-2.0
"""tunnel.ssh_forward: an SSH client was started with a tun device, a SOCKS, local or stdio forward, or a jump host."""

from __future__ import annotations

from collector.detect import Finding, Rule, Severity, State
from collector.detect.tunnel.ssh_argv import (
    DYNAMIC,
    JUMP,
    LOCAL,
    MAX_QUOTED,
    STDIO,
    TUN,
    VPN,
    exec_forwards,
    forward_evidence,
)
from probes.events import Event, ExecEvent, Kind

# Severity by what the far side can reach. A tun device is a routed (or bridged) link both ways: the far host
# reaches any address this node can, as through a reverse forward, so it is high like tunnel.ssh_reverse; it
# lives here because it is not a port forward (it needs PermitTunnel on the server and a tun device here).
# SOCKS (-D) and sshuttle carry this node's connections out to anywhere, past egress policy: medium. A local or
# stdio forward reaches one fixed address, a jump host one more SSH hop: low.
SEVERITY: dict[str, Severity] = {
    TUN: Severity.HIGH,
    DYNAMIC: Severity.MEDIUM,
    VPN: Severity.MEDIUM,
    LOCAL: Severity.LOW,
    STDIO: Severity.LOW,
    JUMP: Severity.LOW,
}
_ORDER = list(Severity)

_NAMES = {
    TUN: "tun device",
    DYNAMIC: "SOCKS forward",
    VPN: "sshuttle VPN",
    LOCAL: "local forward",
    STDIO: "stdio forward",
    JUMP: "jump host",
}

RULE = Rule(
    id="tunnel.ssh_forward",
    category="tunnel",
    severity=Severity.HIGH,  # the highest a finding of this rule carries; each finding carries its own
    description=(
        "An SSH client (ssh, autossh, dbclient, plink) or sshuttle was exec'd asking for a tunnel other than a "
        "remote port forward (that is tunnel.ssh_reverse). Severity per finding, the highest among what was "
        "asked: high for a tun device (-w, -o Tunnel=yes|point-to-point|ethernet, -o TunnelDevice: a routed "
        "link both ways); medium for a SOCKS forward (-D, -o DynamicForward, plink -D) and for sshuttle (a VPN "
        "over SSH: this node's traffic to the listed subnets, 0/0 for all, leaves through the far host); low "
        "for a local forward (-L, -o LocalForward, autossh -M's local half), a stdio forward (-W, plink -nc, "
        "dbclient -B) and a jump host (-J, -o ProxyJump, dbclient a,b). Every spelling the client accepts "
        "is read as it reads it (bundled, glued, after the host, -o keys in any case with '=' or blanks); "
        "a command line the client rejects, -O control commands, forwards cleared by ClearAllForwardings "
        "(which -W sets) and Tunnel=no given first raise nothing. ProxyCommand (plink -proxycmd, dbclient -J) "
        "is evidence only: a tunnelling tool it runs is an exec of its own, judged by that tool's rule. "
        "Known false positives: developers' port forwards and bastion jumps; -o TunnelDevice without Tunnel "
        "opens a tun only if a config file sets Tunnel, and is reported as if it does. The same directives "
        "from ssh config files count too: read at exec from the client's own root (-F FILE, else "
        "~/.ssh/config of its uid's home and /etc/ssh/ssh_config, with Include, Host and Match host blocks "
        "for the destination; argv first, first value wins, forwards accumulate), each forward's evidence "
        "naming its file and line; Match criteria other than host/originalhost/all are taken to hold. "
        "Bypasses: sshuttle's @FILE arguments (not read yet); a config "
        "file over 256 KiB, past 64 files or 16 Include levels, changed between exec and its reading, or a "
        "client gone before it is read; a client copied under another name; SSH libraries; forwards past "
        "the first 4 KiB of argv or added later through a ControlMaster socket."
    ),
    tags=("maturity_stable", "host", "container", "process", "mitre_command_and_control", "T1572"),
    consumes=frozenset({Kind.EXEC}),
)


class SshForwardDetector:
    rule = RULE

    def detect(self, event: Event, state: State) -> list[Finding]:
        if not isinstance(event, ExecEvent):
            return []
        found = exec_forwards(event, SEVERITY)
        if found is None:
            return []
        client, asked, forwards = found
        severity = max((SEVERITY[r.kind] for r in forwards), key=_ORDER.index)
        what = ", ".join(f"{_NAMES[r.kind]} {r.spec}" for r in forwards[:MAX_QUOTED])
        summary = f"{event.comm} (pid {event.tgid}) opened an SSH tunnel: {what}"
        evidence = forward_evidence("ssh forward", event, client, asked, forwards)
        return [Finding(RULE, event, summary, evidence, severity)]
