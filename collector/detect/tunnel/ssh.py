# SPDX-License-Identifier: Apache-2.0
"""SSH clients: which binaries they are (data/ssh_clients.toml) and how each parses its argv."""

from __future__ import annotations

import posixpath
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from probes.events import ExecEvent


@dataclass(frozen=True, slots=True)
class Client:
    names: frozenset[str]
    style: str  # "getopt" | "words"
    with_value: frozenset[str]  # option letters (getopt) or words that take a value
    options_after_host: bool


def _load() -> tuple[dict[str, Client], frozenset[str]]:
    raw = tomllib.loads(resources.files("collector.detect.data").joinpath("ssh_clients.toml").read_text())
    clients: dict[str, Client] = {}
    for entry in raw["client"]:
        if entry["style"] == "getopt":
            spec = entry["optstring"]
            with_value = frozenset(c for i, c in enumerate(spec) if i + 1 < len(spec) and spec[i + 1] == ":")
        else:
            with_value = frozenset(entry["words_with_value"])
        client = Client(frozenset(entry["names"]), entry["style"], with_value, entry.get("options_after_host", False))
        for name in client.names:
            clients[name] = client
    return clients, frozenset(raw.get("multicall", ()))


CLIENTS, MULTICALL = _load()


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
    for path in (event.exe, event.filename, args[0] if args else None):
        if path and (client := CLIENTS.get(posixpath.basename(path))):
            return client, args
    return None


def is_ssh_client(exe: str | None, args: Sequence[str]) -> bool:
    """Whether a process (as the process table has it: its exe and argv) is an SSH client binary."""
    if len(args) > 1 and posixpath.basename(args[0]) in MULTICALL and args[1] in CLIENTS:
        return True
    return any(path and posixpath.basename(path) in CLIENTS for path in (exe, args[0] if args else None))
