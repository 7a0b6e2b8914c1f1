# SPDX-License-Identifier: Apache-2.0
"""tunnel.ssh_reverse: an SSH client was started with a remote (reverse) port forward."""

from __future__ import annotations

from collector.detect import Finding, Rule, Severity, State
from collector.detect.tunnel.ssh_argv import (
    MAX_QUOTED,
    PERMIT_REMOTE_OPEN,
    REMOTE,
    REMOTE_DYNAMIC,
    exec_forwards,
    forward_evidence,
)
from probes.events import Event, ExecEvent, Kind

RULE = Rule(
    id="tunnel.ssh_reverse",
    category="tunnel",
    severity=Severity.HIGH,
    description=(
        "An SSH client (ssh, autossh, dbclient, plink) was exec'd with a remote port forward, which opens a "
        "listener on the far host into this node: -R in any spelling (-R spec, -Rspec, bundled as in -fNR spec, "
        "after the host), -R with a port only (a SOCKS proxy on the far side into this node's networks), "
        "-o RemoteForward in any spelling (-o RemoteForward=..., -oRemoteForward ..., any case, quoted words), "
        "and autossh -M PORT or AUTOSSH_PORT=PORT in its environment, whose monitor loop is a real remote forward "
        "(PORT:127.0.0.1:PORT+1). The argv is "
        "parsed the way each client parses it (OpenSSH's getopt and its re-parse after the host, autossh's "
        "rebuilt ssh argv, dropbear's and PuTTY's own loops), so '-p 22R', a -R inside the remote command, "
        "a command line the client rejects (bad spec, -G, -V, -O exit/cancel) and forwards cleared by "
        "ClearAllForwardings (set by -W and by scp/sftp) do not match. RemoteForward from ssh config files "
        "counts too: read at exec from the client's own root (-F FILE, else ~/.ssh/config of its uid's home "
        "and /etc/ssh/ssh_config, with Include, Host and Match host blocks for the destination; argv first, "
        "forwards accumulate), each forward's evidence naming its file and line. sshd is not a client: its "
        "re-exec flag -R is ignored. Evidence adds PermitRemoteOpen and the first ProxyCommand as written. "
        "Known false positives: sanctioned reverse tunnels (support access, CI runners), autossh -M "
        "monitoring loops, a RemoteForward in a Match block whose other criteria (user, exec, localnetwork) "
        "are taken to hold. Bypasses: a config "
        "file over 256 KiB, past 64 files or 16 Include levels, or changed between exec and its reading, or "
        "a client gone before it is read; an ssh binary copied under another name; "
        "SSH libraries (paramiko, golang.org/x/crypto) and other tunnel tools; a forward past the first 4 KiB "
        "of argv; forwards added later through a ControlMaster socket or the ~C escape."
    ),
    tags=("maturity_stable", "host", "container", "process", "mitre_command_and_control", "T1572"),
    consumes=frozenset({Kind.EXEC}),
)

_REVERSE = frozenset({REMOTE, REMOTE_DYNAMIC})


class SshReverseDetector:
    rule = RULE

    def detect(self, event: Event, state: State) -> list[Finding]:
        if not isinstance(event, ExecEvent):
            return []
        found = exec_forwards(event, _REVERSE)
        if found is None:
            return []
        client, asked, forwards = found
        specs = ", ".join(r.spec for r in forwards[:MAX_QUOTED])
        summary = f"{event.comm} (pid {event.tgid}) opened a reverse SSH tunnel: remote forward {specs}"
        permit = [r.spec for r in asked if r.kind == PERMIT_REMOTE_OPEN][:MAX_QUOTED]
        evidence = forward_evidence("ssh remote forward", event, client, asked, forwards, permit_remote_open=permit)
        return [Finding(RULE, event, summary, evidence, Severity.HIGH)]
