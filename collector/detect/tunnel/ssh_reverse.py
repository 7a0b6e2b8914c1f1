# SPDX-License-Identifier: Apache-2.0
"""tunnel.ssh_reverse: an SSH client was started with a remote (reverse) port forward."""

from __future__ import annotations

import re
from collections.abc import Sequence

from collector.detect import Finding, Rule, Severity, State
from collector.detect.tunnel.ssh import Client, client_argv
from probes.events import Event, ExecEvent, Kind

RULE = Rule(
    id="tunnel.ssh_reverse",
    category="tunnel",
    severity=Severity.HIGH,
    description=(
        "An SSH client (ssh, autossh, dbclient, plink) was exec'd with a remote port forward: "
        "-R in any spelling (-R spec, -Rspec, bundled as in -fNR spec, after the host) or "
        "-o RemoteForward in any spelling (-o RemoteForward=..., -oRemoteForward ..., any case). "
        "The argv is parsed the way the client parses it, so '-p 22R' or a -R inside the remote "
        "command does not match. sshd is not a client: its re-exec flag -R is ignored. Known "
        "false positives: sanctioned reverse tunnels (support access, CI runners). Bypasses: "
        "RemoteForward in ~/.ssh/config or a -F file, an ssh binary copied under another name, SSH libraries "
        "(paramiko, golang.org/x/crypto) "
        "and other tunnel tools, a forward past the first 4 KiB of argv."
    ),
    tags=("maturity_stable", "host", "container", "process", "mitre_command_and_control", "T1572"),
    consumes=frozenset({Kind.EXEC}),
)


_OPTION_SPLIT = re.compile(r"[\s=]+")


def _remote_forward_option(value: str) -> str | None:
    """The forward spec if ``-o value`` sets RemoteForward (key case-insensitive)."""
    parts = _OPTION_SPLIT.split(value.strip(), maxsplit=1)
    key = parts[0]
    rest = parts[1] if len(parts) > 1 else ""
    return rest if key.lower() == "remoteforward" else None


def remote_forwards(args: Sequence[str], client: Client) -> list[tuple[str, str]]:
    """(argv as written, forward spec) for each remote forward that argv[1:] asks for."""
    if client.style == "words":
        return _words(args, client)
    found: list[tuple[str, str]] = []
    i, host_seen = 1, False
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break  # the host and the remote command follow: no more options
        if not arg.startswith("-") or arg == "-":
            if host_seen or not client.options_after_host:
                break  # the remote command starts here
            host_seen = True
            i += 1
            continue
        j = 1
        while j < len(arg):
            letter = arg[j]
            if letter in client.with_value:
                value, spelling = arg[j + 1 :], arg
                if not value:
                    if i + 1 >= len(args):
                        return found  # option without its value: the client refuses to run
                    i += 1
                    value, spelling = args[i], f"{arg} {args[i]}"
                if letter == "R":
                    found.append((spelling, value))
                elif letter == "o" and (spec := _remote_forward_option(value)):
                    found.append((spelling, spec))
                break
            j += 1  # a flag without a value; unknown letters are taken as flags too
        i += 1
    return found


def _words(args: Sequence[str], client: Client) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    i = 1
    while i < len(args):
        word = args[i]
        if word in client.with_value and i + 1 < len(args):
            if word == "-R":
                found.append((f"-R {args[i + 1]}", args[i + 1]))
            elif word == "-o" and (spec := _remote_forward_option(args[i + 1])):
                found.append((f"-o {args[i + 1]}", spec))
            i += 2
            continue
        i += 1
    return found


class SshReverseDetector:
    rule = RULE

    def detect(self, event: Event, state: State) -> list[Finding]:
        if not isinstance(event, ExecEvent):
            return []
        found = client_argv(event)
        if found is None:
            return []
        client, argv = found
        forwards = remote_forwards(argv, client)
        if not forwards:
            return []
        specs = ", ".join(spec for _s, spec in forwards)
        summary = f"{event.comm} (pid {event.tgid}) opened a reverse SSH tunnel: remote forward {specs}"
        evidence = {
            "signature": "ssh remote forward",
            "forwards": [{"argv": s, "spec": spec} for s, spec in forwards],
            "args_truncated": event.args_truncated,
        }
        return [Finding(RULE, event, summary, evidence)]
