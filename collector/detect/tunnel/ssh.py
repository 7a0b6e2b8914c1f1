# SPDX-License-Identifier: Apache-2.0
"""SSH clients: which binaries they are (data/ssh_clients.toml) and how each parses its argv."""

from __future__ import annotations

import posixpath
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from probes.events import ExecEvent


@dataclass(frozen=True, slots=True)
class Client:
    names: frozenset[str]
    style: str  # "getopt" | "words" | "argparse"
    with_value: frozenset[str]  # option letters (getopt) or words that take a value
    options_after_host: bool
    # What an option asks for ("remote", "local", "config", "exit", ...): the table's `options`.
    options: Mapping[str, str] = field(default_factory=dict)
    runs: str | None = None  # the client whose argv this one rebuilds and execs (autossh runs ssh)
    double_dash: bool = True  # "--" ends the options
    multihop: bool = False  # "a,b" as the host is a chain of jump hosts
    speaks_ssh: bool = True  # False for sshuttle, which runs ssh rather than being one
    module: bool = False  # may be run as `python3 -m NAME`
    flags: frozenset[str] = frozenset()  # words without a value (argparse style: for prefix matching)


def _client(entry: dict[str, Any]) -> Client:
    if entry["style"] == "getopt":
        spec = entry["optstring"]
        with_value = frozenset(c for i, c in enumerate(spec) if i + 1 < len(spec) and spec[i + 1] == ":")
    else:
        with_value = frozenset(entry["words_with_value"])
    return Client(
        names=frozenset(entry["names"]),
        style=entry["style"],
        with_value=with_value,
        options_after_host=entry.get("options_after_host", False),
        options=dict(entry.get("options", {})),
        runs=entry.get("runs"),
        double_dash=entry.get("double_dash", True),
        multihop=entry.get("multihop", False),
        speaks_ssh=entry.get("speaks_ssh", True),
        module=entry.get("module", False),
        flags=frozenset(entry.get("words_without_value", ())),
    )


def _load() -> tuple[dict[str, Client], frozenset[str]]:
    raw = tomllib.loads(resources.files("collector.detect.data").joinpath("ssh_clients.toml").read_text())
    clients: dict[str, Client] = {}
    for entry in raw["client"]:
        client = _client(entry)
        for name in client.names:
            clients[name] = client
    return clients, frozenset(raw.get("multicall", ()))


CLIENTS, MULTICALL = _load()


def _module_argv(args: Sequence[str]) -> tuple[Client, tuple[str, ...]] | None:
    """`python3 -m sshuttle ...`: the module's client and its argv from the module name on."""
    if len(args) > 2 and posixpath.basename(args[0]).startswith("python") and args[1] == "-m":
        client = CLIENTS.get(args[2])
        if client is not None and client.module:
            return client, tuple(args[2:])
    return None


def client_argv(event: ExecEvent) -> tuple[Client, tuple[str, ...]] | None:
    """The SSH client this exec runs (by exe, exec'd path or argv[0]) and its argv from argv[0] on.

    For a script the kernel runs [interpreter, (its argument), script path, argv[1:]...]:
    the client's own argv then starts at the script path.
    """
    args = event.args
    if len(args) > 1 and posixpath.basename(args[0]) in MULTICALL and (client := CLIENTS.get(args[1])):
        return client, args[1:]
    script = CLIENTS.get(posixpath.basename(event.filename))
    if script is not None:
        for i in (1, 2):
            if len(args) > i and args[i] == event.filename:
                return script, args[i:]
    if (module := _module_argv(args)) is not None:
        return module
    for path in (event.exe, event.filename, args[0] if args else None):
        if path and (client := CLIENTS.get(posixpath.basename(path))):
            return client, args
    return None


def is_ssh_client(exe: str | None, args: Sequence[str]) -> bool:
    """Whether a process (as the process table has it: its exe and argv) is an SSH client binary."""
    if len(args) > 1 and posixpath.basename(args[0]) in MULTICALL and args[1] in CLIENTS:
        return CLIENTS[args[1]].speaks_ssh
    for path in (exe, args[0] if args else None):
        client = CLIENTS.get(posixpath.basename(path)) if path else None
        if client is not None and client.speaks_ssh:
            return True
    return False


def config_lines(event: ExecEvent) -> tuple[tuple[str, str], ...]:
    """The ssh_config lines recorded with the exec (collector.enrich.sshconf), each with its "FILE:LINE"."""
    return tuple(zip(event.ssh_config, event.ssh_config_from, strict=False))
