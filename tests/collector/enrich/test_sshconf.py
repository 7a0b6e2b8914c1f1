# SPDX-License-Identifier: Apache-2.0
"""ssh_config files read at exec from a fabricated /proc/PID/root: which files, which blocks, bounds, bad files."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from collector.enrich.sshconf import Limits, SshConfigReader
from probes.events import ExecEvent
from tests.factories import exec_event

PID = 4242


def _tree(
    tmp_path: Path, files: dict[str, str | bytes], cwd: str = "/", environ: bytes = b"PATH=/bin\0"
) -> tuple[str, Path]:
    """A /proc with PID's root at tmp_path/root holding ``files``; a passwd with alice (uid 1000) and root."""
    root = tmp_path / "root"
    users = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
    for path, body in {"/etc/passwd": users, **files}.items():
        p = root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body if isinstance(body, bytes) else body.encode())
    proc = tmp_path / "proc" / str(PID)
    proc.mkdir(parents=True)
    os.symlink(root, proc / "root")
    (root / cwd.lstrip("/")).mkdir(parents=True, exist_ok=True)
    os.symlink(root / cwd.lstrip("/"), proc / "cwd")
    (proc / "environ").write_bytes(environ)
    return str(tmp_path / "proc"), root


def _exec(*argv: str, uid: int = 1000) -> ExecEvent:
    return exec_event(["ssh", *argv], exe="/usr/bin/ssh", pid=PID, uid=uid)


def _read(proc: str, event: ExecEvent, **limits: float) -> tuple[list[tuple[str, str]], SshConfigReader]:
    reader = SshConfigReader(proc, Limits(**limits))  # type: ignore[arg-type]
    out = reader(event)
    return list(zip(out.ssh_config, out.ssh_config_from, strict=True)), reader


def test_user_and_system_config_in_order(tmp_path: Path) -> None:
    """~/.ssh/config (home of the uid from the process's passwd) first, then /etc/ssh/ssh_config."""
    proc, _ = _tree(
        tmp_path,
        {
            "/home/alice/.ssh/config": "Host *\n  RemoteForward 8080 localhost:80\n",
            "/etc/ssh/ssh_config": "Host *\n  DynamicForward 1080\n  SendEnv LANG\n",
        },
    )
    found, reader = _read(proc, _exec("box"))
    assert found == [
        ("RemoteForward 8080 localhost:80", "/home/alice/.ssh/config:2"),
        ("DynamicForward 1080", "/etc/ssh/ssh_config:2"),
    ]
    assert not reader.skipped


def test_dash_f_is_the_only_file(tmp_path: Path) -> None:
    """-F FILE replaces both default files; a relative -F is taken from the process's cwd; -F none reads none."""
    files = {
        "/home/alice/.ssh/config": "RemoteForward 1 h:1\n",
        "/etc/ssh/ssh_config": "RemoteForward 2 h:2\n",
        "/work/my.cfg": "RemoteForward 3 h:3\n",
    }
    proc, _ = _tree(tmp_path, files, cwd="/work")
    assert _read(proc, _exec("-F", "/work/my.cfg", "box"))[0] == [("RemoteForward 3 h:3", "/work/my.cfg:1")]
    assert _read(proc, _exec("-F", "my.cfg", "box"))[0] == [("RemoteForward 3 h:3", "my.cfg:1")]
    assert _read(proc, _exec("-F", "none", "box"))[0] == []


def test_root_home_from_passwd(tmp_path: Path) -> None:
    """uid 0 reads /root/.ssh/config: the home comes from passwd, not from $HOME."""
    proc, _ = _tree(tmp_path, {"/root/.ssh/config": "LocalForward 5 h:5\n"})
    assert _read(proc, _exec("box", uid=0))[0] == [("LocalForward 5 h:5", "/root/.ssh/config:1")]


def test_include_relative_glob_and_state(tmp_path: Path) -> None:
    """Include: relative to ~/.ssh (user) or /etc/ssh (system), globbed and sorted, read in the including block."""
    proc, _ = _tree(
        tmp_path,
        {
            "/home/alice/.ssh/config": "Host other\n  Include skipped.conf\nHost box\n  Include conf.d/*.conf\n",
            "/home/alice/.ssh/skipped.conf": "RemoteForward 9 h:9\n",
            "/home/alice/.ssh/conf.d/b.conf": "RemoteForward 2 h:2\n",
            "/home/alice/.ssh/conf.d/a.conf": "RemoteForward 1 h:1\n",
            "/etc/ssh/ssh_config": "Include ssh_config.d/*.conf\n",
            "/etc/ssh/ssh_config.d/x.conf": "Host *\nProxyJump jump\n",
        },
    )
    assert [origin for _line, origin in _read(proc, _exec("box"))[0]] == [
        "/home/alice/.ssh/conf.d/a.conf:1",
        "/home/alice/.ssh/conf.d/b.conf:1",
        "/etc/ssh/ssh_config.d/x.conf:2",
    ]


