# SPDX-License-Identifier: Apache-2.0
"""What an SSH client's argv asks for (forwards, tun devices, jumps), read the way that client reads it.

Pure and linear in the length of argv. A command line the client rejects (a bad
forward spec, an option without its value, -V, -G, -O exit) opens nothing, so
it yields nothing. Sources for each client's rules: data/ssh_clients.toml.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.detect.tunnel.ssh import CLIENTS, Client, client_argv, config_lines
from collector.detect.tunnel.ssh_config import (
    FLAG,
    TUNNEL_MODES,
    WHITESPACE,
    Refused,
    argv_split,
    fields,
    forward_ok,
    keyword,
    tun_device,
)
from probes.events import ExecEvent

# Request kinds.
REMOTE = "remote"  # -R / RemoteForward with a target: a listener on the far side into this node
REMOTE_DYNAMIC = "remote_dynamic"  # -R PORT / RemoteForward PORT: a SOCKS proxy on the far side into this node
TUN = "tun"  # -w / Tunnel / TunnelDevice: a layer-3 or layer-2 link between the two hosts
DYNAMIC = "dynamic"  # -D / DynamicForward: a local SOCKS proxy out through the far side
VPN = "vpn"  # sshuttle: this node's traffic to the given subnets routed out through the far side
LOCAL = "local"  # -L / LocalForward: a local listener to one address behind the far side
STDIO = "stdio"  # -W / plink -nc / dbclient -B: stdin/stdout to one address behind the far side
JUMP = "jump"  # -J / ProxyJump / dbclient a,b: the connection goes through other SSH hosts
PROXY_COMMAND = "proxy_command"  # ProxyCommand / plink -proxycmd / dbclient -J: a program carries the connection
PERMIT_REMOTE_OPEN = "permit_remote_open"  # PermitRemoteOpen: where a remote SOCKS forward may connect

_FORWARDS = frozenset({REMOTE, REMOTE_DYNAMIC, LOCAL, DYNAMIC, TUN})  # what ClearAllForwardings clears


@dataclass(frozen=True, slots=True)
class Request:
    argv: str  # as written in argv: "-R 8080:l:80", "-oRemoteForward=8 l:8", "-fNR 1:l:1"
    spec: str  # the value as the client reads it
    kind: str
    origin: str = ""  # "FILE:LINE" for a line from an ssh_config file; "" for argv


Config = Sequence[tuple[str, str]]  # ssh_config lines the client will apply, each with its "FILE:LINE"


def exec_requests(event: ExecEvent) -> tuple[Client, list[Request]] | None:
    """The SSH client an exec runs and everything its argv, then its recorded config lines, ask it to open."""
    found = client_argv(event)
    if found is None:
        return None
    client, argv = found
    return client, requests(client, argv, config_lines(event), event.environ)


def requests(
    client: Client, argv: Sequence[str], config: Config = (), environ: Sequence[str] = ()
) -> list[Request]:
    """Everything ``argv`` (from argv[0] on), then ``config``, asks ``client`` to open, in that order.

    ``config`` is read only by clients that read ssh_config (OpenSSH's -o): after argv, as ssh applies
    the command line before its files, so argv wins where the first value wins. ``environ`` (NAME=value)
    is read by autossh only.
    """
    if client.runs is not None:
        return _autossh(client, argv, config, environ)
    if client.style == "words":
        return _words(client, argv)
    if client.style == "argparse":
        return _sshuttle(client, argv)
    return _getopt_requests(client, argv, config)


def _getopt(client: Client, argv: Sequence[str]) -> tuple[list[tuple[str, str, str]], str | None] | None:
    """(option, value, spelling) for each option ``client`` gives a meaning to, and the host; None if refused.

    BSD getopt as OpenSSH ships it (openbsd-compat/getopt_long.c: no permutation): options stop at the
    host; with options_after_host they resume after it (ssh.c's "again:") until the remote command.
    """
    found: list[tuple[str, str, str]] = []
    host: str | None = None
    i, n = 1, len(argv)
    while i < n:
        arg = argv[i]
        if client.double_dash and arg == "--":
            break
        if not arg.startswith("-") or (client.double_dash and arg == "-"):
            if host is not None:
                break  # the remote command starts here
            host = arg
            if not client.options_after_host:
                break
            i += 1
            continue
        for j in range(1, len(arg)):
            letter = arg[j]
            if letter in client.with_value:
                value, spelling = arg[j + 1 :], arg
                if not value:
                    if i + 1 >= n:
                        return None  # an option without its value: the client refuses to run
                    i += 1
                    value, spelling = argv[i], f"{arg} {argv[i]}"
                if letter in client.options:
                    found.append((letter, value, spelling))
                break
            if letter in client.options:
                found.append((letter, "", arg))  # a flag; unknown letters are taken as flags too
        i += 1
    return found, host


@dataclass(slots=True)
class _State:
    """What one exec asks for, with OpenSSH's rules for how options combine (readconf.c)."""

    openssh: bool  # OpenSSH's forward spec forms, -o, -W clearing forwards
    found: list[Request] = field(default_factory=list)
    tun_on: bool | None = None  # the first of -w / Tunnel wins
    clear: bool | None = None  # the first ClearAllForwardings wins
    stdio: bool = False
    origin: str = ""  # where the options being read now come from ("" for argv)

    def add(self, spelling: str, spec: str, kind: str) -> None:
        self.found.append(Request(spelling, spec, kind, self.origin))

    def option(self, meaning: str, value: str, spelling: str) -> None:
        _OPTIONS[meaning](self, value, spelling)

    def resolve(self) -> list[Request]:
        clear = self.clear if self.clear is not None else (self.openssh and self.stdio)
        out: list[Request] = []
        proxy_set = jump_set = False  # options.proxy_command, options.jump_host
        for request in self.found:
            if (clear and request.kind in _FORWARDS) or (request.kind == TUN and self.tun_on is False):
                continue
            if request.kind == PROXY_COMMAND:
                if proxy_set:
                    continue  # the first value wins
                proxy_set = True
            elif request.kind == JUMP and self.openssh:
                # readconf.c parse_jump(): ignored once ProxyCommand or a jump is set; sets ProxyCommand "none".
                if proxy_set or jump_set:
                    continue
                jump_set = True
                proxy_set = request.spec.strip().lower() != "none"
            if request.kind in (PROXY_COMMAND, JUMP) and request.spec.strip().lower() == "none":
                continue
            out.append(request)
        return out


def _remote(state: _State, value: str, spelling: str) -> None:
    # ssh.c case 'R': a static forward, else (OpenSSH only) a dynamic one: a SOCKS proxy on the far side.
    if forward_ok(value, dynamic=False, remote=True):
        state.add(spelling, value, REMOTE)
    elif state.openssh and forward_ok(value, dynamic=True, remote=True):
        state.add(spelling, value, REMOTE_DYNAMIC)
    else:
        raise Refused("bad remote forwarding specification")


def _local(state: _State, value: str, spelling: str) -> None:
    if not forward_ok(value, dynamic=False, remote=False):
        raise Refused("bad local forwarding specification")
    state.add(spelling, value, LOCAL)


def _dynamic(state: _State, value: str, spelling: str) -> None:
    if not forward_ok(value, dynamic=True, remote=False):
        raise Refused("bad dynamic forwarding specification")
    # parse_forward() reads "-D LISTEN:/path" as a forward to a socket path, which ssh adds as a local one.
    found = fields(value) if state.openssh else None
    state.add(spelling, value, LOCAL if found and len(found) == 2 and found[1].ispath else DYNAMIC)


def _tun(state: _State, value: str, spelling: str) -> None:
    if not tun_device(value):
        raise Refused("bad tun device")
    if state.tun_on is None:
        state.tun_on = True  # ssh.c case 'w': Tunnel defaults to yes (point-to-point)
    state.add(spelling, value, TUN)


def _stdio(state: _State, value: str, spelling: str) -> None:
    ok = forward_ok(value, dynamic=True, remote=False) if state.openssh else ":" in value
    if not ok:
        raise Refused("bad stdio forwarding specification")
    state.stdio = True
    state.add(spelling, value, STDIO)


def _jump(state: _State, value: str, spelling: str) -> None:
    state.add(spelling, value, JUMP)


def _jump_option(state: _State, value: str, spelling: str) -> None:
    # ssh.c case 'J': fatal after another -J, a ProxyJump or a ProxyCommand.
    if state.openssh and any(r.kind in (JUMP, PROXY_COMMAND) for r in state.found):
        raise Refused("only a single -J, and not with ProxyCommand")
    state.add(spelling, value, JUMP)


def _proxy_command(state: _State, value: str, spelling: str) -> None:
    state.add(spelling, value, PROXY_COMMAND)


def _mux(state: _State, value: str, spelling: str) -> None:
    if value != "forward":
        raise Refused(f"-O {value}: a control command, no new forward")  # ssh.c case 'O'


def _exit(state: _State, value: str, spelling: str) -> None:
    raise Refused("the client prints and exits")


def _config(state: _State, value: str, spelling: str) -> None:
    parsed = keyword(value)
    if parsed is not None and (handler := _CONFIG.get(parsed[0])) is not None:
        handler(state, parsed[1], spelling)


def _words_of(rest: str, least: int) -> list[str]:
    # Extra words are not refused: OpenSSH 9.2 (Debian 12) ignores them; later releases reject the line.
    words = argv_split(rest)
    if len(words) < least or not words[0]:
        raise Refused("missing argument")  # readconf.c: "Missing argument", "Missing target argument"
    return words


def _cfg_remote(state: _State, rest: str, spelling: str) -> None:
    words = _words_of(rest, 1)
    if len(words) == 1 or not words[1]:
        if not forward_ok(words[0], dynamic=True, remote=True):
            raise Refused("bad forwarding specification")
        state.add(spelling, rest, REMOTE_DYNAMIC)
    elif forward_ok(f"{words[0]}:{words[1]}", dynamic=False, remote=True):
        state.add(spelling, rest, REMOTE)
    else:
        raise Refused("bad forwarding specification")


def _cfg_local(state: _State, rest: str, spelling: str) -> None:
    words = _words_of(rest, 2)
    if not forward_ok(f"{words[0]}:{words[1]}", dynamic=False, remote=False):
        raise Refused("bad forwarding specification")
    state.add(spelling, rest, LOCAL)


def _cfg_dynamic(state: _State, rest: str, spelling: str) -> None:
    words = _words_of(rest, 1)
    _dynamic(state, words[0], spelling)
    state.found[-1] = Request(spelling, rest, state.found[-1].kind, state.origin)


def _cfg_tunnel(state: _State, rest: str, spelling: str) -> None:
    mode = TUNNEL_MODES.get(_words_of(rest, 1)[0].lower())
    if mode is None:
        raise Refused("unsupported Tunnel value")
    if state.tun_on is None:
        state.tun_on = mode
    if mode:
        state.add(spelling, rest, TUN)


def _cfg_tunnel_device(state: _State, rest: str, spelling: str) -> None:
    if not tun_device(_words_of(rest, 1)[0]):
        raise Refused("bad tun device")
    state.add(spelling, rest, TUN)  # opens a tun only with Tunnel set: -w, -o Tunnel or a config file


def _cfg_clear(state: _State, rest: str, spelling: str) -> None:
    flag = FLAG.get(_words_of(rest, 1)[0].lower())
    if flag is None:
        raise Refused("bad ClearAllForwardings value")
    if state.clear is None:
        state.clear = flag


def _cfg_permit_remote_open(state: _State, rest: str, spelling: str) -> None:
    for word in argv_split(rest):
        state.add(spelling, word, PERMIT_REMOTE_OPEN)


def _cfg_command(handler: Callable[[_State, str, str], None]) -> Callable[[_State, str, str], None]:
    # ProxyCommand and ProxyJump take the rest of the line, past any blanks and '=' (readconf.c).
    return lambda state, rest, spelling: handler(state, rest.lstrip(WHITESPACE + "="), spelling)


_Handler = Callable[[_State, str, str], None]
_OPTIONS: dict[str, _Handler] = {
    "remote": _remote,
    "local": _local,
    "dynamic": _dynamic,
    "tun": _tun,
    "stdio": _stdio,
    "jump": _jump_option,
    "proxy_command": _proxy_command,
    "mux": _mux,
    "exit": _exit,
    "config": _config,
    "monitor": lambda state, value, spelling: None,  # autossh's own: see _autossh
}
_CONFIG: dict[str, _Handler] = {
    "remoteforward": _cfg_remote,
    "localforward": _cfg_local,
    "dynamicforward": _cfg_dynamic,
    "tunnel": _cfg_tunnel,
    "tunneldevice": _cfg_tunnel_device,
    "clearallforwardings": _cfg_clear,
    "permitremoteopen": _cfg_permit_remote_open,
    "proxycommand": _cfg_command(_proxy_command),
    "proxyjump": _cfg_command(_jump),
}


def _reads_ssh_config(client: Client) -> bool:
    return client.options.get("o") == "config"


def _getopt_requests(client: Client, argv: Sequence[str], config: Config) -> list[Request]:
    walked = _getopt(client, argv)
    if walked is None:
        return []
    options, host = walked
    state = _State(openssh=_reads_ssh_config(client))
    try:
        for letter, value, spelling in options:
            state.option(client.options[letter], value, spelling)
    except Refused:
        return []
    if _reads_ssh_config(client):
        for line, origin in config:
            state.origin = origin
            try:
                state.option("config", line, line)
            except Refused:
                continue  # ssh would exit on this line; taking the others is the safer reading
        state.origin = ""
    if client.multihop and host and "," in host:
        state.add(host, host, JUMP)  # dbclient user@a/22,user@b: through a, then to b
    return state.resolve()


def _words(client: Client, argv: Sequence[str]) -> list[Request]:
    """PuTTY plink: whole-word options, each value in the next word; options go on after the host."""
    state = _State(openssh=False)
    host_seen = False
    i, n = 1, len(argv)
    try:
        while i < n:
            word = argv[i]
            meaning = client.options.get(word)
            if word in client.with_value:
                if i + 1 >= n:
                    return []  # cmdline.c: "option requires an argument"
                if meaning is not None:
                    state.option(meaning, argv[i + 1], f"{word} {argv[i + 1]}")
                i += 2
                continue
            if word.startswith("-"):
                if meaning == "exit":
                    return []
            elif host_seen:
                break  # the remote command starts here
            else:
                host_seen = True
            i += 1
    except Refused:
        return []
    return state.resolve()


def _strip_f(arg: str, optstring: str) -> str:
    """autossh.c strip_arg(arg, 'f', OPTION_STRING), quirks included (after a removed 'f' one letter is skipped)."""
    if not arg.startswith("-") or len(arg) < 2:
        return arg
    chars = list(arg)
    k = 0
    while k < len(chars):
        at = optstring.find(chars[k])
        if at >= 0 and optstring[at + 1 : at + 2] == ":":
            break  # what follows is that option's value
        if chars[k] == "f":
            del chars[k]
        k += 1
    out = "".join(chars)
    return "" if out == "-" else out


def _monitor(value: str, spelling: str) -> list[Request]:
    """autossh -M PORT[:ECHO]: ssh gets -L PORT:127.0.0.1:PORT (:ECHO), and without ECHO -R PORT:127.0.0.1:PORT+1."""
    port, _, echo = value.partition(":")
    wp, ep = _strtoul(port), _strtoul(echo) if echo else 0
    if wp is None or ep is None or wp > 65534:
        return []  # autossh: "invalid port", "out of range": it exits
    if wp == 0:
        return []  # monitoring off
    found = [Request(spelling, f"{wp}:127.0.0.1:{ep or wp}", LOCAL)]
    if not echo:
        found.append(Request(spelling, f"{wp}:127.0.0.1:{wp + 1}", REMOTE))
    return found


def _strtoul(text: str) -> int | None:
    """C strtoul(text, &end, 0) over the whole string: decimal, 0x hex or 0 octal; None when not all digits."""
    text = text.lstrip(" \t\n\v\f\r").removeprefix("+")
    base = 16 if text[:2].lower() == "0x" else 8 if text.startswith("0") and len(text) > 1 else 10
    digits = text[2:] if base == 16 else text
    try:
        return int(digits, base) if digits else None
    except ValueError:
        return None


def _autossh(client: Client, argv: Sequence[str], config: Config, environ: Sequence[str] = ()) -> list[Request]:
    """autossh: its monitor forwards, then the ssh argv it rebuilds (first "--", -M, -f dropped) read as ssh would.

    AUTOSSH_PORT in its environment sets the monitor port and overrides -M (autossh(1) ENVIRONMENT; autossh.c
    get_env_args() reads it first, and `case 'M'` takes optarg only `if (!env_port)`)."""
    assert client.runs is not None
    walked = _getopt(client, argv)
    if walked is None or any(client.options[letter] == "exit" for letter, _v, _s in walked[0]):
        return []
    optstring = "".join(f"{c}:" if c in client.with_value else c for c in sorted(client.with_value))
    child: list[str] = [client.runs]
    monitor: list[Request] = []
    saw_stop = False
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and not saw_stop:
            saw_stop = True  # the first "--" is autossh's own
        elif not saw_stop and arg.startswith("-M"):
            value, spelling = arg[2:], arg
            if not value and i + 1 < len(argv):
                i += 1
                value, spelling = argv[i], f"{arg} {argv[i]}"
            monitor = monitor or _monitor(value, spelling)
        elif word := _strip_f(arg, optstring):
            child.append(word)
        i += 1
    env_port = next((item for item in environ if item.startswith("AUTOSSH_PORT=") and item != "AUTOSSH_PORT="), None)
    if env_port is not None:  # set and not empty
        monitor = _monitor(env_port.partition("=")[2], env_port)
    return monitor + requests(CLIENTS[client.runs], child, config)


def _long(client: Client, name: str) -> str:
    """argparse's unique-prefix match of a long option (allow_abbrev); the name itself when none or several."""
    if name in client.with_value or name in client.flags:
        return name
    matches = [w for w in (*client.with_value, *client.flags) if w.startswith("--") and w.startswith(name)]
    return matches[0] if len(matches) == 1 else name


def _argparse(client: Client, argv: Sequence[str]) -> list[tuple[str, str, str]] | None:
    """(option, value, spelling) in argv order, ("", word, word) for a positional; None if a value is missing.

    -x VALUE, -xVALUE, bundled flags (-vNr HOST), --long VALUE, --long=VALUE, a unique prefix of --long.
    """
    out: list[tuple[str, str, str]] = []
    i, n = 1, len(argv)
    while i < n:
        arg = argv[i]
        if arg == "--":
            out.extend(("", word, word) for word in argv[i + 1 :])
            break
        if not arg.startswith("-") or arg == "-":
            out.append(("", arg, arg))
        elif arg.startswith("--"):
            name, eq, value = arg.partition("=")
            name = _long(client, name)
            if name in client.with_value and not eq:
                if i + 1 >= n:
                    return None
                i += 1
                value, arg = argv[i], f"{arg} {argv[i]}"
            out.append((name, value, arg))
        else:
            for j in range(1, len(arg)):
                name = f"-{arg[j]}"
                if name not in client.with_value:
                    out.append((name, "", arg))
                    continue
                value, spelling = arg[j + 1 :], arg
                if not value:
                    if i + 1 >= n:
                        return None
                    i += 1
                    value, spelling = argv[i], f"{arg} {argv[i]}"
                out.append((name, value, spelling))
                break
        i += 1
    return out


def _sshuttle(client: Client, argv: Sequence[str]) -> list[Request]:
    """sshuttle: a VPN over SSH to -r HOST for the subnets it is given (or -N, -s FILE, @FILE of arguments)."""
    parsed = _argparse(client, argv)
    if parsed is None:
        return []  # argparse: "expected one argument"
    remote: str | None = None
    routes: list[str] = []
    for name, _value, spelling in parsed:
        meaning = client.options.get(name) if name else "subnets"
        if meaning in ("exit", "helper"):
            return []  # --firewall/--hostwatch are the root-side helpers sshuttle starts itself
        if meaning == "remote":
            remote = spelling
        elif meaning in ("subnets", "auto_nets"):
            routes.append(spelling)  # a subnet, @FILE (more arguments), -s FILE or -N
    if remote is None or not routes:
        return []  # without -r sshuttle tunnels nothing; without routes it refuses to start
    return [Request(remote, " ".join(dict.fromkeys(routes)), VPN)]


MAX_QUOTED = 32  # forwards quoted in one alert's evidence; forwards_total says how many there were


def quoted(found: Sequence[Request]) -> list[dict[str, str]]:
    """Evidence entries for the first MAX_QUOTED requests: {argv, spec, kind}, and "from" FILE:LINE for config lines."""
    return [
        {"argv": r.argv, "spec": r.spec, "kind": r.kind, **({"from": r.origin} if r.origin else {})}
        for r in found[:MAX_QUOTED]
    ]


def exec_forwards(event: ExecEvent, kinds: Collection[str]) -> tuple[Client, list[Request], list[Request]] | None:
    """The SSH client an exec runs, all it asks for, and those of the asked ``kinds``; None when it asks for
    none of them (or is no SSH client)."""
    found = exec_requests(event)
    if found is None:
        return None
    client, asked = found
    forwards = [r for r in asked if r.kind in kinds]
    return (client, asked, forwards) if forwards else None


def forward_evidence(
    signature: str, event: ExecEvent, client: Client, asked: Sequence[Request], forwards: Sequence[Request],
    **extra: Any,
) -> dict[str, Any]:
    """The evidence the SSH tunnel rules share, with ``extra`` before the first ProxyCommand."""
    return {
        "signature": signature,
        "forwards": quoted(forwards),
        "args_truncated": event.args_truncated,
        "forwards_total": len(forwards),
        "client": min(client.names),
        **extra,
        "proxy_command": first_proxy_command(asked),
    }


def first_proxy_command(found: Sequence[Request]) -> str | None:
    return next((r.spec for r in found if r.kind == PROXY_COMMAND), None)
