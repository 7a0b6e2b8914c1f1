# SPDX-License-Identifier: Apache-2.0
"""tunnel.tool: a tunnelling tool was started (by name or argv markers) or spoke its handshake on the wire."""

from __future__ import annotations

import dataclasses
import posixpath
import re
import shlex
import tomllib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from collector.detect import Finding, Rule, Severity, State
from collector.detect.protocols.dns import DnsError, parse, type_name
from collector.detect.protocols.tunnel_handshakes import classify
from collector.detect.tunnel.ssh_argv import exec_requests, first_proxy_command
from probes.events import DnsEvent, Event, ExecEvent, Kind, PayloadEvent

RULE = Rule(
    id="tunnel.tool",
    category="tunnel",
    severity=Severity.HIGH,
    description=(
        "A tunnelling tool from data/tunnel_tools.toml ran: chisel, frp, ngrok, cloudflared, bore, gost, ligolo "
        "and ligolo-ng, rathole, wstunnel, localtunnel, pwnat, httptunnel, corkscrew, proxytunnel, iodine, "
        "ptunnel(-ng), dnscat2, udp2raw, stunnel in client mode, VS Code tunnels, or socat/ncat/nc running a "
        "program over a socket or relaying two sockets. Matched at exec by the name of the exe, the exec'd path, "
        "argv[0] or an interpreted script, and by argv markers that name a tool or its mode when the binary is "
        "renamed (chisel R: remotes, gost rtcp://, wstunnel -R specs, cloudflared tunnel --url, udp2raw "
        "--raw-mode ...); and on the wire by a tool's first bytes (chisel's and wstunnel's WebSocket "
        "subprotocols, bore's control JSON, httptunnel's request, frp's TLS head byte, a TLS ClientHello from "
        "stunnel). Severity by what the tool does: reverse or exposing tunnels, covert transports and programs "
        "on sockets high; relays, local forwards and tunnel servers medium. Known false positives: sanctioned "
        "tunnels (support access, demos with ngrok or cloudflared), socat relays in test harnesses. Bypasses: a "
        "renamed binary whose mode is in a config file (frpc, rathole, stunnel), tools not in the catalogue, "
        "markers past the first 4 KiB of argv, handshakes inside TLS. Also, medium, a DNS query for a name under "
        "a tool's rendezvous domain (ngrok's connect.ngrok-agent.com, cloudflared's argotunnel.com and "
        "trycloudflare.com, bore.pub, loca.lt, devtunnels.ms, ...: `domains` in the data file), by any process: "
        "a renamed tool, or a client of someone's tunnel (a browser opening a trycloudflare.com link is a known "
        "false positive); one finding per process and tool. Names resolved over DNS-over-HTTPS or from a hosts "
        "file, and TLS SNI (no sensor yet), are not seen."
    ),
    tags=("maturity_stable", "host", "container", "process", "network", "mitre_command_and_control", "T1572"),
    consumes=frozenset({Kind.EXEC, Kind.PAYLOAD, Kind.DNS}),
)

# argv is at most probes.layout.ARGS_BUF (4 KiB) from the kernel; replays and tests may carry more.
MAX_ARGS = 512
MAX_ARG = 4096


@dataclass(frozen=True, slots=True)
class Mode:
    severity: Severity
    what: str
    command: frozenset[str] | None  # None: any; "" in it: no command word
    command_not: frozenset[str]
    sub_not: frozenset[str]
    match: tuple[re.Pattern[str], ...]  # each must match some argument
    unless: re.Pattern[str] | None
    renamed: bool


@dataclass(frozen=True, slots=True)
class Tool:
    id: str
    names: frozenset[str]
    prefixes: tuple[str, ...]
    commands: frozenset[str]
    subcommands: frozenset[str]
    modes: tuple[Mode, ...]
    domains: tuple[str, ...]  # rendezvous domains, for the DNS/SNI sensors (issue 13 item 5)


@dataclass(frozen=True, slots=True)
class Netcat:
    names: frozenset[str]
    with_value: frozenset[str]  # short letters that take a value
    long_with_value: frozenset[str]
    long_flags: frozenset[str]
    exec_short: frozenset[str]
    exec_long: frozenset[str]


@dataclass(frozen=True, slots=True)
class Socat:
    names: frozenset[str]
    with_value: frozenset[str]
    classes: dict[str, str]  # address keyword -> "program" | "tun" | "network" | "unix"