def test_include_tilde_is_globs_home_from_the_environment(tmp_path: Path) -> None:
    """~/.ssh/config is the passwd home's; a relative Include in it is under $HOME (glob GLOB_TILDE), as ssh does."""
    files = {
        "/home/alice/.ssh/config": "Include extra.conf\n",
        "/home/alice/.ssh/extra.conf": "RemoteForward 1 h:1\n",
        "/srv/elsewhere/.ssh/extra.conf": "RemoteForward 2 h:2\n",
    }
    proc, _ = _tree(tmp_path, files, environ=b"LANG=C\0HOME=/srv/elsewhere\0")
    assert _read(proc, _exec("box"))[0] == [("RemoteForward 2 h:2", "/srv/elsewhere/.ssh/extra.conf:1")]
    proc, _ = _tree(tmp_path / "nohome", files)
    assert _read(proc, _exec("box"))[0] == [("RemoteForward 1 h:1", "/home/alice/.ssh/extra.conf:1")]


@pytest.mark.parametrize(
    ("header", "applies"),
    [
        ("Host box", True),
        ("Host b?x", True),
        ("Host *.example box", True),
        ("Host BOX", True),
        ("Host * !box", False),
        ("Host !box *", False),
        ("Host other", False),
        ("Host [b]ox", False),  # match_pattern knows only * and ?
        ("Match all", True),
        ("Match host box,other", True),
        ("Match host *,!box", False),
        ("Match !host box", False),
        ("Match originalhost box", True),
        ("Match host real.example", False),
        ("Match user alice", True),  # not evaluated: taken to hold
        ('Match exec "false" host box', True),
    ],
)
def test_host_and_match_blocks(tmp_path: Path, header: str, applies: bool) -> None:
    """A line applies when its Host/Match block matches the destination 'box' (lower-cased from argv)."""
    proc, _ = _tree(tmp_path, {"/etc/ssh/ssh_config": f"{header}\n  RemoteForward 1 h:1\n"})
    assert bool(_read(proc, _exec("me@Box"))[0]) is applies


def test_match_host_sees_the_hostname_set_so_far(tmp_path: Path) -> None:
    """Match host compares the first Hostname (%h expanded); Host compares what argv gave."""
    config = (
        "Host box\n  Hostname %h.example\nMatch host box.example\n  RemoteForward 1 h:1\n"
        "Host box.example\n  LocalForward 2 h:2\n"
    )
    proc, _ = _tree(tmp_path, {"/etc/ssh/ssh_config": config})
    assert [line for line, _o in _read(proc, _exec("box"))[0]] == ["RemoteForward 1 h:1"]
    assert _read(proc, _exec("-o", "Hostname=else", "box"))[0] == []  # the command line's Hostname came first


def test_include_loop_and_depth_are_bounded(tmp_path: Path) -> None:
    """A file including itself, or a chain deeper than 16, is counted and cut; what was read still counts."""
    chain = {f"/etc/ssh/{i}.conf": f"Include {i + 1}.conf\nRemoteForward {i} h:{i}\n" for i in range(30)}
    proc, _ = _tree(tmp_path, {"/etc/ssh/ssh_config": "Include 0.conf\nInclude ssh_config\n", **chain})
    found, reader = _read(proc, _exec("box"), depth=16, files=64)
    assert len(found) == 16 and reader.skipped["include depth"] == 1 and reader.skipped["include loop"] == 1


def test_include_fan_out_is_bounded_by_files(tmp_path: Path) -> None:
    """Files that each include the next twice stop at the file limit, not at 2**15 reads."""
    chain = {f"/etc/ssh/{i}.conf": f"Include {i + 1}.conf {i + 1}.conf\nLocalForward {i} h:{i}\n" for i in range(15)}
    proc, _ = _tree(tmp_path, {"/etc/ssh/ssh_config": "Include 0.conf\n", **chain})
    found, reader = _read(proc, _exec("box"), files=8)
    assert len(found) == 6  # 8 opened: ~/.ssh/config (missing), ssh_config, 0.conf to 5.conf
    assert reader.skipped["too many files"] > 0


