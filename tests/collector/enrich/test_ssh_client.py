# SPDX-License-Identifier: Apache-2.0
"""Which execs read OpenSSH config files, and the -F file and destination their argv gives."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from collector.enrich.ssh_client import OPTSTRINGS, Target, parse, target
from tests.factories import exec_event


def test_optstrings_agree_with_the_client_table() -> None:
    """The getopt strings here are the ones data/ssh_clients.toml gives the argv rules."""
    raw = tomllib.loads(resources.files("collector.detect.data").joinpath("ssh_clients.toml").read_text())
    table = {name: entry["optstring"] for entry in raw["client"] for name in entry["names"] if name in OPTSTRINGS}
    assert table == OPTSTRINGS


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["ssh", "host"], Target("ssh", None, "host", None)),
        (["ssh", "-F", "cfg", "u@Host.Example"], Target("ssh", "cfg", "host.example", None)),
        (["ssh", "-Fone", "-F", "two", "h"], Target("ssh", "two", "h", None)),  # the last -F wins
        (["ssh", "-p", "22", "h", "-F", "late", "cmd", "-F", "x"], Target("ssh", "late", "h", None)),
        (["ssh", "-oHostname=real", "-o", "Hostname other", "alias"], Target("ssh", None, "alias", "real")),
        (["ssh", "ssh://me@[::1]:2222"], Target("ssh", None, "::1", None)),
        (["ssh", "ssh://me@box:2222/"], Target("ssh", None, "box", None)),
        (["ssh", "a@b@c"], Target("ssh", None, "c", None)),  # split at the last '@'
        (["ssh", "-vF", "f", "--", "h"], Target("ssh", "f", "h", None)),
        (["ssh", "-lF", "h"], Target("ssh", None, "h", None)),  # F is -l's value, not an option
    ],
)
def test_parse(argv: list[str], expected: Target) -> None:
    """-F, -o Hostname and the destination as ssh's getopt reads them."""
    assert parse("ssh", argv) == expected


@pytest.mark.parametrize("argv", [["ssh"], ["ssh", "-F"], ["ssh", "-v"]])
def test_no_destination_no_target(argv: list[str]) -> None:
    """Without a destination (or with an option missing its value) ssh connects nowhere."""
    assert parse("ssh", argv) is None


def test_target_by_exe_filename_or_argv0() -> None:
    """ssh and autossh are recognised by exe, exec'd path or argv[0]; dbclient and others are not."""
    assert target(exec_event(["ssh", "h"], exe="/usr/bin/ssh")) is not None
    assert target(exec_event(["x", "h"], exe="/usr/bin/autossh")) == Target("autossh", None, "h", None)
    assert target(exec_event(["/usr/bin/ssh", "h"], exe=None)) is not None
    assert target(exec_event(["dbclient", "h"], exe="/usr/bin/dbclient")) is None
    assert target(exec_event(["bash", "-c", "ssh h"], exe="/usr/bin/bash")) is None