def _any(patterns: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.DOTALL)


def _mode(entry: dict[str, Any]) -> Mode:
    command = entry.get("command")
    unless = entry.get("unless")
    return Mode(
        Severity(entry["severity"]),
        entry["what"],
        frozenset(command) if command is not None else None,
        frozenset(entry.get("command_not", ())),
        frozenset(entry.get("sub_not", ())),
        tuple(_any(group) for group in entry.get("match", ())),
        _any(unless) if unless else None,
        entry.get("renamed", False),
    )


def _load() -> dict[str, Any]:
    raw = tomllib.loads(resources.files("collector.detect.data").joinpath("tunnel_tools.toml").read_text())
    tools = []
    for entry in raw["tool"]:
        names = entry["names"]
        tools.append(
            Tool(
                entry["id"],
                frozenset(n for n in names if not n.endswith("*")),
                tuple(n[:-1] for n in names if n.endswith("*")),
                frozenset(entry.get("commands", ())),
                frozenset(entry.get("subcommands", ())),
                tuple(_mode(m) for m in entry["mode"]),
                tuple(entry.get("domains", ())),
            )
        )
    netcats = []
    for entry in raw["netcat"]:
        spec = entry["optstring"]
        netcats.append(
            Netcat(
                frozenset(entry["names"]),
                frozenset(c for i, c in enumerate(spec) if i + 1 < len(spec) and spec[i + 1] == ":"),
                frozenset(entry.get("long_with_value", ())),
                frozenset(entry.get("long_flags", ())),
                frozenset(entry["exec_short"]),
                frozenset(entry.get("exec_long", ())),
            )
        )
    s = raw["socat"]
    classes = {kw: cls for cls in ("program", "tun", "network", "unix") for kw in s[cls]}
    socat = Socat(frozenset(s["names"]), frozenset(s["with_value"]), classes)
    return {
        "tools": tuple(tools),
        "netcats": tuple(netcats),
        "socat": socat,
        "multicall": frozenset(raw["multicall"]),
        "interpreters": re.compile(raw["interpreters"]),
    }


_CATALOGUE = _load()
TOOLS: tuple[Tool, ...] = _CATALOGUE["tools"]
NETCATS: tuple[Netcat, ...] = _CATALOGUE["netcats"]
SOCAT: Socat = _CATALOGUE["socat"]
_MULTICALL: frozenset[str] = _CATALOGUE["multicall"]
_INTERPRETERS: re.Pattern[str] = _CATALOGUE["interpreters"]

Entry = Tool | Netcat | Socat


def _index() -> tuple[dict[str, Entry], tuple[tuple[int, Tool], ...]]:
    by_name: dict[str, Entry] = dict.fromkeys(SOCAT.names, SOCAT)
    for nc in NETCATS:
        for name in nc.names:
            by_name.setdefault(name, nc)
    for tool in TOOLS:
        for name in tool.names:
            by_name.setdefault(name, tool)
    return by_name, tuple((i, t) for i, t in enumerate(TOOLS) if t.prefixes)


# Every exec on the node is looked up: a dict, not a scan of the catalogue (bench/run.py's throughput).
_BY_NAME, _PREFIXED = _index()
_BY_DOMAIN: dict[str, Tool] = {d.lower().rstrip("."): t for t in TOOLS for d in t.domains}
DOMAIN_SEEN_MAX = 4096  # (process, tool) pairs a rendezvous lookup was raised for: oldest forgotten first


def rendezvous(name: str) -> tuple[str, Tool] | None:
    """The rendezvous domain ``name`` is or is under, and its tool: a suffix match on whole labels."""
    labels = name.lower().rstrip(".").split(".")
    for i in range(len(labels)):
        if tool := _BY_DOMAIN.get(".".join(labels[i:])):
            return ".".join(labels[i:]), tool
    return None
_TOOL_ORDER = {id(t): i for i, t in enumerate(TOOLS)}


def lookup(name: str) -> Entry | None:
    """The catalogue entry a program name (a basename) is, if any: socat, then the netcats, then the tools in
    catalogue order (a tool by its name or a name prefix, whichever comes first)."""
    entry = _BY_NAME.get(name)
    if not isinstance(entry, Tool) and entry is not None:
        return entry
    at = _TOOL_ORDER[id(entry)] if entry is not None else len(TOOLS)
    for i, tool in _PREFIXED:
        if i < at and name.startswith(tool.prefixes):
            return tool
    return entry