def test_bad_files_are_counted_and_skipped(tmp_path: Path) -> None:
    """Huge, binary, missing and looping-link files are skipped by reason; the good ones are read."""
    proc, root = _tree(
        tmp_path,
        {
            "/home/alice/.ssh/config": "Include big bin missing loop\nRemoteForward 1 h:1\n",
            "/home/alice/.ssh/big": "RemoteForward 2 h:2\n" + "#" * 300_000,
            "/home/alice/.ssh/bin": b"RemoteForward 3 h:3\n\0\x7fELF",
            "/etc/ssh/ssh_config": "RemoteForward 4 h:4\n\xff\xfe not utf-8 but text\n",
        },
    )
    os.symlink("loop", root / "home/alice/.ssh/loop")
    found, reader = _read(proc, _exec("box"))
    assert [line for line, _o in found] == ["RemoteForward 1 h:1", "RemoteForward 4 h:4"]
    assert reader.skipped == {"too large": 1, "binary": 1, "missing": 1, "symlink loop": 1}


def test_escapes_from_the_root_are_refused(tmp_path: Path) -> None:
    """Include ../../ and a config symlinked out of the root read nothing outside it."""
    proc, root = _tree(tmp_path, {"/etc/ssh/ssh_config": "Include ../../../../../outside.conf\n"})
    (tmp_path / "outside.conf").write_text("RemoteForward 6 h:6\n")
    (root / "home/alice/.ssh").mkdir(parents=True)
    os.symlink("../../../../outside.conf", root / "home/alice/.ssh/config")
    found, reader = _read(proc, _exec("box"))
    assert found == [] and reader.skipped["escapes root"] == 2


def test_unreadable_and_odd_lines(tmp_path: Path) -> None:
    """A bad line is counted and the rest read; a process gone (no root) is counted; a directory is skipped."""
    proc, root = _tree(tmp_path, {"/etc/ssh/ssh_config": 'RemoteForward\nProxyCommand "unterminated\nTunnel yes\n'})
    (root / "home/alice/.ssh/config").mkdir(parents=True)
    found, reader = _read(proc, _exec("box"))
    assert found == [("Tunnel yes", "/etc/ssh/ssh_config:3")]
    assert reader.skipped == {"not a file": 1, "bad line": 2}
    gone = dataclasses.replace(_exec("box"), tgid=1)
    assert _read(proc, gone)[1].skipped == {"no root": 1}


def test_time_and_line_limits(tmp_path: Path) -> None:
    """Past the line limit lines are dropped and counted; past the deadline no more files are opened."""
    many = "".join(f"LocalForward {i} h:{i}\n" for i in range(300))
    proc, _ = _tree(tmp_path, {"/etc/ssh/ssh_config": many})
    found, reader = _read(proc, _exec("box"), lines=256)
    assert len(found) == 256 and reader.skipped["too many lines"] == 44
    ticks = iter([0.0, 10.0, 10.0, 10.0])
    late = SshConfigReader(proc, Limits(seconds=1.0), clock=lambda: next(ticks))
    assert late(_exec("box")).ssh_config == () and late.skipped["time"] == 2


def test_other_execs_are_untouched(tmp_path: Path) -> None:
    """Not an OpenSSH client (or no destination): the same event back, nothing opened."""
    reader = SshConfigReader(str(tmp_path / "nowhere"))
    for event in (exec_event(["bash"], exe="/usr/bin/bash"), _exec(), exec_event(["dbclient", "h"])):
        assert reader(event) is event
    assert not reader.skipped


def test_a_nul_in_a_passwd_home_is_counted_not_raised(tmp_path: Path) -> None:
    """A home the OS cannot open (an embedded NUL) skips that file with a count; the next file is still read."""
    proc, root = _tree(tmp_path, {"/etc/ssh/ssh_config": "RemoteForward 1 h:1\n"})
    (root / "home").mkdir()
    (root / "etc/passwd").write_bytes(b"alice:x:1000:1000::/home/a\0b:/bin/sh\n")
    found, reader = _read(proc, _exec("box"))
    assert found == [("RemoteForward 1 h:1", "/etc/ssh/ssh_config:1")] and reader.skipped == {"unreadable": 1}


def test_autossh_keeps_its_autossh_variables_and_nothing_else(tmp_path: Path) -> None:
    """autossh's exec records its AUTOSSH_* variables (bounded); no other variable, and no other client's."""
    secret = b"AWS_SECRET_ACCESS_KEY=hunter2\0"
    env = secret + b"AUTOSSH_PORT=20000\0AUTOSSH_GATETIME=0\0" + b"".join(b"AUTOSSH_X%d=1\0" % i for i in range(40))
    proc, _ = _tree(tmp_path, {}, environ=env + b"AUTOSSH_LONG=" + b"x" * 5000 + b"\0")
    reader = SshConfigReader(proc)
    got = reader(exec_event(["autossh", "-N", "box"], exe="/usr/lib/autossh/autossh", pid=PID)).environ
    assert got[:2] == ("AUTOSSH_PORT=20000", "AUTOSSH_GATETIME=0") and len(got) == 32
    assert not any("hunter2" in item for item in got)
    assert reader(_exec("box")).environ == ()
