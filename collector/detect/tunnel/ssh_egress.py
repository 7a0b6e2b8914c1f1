# SPDX-License-Identifier: Apache-2.0
"""tunnel.ssh_egress: a connection a process opened speaks SSH, and it is no ssh client or the port is not 22."""

from __future__ import annotations

from collector.detect import Finding, Rule, Severity, State
from collector.detect.protocols.ssh import Identification, parse
from collector.detect.tunnel.ssh import is_ssh_client
from probes.events import Event, Kind, PayloadEvent

RULE = Rule(
    id="tunnel.ssh_egress",
    category="tunnel",
    severity=Severity.HIGH,
    description=(
        "The first bytes a process sent on a TCP connection it opened are an SSH identification "
        "(RFC 4253 section 4.2: SSH-2.0-, or SSH-1.99-, then the implementation: OpenSSH_9.2p1, paramiko_2.12.0, "
        "Go, libssh_0.10.4, AsyncSSH_2.10.1, JSCH-0.1.55, ...), read as OpenSSH reads it (LF without CR, any "
        "2.x version), whole or cut, and either the process is not an SSH client binary (ssh, dbclient, plink, "
        "by exe or argv[0], sending its own implementation) or the port is not 22. Catches SSH libraries "
        "(paramiko, asyncssh, Go's x/crypto/ssh, libssh, JSch, russh), renamed or copied ssh binaries, a process "
        "named ssh that sends another implementation, ssh to a non-standard port, and SSH servers that dial out "
        "(reverse-connect shells send their banner on a connection they opened). An ssh client binary to port 22 "
        "raises nothing here: its forwards are the argv and config rules' business (tunnel.ssh_reverse, "
        "tunnel.ssh_forward). Only connections the process opened are seen, so sshd's own banner on an accepted "
        "connection never reaches this rule. Known false positives: git, CI and deploy tools built on an SSH "
        "library, to port 22 as well (go-git in Flux or Gitea mirroring, JGit/Apache MINA in Jenkins or "
        "Gerrit replication, the GitLab runner's SSH executor, Ansible with connection=paramiko, Fabric, "
        "Terraform's remote-exec); there is no allow-list yet, so each connection is one alert: library SSH "
        "opens the same forwards ssh -R does, and nothing else on the node tells them apart. Also ssh to "
        "bastions or git hosts on ports other than 22 (GitHub's ssh.github.com:443, GitLab's altssh:443). "
        "Bypasses: SSH inside TLS, a WebSocket or an HTTP CONNECT/SOCKS proxy (the first bytes are the "
        "wrapper's: stunnel, chisel, wstunnel, websocat, corkscrew), an identification split over sends "
        "whose first is shorter than SSH-2.0- (only the first send is captured), lines before it to a server "
        "that skips them (paramiko's server does, OpenSSH's does not), a server patched to take another "
        "prefix, an SSH library that forges OpenSSH's identification in a process named ssh going to port "
        "22, sockets connected by another process, io_uring, sendfile and sendmmsg sends."
    ),
    tags=("maturity_stable", "host", "container", "network", "mitre_command_and_control", "T1572"),
    consumes=frozenset({Kind.PAYLOAD}),
)

# What the ssh client binaries send as softwareversion (ssh_clients.toml names the binaries):
# OpenSSH kex.c "SSH-%d.%d-%.100s" with SSH_VERSION "OpenSSH_9.2p1" (also "OpenSSH_for_Windows_9.5");
# dropbear sysoptions.h LOCAL_IDENT "SSH-2.0-dropbear" IDENT_VERSION_PART; PuTTY's "PuTTY_Release_0.78"
# (its event log: "We claim version: SSH-2.0-PuTTY_Release_0.78"; snapshots send PuTTY_Snapshot_...).
CLIENT_IMPLEMENTATIONS = ("OpenSSH_", "dropbear", "PuTTY_")
SSH_PORT = 22


def _destination(event: PayloadEvent) -> str:
    return f"[{event.daddr}]:{event.dport}" if event.family == "ipv6" else f"{event.daddr}:{event.dport}"


class SshEgressDetector:
    rule = RULE

    def detect(self, event: Event, state: State) -> list[Finding]:
        if not isinstance(event, PayloadEvent):
            return []
        ident = parse(event.data)
        if ident is None:
            return []
        proc = state.processes.get(event.tgid)
        named = proc is not None and is_ssh_client(proc.exe, proc.args)
        ssh_client = named and ident.softwareversion.startswith(CLIENT_IMPLEMENTATIONS)
        if ssh_client and event.dport == SSH_PORT:
            return []
        summary = (
            f"{event.comm} (pid {event.tgid}) speaks SSH to {_destination(event)} "
            f"({ident.softwareversion or 'implementation cut off'}): {_why(named, ssh_client, ident)}"
        )
        evidence = {
            "signature": f"ssh identification SSH-{ident.protoversion}",
            "identification": {
                "protoversion": ident.protoversion,
                "software": ident.softwareversion,
                "comments": ident.comments,
                "complete": ident.complete,
            },
            "ssh_client": ssh_client,
            "payload_head": event.data.decode("utf-8", "backslashreplace"),
            "payload_truncated": event.truncated,
            "syscall": event.syscall,
        }
        return [Finding(RULE, event, summary, evidence, Severity.HIGH)]


def _why(named: bool, ssh_client: bool, ident: Identification) -> str:
    if ssh_client:
        return "an SSH client on a port other than 22"
    if named:
        return f"named as an SSH client, but {ident.softwareversion or 'its identification'} is not one's"
    return "not an SSH client binary"
