# SPDX-License-Identifier: Apache-2.0
"""tunnel.ssh_reverse and tunnel.ssh_forward from ssh config files, with Debian's OpenSSH and a loopback sshd:
`ssh -F FILE` with RemoteForward in FILE, and ~/.ssh/config (home from passwd) through Include. The forwards
really open; each alert names the client's pid, its parent, and the file and line; replay gives the same."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.kernel.e2e import Agent, Sshd, free_port, wait_port

pytestmark = pytest.mark.kernel


def _client_options(sshd: Sshd) -> str:
    return (
        f"  HostName 127.0.0.1\n  User root\n  Port {sshd.port}\n  IdentityFile {sshd.key}\n"
        "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n"
        "  ExitOnForwardFailure yes\n  AddressFamily inet\n"
    )


def _alerts(agent: Agent, rule: str, pid: int, timeout: float = 10.0) -> dict[str, Any]:
    found = agent.wait_alert(lambda a: a["rule"] == rule and a["process"]["pid"] == pid, timeout)
    assert found is not None, agent.log_path.read_text()
    return found[0]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=10)


def test_dash_f_file_remote_forward(agent: Agent, sshd: Sshd, workdir: Path) -> None:
    """`ssh -F FILE box` with RemoteForward under `Host box` in FILE: the forward opens; high, FILE:line quoted."""
    port = free_port()
    config = workdir / "dash_f.conf"
    config.write_text(f"Host other\n  RemoteForward 1 127.0.0.1:1\nHost box\n{_client_options(sshd)}"
                      f"  RemoteForward 127.0.0.1:{port} 127.0.0.1:9\n")
    line = config.read_text().splitlines().index(f"  RemoteForward 127.0.0.1:{port} 127.0.0.1:9") + 1
    ssh = subprocess.Popen(["ssh", "-F", str(config), "-N", "box"], stderr=subprocess.DEVNULL)
    try:
        wait_port(port, timeout=15)  # sshd really listens for the forward
        alert = _alerts(agent, "tunnel.ssh_reverse", ssh.pid)
        assert alert["severity"] == "high" and alert["process"]["exe"] == "/usr/bin/ssh"
        assert alert["evidence"]["forwards"] == [
            {
                "argv": f"RemoteForward 127.0.0.1:{port} 127.0.0.1:9",
                "spec": f"127.0.0.1:{port} 127.0.0.1:9",
                "kind": "remote",
                "from": f"{config}:{line}",
            }
        ]  # the `Host other` block is not applied
        assert alert["ancestors"][0]["pid"] == os.getpid()
    finally:
        _stop(ssh)


def test_user_config_through_include(agent: Agent, sshd: Sshd, workdir: Path) -> None:
    """~/.ssh/config of root, its home from passwd, Includes conf.d/*.conf with RemoteForward and DynamicForward.

    ssh runs in a mount namespace of its own where /etc/passwd gives root a home under the test's folder: the
    agent must read passwd and the files from the client's root (/proc/PID/root), as ssh does.
    """
    home = workdir / "home"
    (home / ".ssh" / "conf.d").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Include conf.d/*.conf\n")
    remote, socks = free_port(), free_port()
    box = home / ".ssh" / "conf.d" / "box.conf"
    box.write_text(f"Host box\n{_client_options(sshd)}  RemoteForward 127.0.0.1:{remote} 127.0.0.1:9\n"
                   f"  DynamicForward 127.0.0.1:{socks}\n")
    lines = box.read_text().splitlines()
    passwd = workdir / "passwd"
    passwd.write_text("".join(
        f"root:x:0:0:root:{home}:/bin/sh\n" if line.startswith("root:") else f"{line}\n"
        for line in Path("/etc/passwd").read_text().splitlines()
    ))
    unshare = shutil.which("unshare")
    assert unshare is not None
    script = f'mount --bind "{passwd}" /etc/passwd && exec ssh -N box'
    log = workdir / "include.log"
    with log.open("wb") as err:
        # HOME as a login gives it: ssh globs a relative Include's "~/.ssh/" with $HOME (glibc GLOB_TILDE).
        env = {**os.environ, "HOME": str(home)}
        ssh = subprocess.Popen([unshare, "-m", "sh", "-c", script], stderr=err, env=env)
    try:
        try:
            wait_port(remote, timeout=15)
            wait_port(socks, timeout=15)
        except TimeoutError as e:
            raise AssertionError(log.read_text()) from e
        reverse = _alerts(agent, "tunnel.ssh_reverse", ssh.pid)
        assert reverse["severity"] == "high"
        (forward,) = reverse["evidence"]["forwards"]
        assert forward["from"] == f"{box}:{lines.index(f'  RemoteForward 127.0.0.1:{remote} 127.0.0.1:9') + 1}"
        dynamic = _alerts(agent, "tunnel.ssh_forward", ssh.pid)
        assert dynamic["severity"] == "medium"
        assert [(f["kind"], f["from"]) for f in dynamic["evidence"]["forwards"]] == [
            ("dynamic", f"{box}:{lines.index(f'  DynamicForward 127.0.0.1:{socks}') + 1}")
        ]
        assert reverse["ancestors"][0]["pid"] == os.getpid()
    finally:
        _stop(ssh)


def test_a_block_for_another_host_raises_nothing(agent: Agent, sshd: Sshd, workdir: Path) -> None:
    """`ssh -F FILE box true` where FILE forwards only for `Host other` and `Host !box`: no tunnel alert."""
    config = workdir / "benign.conf"
    config.write_text(f"Host other\n  RemoteForward 1 127.0.0.1:1\nHost !box *\n  DynamicForward 2\n"
                      f"Host box\n{_client_options(sshd)}")
    done = subprocess.run(["ssh", "-F", str(config), "box", "true"], capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    marker = subprocess.run(["ssh", "-F", str(config), "-R", "0:127.0.0.1:9", "box", "true"], check=False,
                            capture_output=True, timeout=30)
    assert marker.returncode == 0, marker.stderr
    assert agent.wait_alert(lambda a: "-R 0:127.0.0.1:9" in json.dumps(a["evidence"]), 10) is not None
    quoted = [f for a in agent.alerts() for f in a["evidence"].get("forwards", []) if "from" in f]
    assert all(not f["from"].startswith(str(config)) for f in quoted), quoted


def test_replay_gives_the_same_alerts(agent: Agent) -> None:
    """The recording holds the config lines with each exec: `coalmine replay` raises the live alerts, no files read."""
    live = agent.alerts()
    assert sum("from" in f for a in live for f in a["evidence"].get("forwards", [])) >= 3
    assert agent.stop() == 0
    assert agent.replayed() == live