def locate(event: ExecEvent, args: Sequence[str]) -> tuple[Entry, Sequence[str]] | None:
    """The catalogue entry this exec runs and its argv from the tool's argv[0] on.

    As collector/detect/tunnel/ssh.py client_argv: a multi-call binary names the tool in argv[1]; for a
    script the kernel runs [interpreter, (its argument), script path, argv[1:]...]; an interpreter named
    in argv (ruby dnscat2.rb, npx localtunnel) runs its first or second argument; else the exe, the
    exec'd path, argv[0].
    """
    if len(args) > 1 and posixpath.basename(args[0]) in _MULTICALL and (entry := lookup(args[1])):
        return entry, args[1:]
    if script := lookup(posixpath.basename(event.filename)):
        for i in (1, 2):
            if len(args) > i and args[i] == event.filename:
                return script, args[i:]
    if args and _INTERPRETERS.fullmatch(posixpath.basename(args[0])):
        for i in (1, 2):
            if len(args) > i and (entry := lookup(posixpath.basename(args[i]))):
                return entry, args[i:]
    for path in (event.exe, event.filename, args[0] if args else None):
        if path and (entry := lookup(posixpath.basename(path))):
            return entry, args
    return None


@dataclass(frozen=True, slots=True)
class Match:
    tool: str
    severity: Severity
    what: str
    markers: tuple[str, ...]  # the arguments that decided it


def _first(args: Sequence[str], words: frozenset[str], start: int = 0) -> int | None:
    return next((i for i in range(start, len(args)) if args[i] in words), None)


def match_modes(tool: Tool, args: Sequence[str], renamed: bool) -> Match | None:
    """The first of the tool's modes that ``args`` (argv[1:]) satisfy; with ``renamed`` only modes marked so.

    Named, the command is the first argument that is one of the tool's commands (options may come first);
    renamed, it must be the first argument that is not an option, as the tools' own parsers take it.
    """
    at = _first(args, tool.commands) if tool.commands else None
    if renamed and at is not None and any(not a.startswith("-") for a in args[:at]):
        at = None
    command = args[at] if at is not None else ""
    sub_at = _first(args, tool.subcommands, at + 1) if at is not None and tool.subcommands else None
    sub = args[sub_at] if sub_at is not None else None
    for mode in tool.modes:
        if renamed and not mode.renamed:
            continue
        if mode.command is not None and command not in mode.command:
            continue
        if command in mode.command_not or (sub is not None and sub in mode.sub_not):
            continue
        if mode.unless is not None and any(mode.unless.fullmatch(a) for a in args):
            continue
        markers = []
        for group in mode.match:
            hit = next((a for a in args if group.fullmatch(a)), None)
            if hit is None:
                break
            markers.append(hit)
        else:
            return Match(tool.id, mode.severity, mode.what, (command, *markers) if command else tuple(markers))
    return None


def _getopt(args: Sequence[str], nc: Netcat) -> list[tuple[str, str | None]]:
    """(option, value) as GNU getopt_long reads argv[1:]: options anywhere before ``--``, long ones by prefix."""
    found: list[tuple[str, str | None]] = []
    longs = nc.long_with_value | nc.long_flags
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            full = name if name in longs else next(iter(c for c in longs if c.startswith(name)), None)
            if full is None or (name not in longs and sum(c.startswith(name) for c in longs) > 1):
                continue  # unknown or ambiguous: getopt refuses it
            if full in nc.long_with_value and not eq:
                if i >= len(args):
                    break
                value, i = args[i], i + 1
            found.append(("--" + full, value if full in nc.long_with_value else None))
        elif arg.startswith("-") and len(arg) > 1:
            for j, letter in enumerate(arg[1:], 1):
                if letter in nc.with_value:
                    value = arg[j + 1 :]
                    if not value:
                        if i >= len(args):
                            break
                        value, i = args[i], i + 1
                    found.append(("-" + letter, value))
                    break
                found.append(("-" + letter, None))
    return found


