# SPDX-License-Identifier: Apache-2.0
"""Which execs read OpenSSH config files, with what -F and destination; ssh_config(5) lexing. Pure, linear.

Shared by the config reader (collector.enrich.sshconf) and the argv rules (collector.detect.tunnel), which
may import this module but not the other way round (pyproject.toml's layers contract).
Sources: openssh-portable ssh.c main() (getopt, -F, the destination, "again:"), misc.c strdelim() and
argv_split(), readconf.c process_config_line_depth().
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from probes.events import ExecEvent

WHITESPACE = " \t\r\n"  # misc.h WHITESPACE
QUOTE = '"'
_DELIMITERS = frozenset(WHITESPACE + QUOTE + "=")

# The option letters that take a value, as each client's getopt string has them (ssh.c main(); autossh 1.4g);
# tests/collector/enrich/test_ssh_client.py ties these to collector/detect/data/ssh_clients.toml.
# dbclient reads no config file (its -F prints the version and exits), so it is not here.
OPTSTRINGS = {
    "ssh": "1246ACGKMNTVXYZafgknqstvxyB:D:E:F:I:J:L:O:P:Q:R:S:W:b:c:e:i:l:m:o:p:w:",
    "autossh": "M:V1246ab:c:e:fgi:kl:m:no:p:qstvw:xyACD:E:F:GI:MJKL:NO:PQ:R:S:TW:XY",
}
_WITH_VALUE = {
    name: frozenset(c for i, c in enumerate(spec) if spec[i + 1 : i + 2] == ":") for name, spec in OPTSTRINGS.items()
}


class Refused(Exception):
    """ssh rejects this line or spec and exits (255) before it connects: nothing is opened."""


def _strdelim(s: str) -> tuple[str | None, str | None]:
    """misc.c strdelim(): the next token and the rest; splits on whitespace or one '=', honours "quotes"."""
    at = next((i for i, c in enumerate(s) if c in _DELIMITERS), -1)
    if at < 0:
        return s, None
    if s[at] == QUOTE:
        close = s.find(QUOTE, at + 1)
        if close < 0:
            return None, None  # no matching quote
        return s[:at] + s[at + 1 : close], s[close + 1 :].lstrip(WHITESPACE)
    rest = s[at + 1 :].lstrip(WHITESPACE)
    if s[at] != "=" and rest.startswith("="):
        rest = rest[1:].lstrip(WHITESPACE)  # "Key = value": one '=' amid the whitespace
    return s[:at], rest


def keyword(line: str) -> tuple[str, str] | None:
    """(keyword in lower case, the rest as written) as process_config_line_depth() splits a line.

    None for a line ssh skips (empty, a comment). Raises Refused for a keyword without a value.
    """
    line = line.rstrip(WHITESPACE + "\f")
    if not line:
        return None
    key, rest = _strdelim(line)
    if key == "" and rest is not None:
        key, rest = _strdelim(rest)  # leading whitespace (or '=') before the keyword
    if not key or key[0] in "\n#":
        return None
    rest = rest.lstrip(WHITESPACE) if rest is not None else ""
    if not rest:
        raise Refused(f"no argument after keyword {key.lower()!r}")
    return key.lower(), rest


def argv_split(s: str) -> list[str]:
    """misc.c argv_split(s, terminate_on_comment=1): words split on blanks, quotes and backslashes honoured."""
    words: list[str] = []
    i, n = 0, len(s)
    while i < n:
        if s[i] in " \t":
            i += 1
            continue
        if s[i] == "#":
            break
        word: list[str] = []
        quote = ""
        while i < n:
            c = s[i]
            if c == "\\" and i + 1 < n and (s[i + 1] in "'\"\\" or (not quote and s[i + 1] == " ")):
                i += 1
                word.append(s[i])
            elif not quote and c in " \t":
                break
            elif not quote and c in "\"'":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                word.append(c)
            i += 1
        if quote:
            raise Refused("invalid quotes")
        words.append("".join(word))
    return words


@dataclass(frozen=True, slots=True)
class Target:
    """What an OpenSSH client's argv says about the config files it will read."""

    client: str  # "ssh" | "autossh"
    config: str | None  # -F FILE, the last one given ("none": no files at all)
    host: str  # the destination as ssh matches Host against it: no user@, no ssh:// or :port, lower case
    hostname: str | None  # -o Hostname=..., the first one (Match host compares against it)


def _client(event: ExecEvent) -> str | None:
    for path in (event.exe, event.filename, event.args[0] if event.args else None):
        if path and (name := posixpath.basename(path)) in OPTSTRINGS:
            return name
    return None


def _destination(arg: str) -> str:
    """ssh.c: ssh://[user@]host[:port] (parse_ssh_uri), else [user@]host split at the last '@'."""
    if arg[:6].lower() == "ssh://":
        rest = arg[6:].split("/", 1)[0].rpartition("@")[2]
        if rest.startswith("["):
            return rest[1:].partition("]")[0].lower()
        return rest.partition(":")[0].lower()
    return arg.rpartition("@")[2].lower()


def target(event: ExecEvent) -> Target | None:
    """The config-reading client this exec runs and what its argv sets; None for anything else (one lookup)."""
    client = _client(event)
    if client is None:
        return None
    return parse(client, event.args)


def _hostname(option: str) -> str | None:
    try:
        parsed = keyword(option)
    except Refused:
        return None
    return parsed[1] if parsed is not None and parsed[0] == "hostname" else None


def parse(client: str, argv: Sequence[str]) -> Target | None:
    """BSD getopt over ``argv`` (no permutation; options resume after the host); None without a destination."""
    with_value = _WITH_VALUE[client]
    config: str | None = None
    host: str | None = None
    hostname: str | None = None
    i, n = 1, len(argv)
    while i < n:
        arg = argv[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            if arg == "--" and host is None and i + 1 < n:
                host = argv[i + 1]
            if host is not None or arg == "--":
                break
            host = arg
            i += 1
            continue
        for j in range(1, len(arg)):
            letter = arg[j]
            if letter not in with_value:
                continue
            value = arg[j + 1 :]
            if not value:
                if i + 1 >= n:
                    return None  # an option without its value: ssh refuses to run
                i += 1
                value = argv[i]
            if letter == "F":
                config = value
            elif letter == "o" and hostname is None:
                hostname = _hostname(value)
            break
        i += 1
    if not host:
        return None
    return Target(client, config, _destination(host), hostname)
