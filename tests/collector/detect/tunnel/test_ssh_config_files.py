# SPDX-License-Identifier: Apache-2.0
"""The ssh rules on config lines recorded with the exec: after argv, first value wins, forwards accumulate."""

from __future__ import annotations

import dataclasses

import pytest

from collector.detect import State
from collector.detect.tunnel.ssh_forward import SshForwardDetector
from collector.detect.tunnel.ssh_reverse import SshReverseDetector
from collector.enrich.process import ProcessTable
from probes.events import ExecEvent
from tests.factories import exec_event

STATE = State(ProcessTable())
REVERSE = SshReverseDetector().detect
FORWARD = SshForwardDetector().detect
USER = "/home/alice/.ssh/config"


def _exec(argv: list[str], *lines: str, exe: str = "/usr/bin/ssh") -> ExecEvent:
    return dataclasses.replace(
        exec_event(argv, exe=exe),
        ssh_config=lines,
        ssh_config_from=tuple(f"{USER}:{n}" for n in range(1, len(lines) + 1)),
    )


def test_remote_forward_from_a_config_file_names_file_and_line() -> None:
    """A RemoteForward line raises tunnel.ssh_reverse for plain `ssh host`; evidence says where it came from."""
    (finding,) = REVERSE(_exec(["ssh", "box"], "SendEnv LANG", "RemoteForward 8080 localhost:80"), STATE)
    assert finding.level == "high"
    assert finding.evidence["forwards"] == [
        {"argv": "RemoteForward 8080 localhost:80", "spec": "8080 localhost:80", "kind": "remote", "from": f"{USER}:2"}
    ]


def test_argv_and_config_forwards_accumulate_in_order() -> None:
    """-R on argv comes first, the config's forwards after it: all are reported."""
    (finding,) = REVERSE(_exec(["ssh", "-R", "1:l:1", "box"], "RemoteForward 2", "remoteforward=3 l:3"), STATE)
    assert [(f["spec"], f.get("from")) for f in finding.evidence["forwards"]] == [
        ("1:l:1", None),
        ("2", f"{USER}:1"),
        ("3 l:3", f"{USER}:2"),
    ]


@pytest.mark.parametrize(
    ("argv", "lines", "kinds"),
    [
        (["ssh", "box"], ("DynamicForward 1080",), ["dynamic"]),
        (["ssh", "box"], ("LocalForward 5432 db:5432", "ProxyJump bastion"), ["local", "jump"]),
        (["ssh", "box"], ("Tunnel yes", "TunnelDevice 0:0"), ["tun", "tun"]),
        (["ssh", "-o", "Tunnel=no", "box"], ("Tunnel yes", "TunnelDevice 0:0"), []),  # the command line's value wins
        (["ssh", "-o", "ClearAllForwardings=yes", "box"], ("DynamicForward 1080",), []),
        (["ssh", "-W", "db:5432", "box"], ("DynamicForward 1080",), ["stdio"]),  # -W clears the config's forwards
        (["ssh", "-J", "a", "box"], ("ProxyJump b",), ["jump"]),  # the first jump wins
        (["ssh", "box"], ("ProxyJump none", "ProxyJump b"), []),
        (["ssh", "box"], ("LocalForward bad", "DynamicForward 1080"), ["dynamic"]),  # a bad line does not hide the rest
        (["autossh", "-M", "0", "box"], ("DynamicForward 1080",), ["dynamic"]),  # autossh hands them to its ssh
        (["dbclient", "box"], ("DynamicForward 1080",), []),  # dropbear reads no ssh_config
    ],
)
def test_config_lines_with_argv(argv: list[str], lines: tuple[str, ...], kinds: list[str]) -> None:
    """tunnel.ssh_forward applies recorded lines after argv, with ssh's first-value-wins and clearing rules."""
    exe = {"autossh": "/usr/lib/autossh/autossh", "dbclient": "/usr/bin/dbclient"}.get(argv[0], "/usr/bin/ssh")
    found = FORWARD(_exec(argv, *lines, exe=exe), STATE)
    assert [f["kind"] for finding in found for f in finding.evidence["forwards"]] == kinds


def test_no_config_lines_no_change() -> None:
    """An exec recorded without config lines is judged on argv alone, as before."""
    assert REVERSE(_exec(["ssh", "box"]), STATE) == []