def match_netcat(nc: Netcat, args: Sequence[str]) -> Match | None:
    """A netcat that runs a program on its socket (high) or relays sockets as a broker or proxy (medium)."""
    opts = _getopt(args, nc)
    names = {o for o, _v in opts}
    listen = "-l" in names or "--listen" in names
    for opt, value in opts:
        if opt[1:] in nc.exec_short or opt[2:] in nc.exec_long:
            shell = "a bind shell" if listen else "a reverse shell"
            what = f"netcat runs a program on its socket ({opt} {value}): {shell} or a relay of one"
            return Match("netcat", Severity.HIGH, what, (opt, value or ""))
    if "--broker" in names and "--chat" not in names and "--talk" not in names:
        return Match("netcat", Severity.MEDIUM, "ncat connection broker: relays between its clients", ("--broker",))
    if listen and "--proxy-type" in names:
        return Match("netcat", Severity.MEDIUM, "ncat proxy server (-l --proxy-type)", ("--proxy-type",))
    return None


_KEYWORD = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9-]*)(?=[:,]|$)")
_RANK = {"program": 4, "tun": 3, "network": 2, "unix": 1, "local": 0}


def _address(addr: str) -> tuple[str, str]:
    """(class, address) of one socat address; of a dual ``A!!B`` the stronger half."""
    halves = [h for h in addr.split("!!", 1) if h] or [addr]
    best = ("local", addr)
    for half in halves:
        m = _KEYWORD.match(half)
        cls = SOCAT.classes.get(m.group(1).upper(), "local") if m else "local"
        if _RANK[cls] > _RANK[best[0]]:
            best = (cls, half)
    return best


def match_socat(args: Sequence[str]) -> Match | None:
    """socat running a program or a tun device on a network socket (high), or relaying two sockets (medium)."""
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "-":
        opt = args[i]
        i += 2 if opt in SOCAT.with_value else 1  # -b 8192 (also -b8192, which is one argument)
    addresses = args[i:]
    if len(addresses) != 2:
        return None  # socat refuses to run
    (c1, a1), (c2, a2) = _address(addresses[0]), _address(addresses[1])
    classes = {c1, c2}
    if "network" in classes and classes & {"program", "tun"}:
        prog = a1 if c1 in ("program", "tun") else a2
        kind = "a tun device (a VPN)" if "tun" in classes else "a program"
        return Match("socat", Severity.HIGH, f"socat runs {kind} on a network socket: {prog}", (a1, a2))
    if "network" in classes and classes <= {"network", "unix"}:
        return Match("socat", Severity.MEDIUM, "socat relays two sockets", (a1, a2))
    return None


def _bounded(args: Sequence[str]) -> tuple[str, ...]:
    return tuple(a[:MAX_ARG] for a in args[:MAX_ARGS])


def _renamed_index() -> tuple[tuple[int, ...], dict[str, tuple[int, ...]]]:
    always: list[int] = []
    by_command: dict[str, list[int]] = {}
    for i, tool in enumerate(TOOLS):
        renamed = [m for m in tool.modes if m.renamed]
        if any(m.command is None for m in renamed):
            always.append(i)
            continue
        for word in {w for m in renamed for w in m.command or ()}:
            by_command.setdefault(word, []).append(i)
    return tuple(always), {w: tuple(ix) for w, ix in by_command.items()}


# Renamed, a tool's command must be argv's first non-option argument (match_modes): a tool whose renamed modes
# all name commands can match only when that argument is one of them; the others are always tried.
_RENAMED_ALWAYS, _RENAMED_BY_COMMAND = _renamed_index()


def _renamed_candidates(first: str) -> list[Tool]:
    """The tools a renamed binary whose first non-option argument is ``first`` may be, in catalogue order."""
    return [TOOLS[i] for i in sorted({*_RENAMED_ALWAYS, *_RENAMED_BY_COMMAND.get(first, ())})]


def identify(event: ExecEvent) -> tuple[Match, bool] | None:
    """What tunnelling tool this exec runs and in which mode, and whether it was known by argv markers alone."""
    args = _bounded(event.args)
    found = locate(event, args)
    if found is not None:
        entry, argv = found
        if isinstance(entry, Socat):
            return _named(match_socat(argv[1:]))
        if isinstance(entry, Netcat):
            return _named(match_netcat(entry, argv[1:]))
        return _named(match_modes(entry, argv[1:], renamed=False))
    rest = args[1:]
    first = next((a for a in rest if not a.startswith("-")), "")
    for tool in _renamed_candidates(first):
        if match := match_modes(tool, rest, renamed=True):
            return match, True
    if (match := match_socat(rest)) and all(":" in a or "," in a for a in match.markers):
        return match, True  # socat's address syntax (TCP:host:port EXEC:...) names it
    return None


def _named(match: Match | None) -> tuple[Match, bool] | None:
    return (match, False) if match is not None else None


