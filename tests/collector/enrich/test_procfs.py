# SPDX-License-Identifier: Apache-2.0
"""Parsing /proc files, hostile process names included, and a snapshot of a live process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from collector.enrich import procfs
from collector.enrich.cgroups import CgroupResolver, find_cgroup2_mount


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"4242 (xmrig) S 1 4242 4242 0 -1 4194560 0", ("xmrig", 1)),
        (b"4242 (a b) c) R 77 4242", ("a b) c", 77)),  # comm with spaces and a ')'
        (b"4242 ((sd-pam)) S 900 4242", ("(sd-pam)", 900)),
        (b"4242 (\xff\n) S 5 1", ("\\xff\n", 5)),
        (b"garbage", None),
        (b"4242 (x) S", None),
    ],
)
def test_parse_stat(raw: bytes, expected: tuple[str, int] | None) -> None:
    """comm is taken up to the last ')' and ppid after it; junk gives None."""
    assert procfs.parse_stat(raw) == expected


def test_parse_cmdline_and_uid_and_cgroup() -> None:
    """cmdline splits on NUL; Uid takes the real uid; the cgroup v2 line is found among v1 lines."""
    assert procfs.parse_cmdline(b"ssh\0-R\08080:l:80\0host\0") == ("ssh", "-R", "8080:l:80", "host")
    assert procfs.parse_cmdline(b"") == ()
    assert procfs.parse_uid(b"Name:\tx\nUid:\t1000\t0\t0\t0\n") == 1000
    assert procfs.parse_cgroup_v2(b"4:memory:/x\n0::/system.slice/a.service\n") == "/system.slice/a.service"


def test_snapshot_of_a_live_child() -> None:
    """A snapshot reads the real argv, parent, uid and exe of a running process."""
    code = "import time; print('up', flush=True); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code, "marker-arg"], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        child.stdout.readline()  # past its exec: before, /proc shows the forked test process's argv, or none
        snap = procfs.snapshot(child.pid, CgroupResolver(find_cgroup2_mount()))
        assert snap is not None
        assert snap.args[-1] == "marker-arg" and snap.ppid == os.getpid() and snap.uid == os.getuid()
        assert snap.exe == os.path.realpath(sys.executable)
    finally:
        child.kill()
        child.communicate()  # reaps it and closes its pipe
    assert procfs.snapshot(child.pid, CgroupResolver(None)) is None