class ToolDetector:
    rule = RULE

    def __init__(self) -> None:
        self._looked_up: OrderedDict[tuple[int, str], None] = OrderedDict()

    def detect(self, event: Event, state: State) -> list[Finding]:
        if isinstance(event, ExecEvent):
            return self._exec(event)
        if isinstance(event, PayloadEvent):
            return self._payload(event, state)
        if isinstance(event, DnsEvent) and event.direction == "query":
            return self._lookup(event)
        return []

    def _lookup(self, event: DnsEvent) -> list[Finding]:
        try:
            questions = parse(event.data).questions
        except DnsError:
            return []  # counted by the pipeline
        for question in questions:
            found = rendezvous(question.name)
            if found is None:
                continue
            domain, tool = found
            key = (event.tgid, tool.id)
            if key in self._looked_up:
                self._looked_up.move_to_end(key)
                return []
            self._looked_up[key] = None
            while len(self._looked_up) > DOMAIN_SEEN_MAX:
                self._looked_up.popitem(last=False)
            summary = (
                f"{event.comm} (pid {event.tgid}) looked up {question.name}, under {tool.id}'s rendezvous domain "
                f"{domain}"
            )
            evidence = {
                "signature": f"{tool.id} rendezvous domain",
                "tool": tool.id,
                "query": question.name,
                "qtype": type_name(question.qtype),
                "domain": domain,
                "server": event.server,
            }
            return [Finding(RULE, event, summary, evidence, Severity.MEDIUM)]
        return []

    def _exec(self, event: ExecEvent) -> list[Finding]:
        found = identify(event)
        if found is None:
            return self._proxy_command(event)
        match, renamed = found
        how = " (renamed binary, by its argv)" if renamed else ""
        summary = f"{event.comm} (pid {event.tgid}) started a tunnelling tool{how}: {match.what}"
        evidence = {
            "signature": f"{match.tool} argv",
            "tool": match.tool,
            "mode": match.what,
            "markers": list(match.markers),
            "renamed": renamed,
            "args_truncated": event.args_truncated,
        }
        return [Finding(RULE, event, summary, evidence, match.severity)]

    def _proxy_command(self, event: ExecEvent) -> list[Finding]:
        """An SSH client whose ProxyCommand (argv or config) runs a tunnelling tool: that tool's rule, raised on
        the client at its exec (issue 13), before ssh runs the command (the tool's own exec is judged too)."""
        asked = exec_requests(event)
        command = first_proxy_command(asked[1]) if asked is not None else None
        if not command:
            return []
        try:
            words = shlex.split(command)  # ssh runs it with `$SHELL -c "exec COMMAND"` (sshconnect.c)
        except ValueError:
            return []  # unbalanced quotes: the shell refuses it too
        if words[:1] == ["exec"]:
            words = words[1:]
        if not words:
            return []
        inner = dataclasses.replace(event, filename=words[0], args=tuple(words), exe=None)
        found = identify(inner)
        if found is None:
            return []
        match, _renamed = found
        summary = (
            f"{event.comm} (pid {event.tgid}) connects through a tunnelling tool as its ProxyCommand: "
            f"{match.what}"
        )
        evidence = {
            "signature": f"{match.tool} as ssh ProxyCommand",
            "tool": match.tool,
            "mode": match.what,
            "markers": list(match.markers),
            "proxy_command": command,
            "renamed": False,
            "args_truncated": event.args_truncated,
        }
        return [Finding(RULE, event, summary, evidence, match.severity)]

    def _payload(self, event: PayloadEvent, state: State) -> list[Finding]:
        proc = state.processes.get(event.tgid)
        paths = (proc.exe, proc.args[0] if proc.args else None) if proc else ()
        hs = classify(event.data, event.truncated, frozenset(posixpath.basename(p) for p in paths if p))
        if hs is None:
            return []
        summary = (
            f"{event.comm} (pid {event.tgid}) spoke a tunnelling tool's handshake to "
            f"{event.daddr}:{event.dport}: {hs.what}"
        )
        evidence = {
            "signature": f"{hs.tool} handshake",
            "tool": hs.tool,
            "handshake": hs.id,
            "payload_head": event.data.decode("utf-8", "backslashreplace"),
            "payload_truncated": event.truncated,
            "syscall": event.syscall,
        }
        return [Finding(RULE, event, summary, evidence, Severity(hs.severity))]
