# SPDX-License-Identifier: Apache-2.0
"""The live annotator on a fabricated /proc: backfilled lineage, resolved exe, cgroup paths once."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from collector.enrich.annotate import LiveAnnotator
from collector.enrich.cgroups import CgroupResolver
from collector.enrich.process import ProcessTable
from probes.events import CgroupEvent, ExecEvent, GpuOpenEvent, ProcEvent
from tests.factories import common, exec_event, payload_event


def _proc(root: Path, pid: int, ppid: int, *, comm: str, args: list[str], exe: str, cgroup: str) -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    (d / "stat").write_text(f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1")
    (d / "status").write_text("Name:\tx\nUid:\t1000\t1000\t1000\t1000\n")
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in args) + b"\0")
    (d / "cgroup").write_text(f"0::{cgroup}\n")
    os.symlink(exe, d / "exe")


def _setup(tmp_path: Path) -> tuple[LiveAnnotator, ProcessTable, int]:
    proc, mount = tmp_path / "proc", tmp_path / "cgroup"
    (mount / "job").mkdir(parents=True)
    _proc(proc, 1, 0, comm="init", args=["/sbin/init"], exe="/sbin/init", cgroup="/")
    _proc(proc, 10, 1, comm="bash", args=["bash"], exe="/usr/bin/bash", cgroup="/job")
    _proc(proc, 20, 10, comm="miner", args=["./miner", "-o", "pool:3333"], exe="/tmp/miner", cgroup="/job")
    table = ProcessTable()
    table.apply(ProcEvent(0, 1, 1, 0, 0, 0, "init", "/sbin/init", ("/sbin/init",)))
    job_id = os.stat(mount / "job").st_ino
    return LiveAnnotator(table, CgroupResolver(mount), proc), table, job_id


def test_unknown_process_is_backfilled_parents_first(tmp_path: Path) -> None:
    """A payload from a process never seen brings its unknown ancestors from /proc, parents first, with cgroups."""
    annotate, _table, job_id = _setup(tmp_path)
    event = payload_event(b"x", pid=20, ppid=10, cgroup_id=job_id)
    out = annotate(event)
    kinds = [(type(e).__name__, getattr(e, "pid", None)) for e in out]
    assert kinds == [("CgroupEvent", 0), ("ProcEvent", 10), ("ProcEvent", 20), ("PayloadEvent", 20)]
    assert isinstance(out[0], CgroupEvent) and out[0].path == "/job"
    assert isinstance(out[2], ProcEvent) and out[2].exe == "/tmp/miner"
    assert out[2].args == ("./miner", "-o", "pool:3333")
    assert out[-1] is event


def test_cgroup_path_is_emitted_once(tmp_path: Path) -> None:
    """The second event in the same cgroup adds no cgroup event."""
    annotate, table, job_id = _setup(tmp_path)
    for e in annotate(payload_event(b"x", pid=20, ppid=10, cgroup_id=job_id)):
        table.apply(e)
    second = annotate(payload_event(b"y", pid=20, ppid=10, cgroup_id=job_id))
    assert [type(e).__name__ for e in second] == ["PayloadEvent"]


def test_exec_gets_its_exe_and_unknown_parent(tmp_path: Path) -> None:
    """An exec is given /proc/<pid>/exe, and an unknown parent is backfilled."""
    annotate, _table, _ = _setup(tmp_path)
    out = annotate(exec_event(["./miner"], pid=20, ppid=10, cgroup_id=0))
    assert [type(e).__name__ for e in out] == ["CgroupEvent", "ProcEvent", "ExecEvent"]  # the parent is in /job
    exec_ = out[-1]
    assert isinstance(exec_, ExecEvent) and exec_.exe == "/tmp/miner"


def test_vanished_process_is_not_invented(tmp_path: Path) -> None:
    """A pid gone from /proc adds nothing; the event itself still passes."""
    annotate, _table, _ = _setup(tmp_path)
    event = payload_event(b"x", pid=999, ppid=998, cgroup_id=0)
    assert annotate(event) == [event]


def test_ssh_exec_carries_its_config_lines(tmp_path: Path) -> None:
    """An ssh exec is given the config lines it will apply, read from its own root; other execs are not."""
    annotate, _table, _ = _setup(tmp_path)
    root = tmp_path / "rootfs"
    (root / "etc" / "ssh").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("u:x:1000:1000::/home/u:/bin/sh\n")
    (root / "etc" / "ssh" / "ssh_config").write_text("Host *\n  RemoteForward 9 h:9\n")
    _proc(tmp_path / "proc", 30, 10, comm="ssh", args=["ssh", "box"], exe="/usr/bin/ssh", cgroup="/")
    os.symlink(root, tmp_path / "proc" / "30" / "root")
    (ssh,) = [e for e in annotate(exec_event(["ssh", "box"], pid=30, ppid=10, cgroup_id=0)) if isinstance(e, ExecEvent)]
    assert ssh.ssh_config == ("RemoteForward 9 h:9",) and ssh.ssh_config_from == ("/etc/ssh/ssh_config:2",)
    assert annotate.ssh_config.skipped == {"missing": 1}  # /home/u/.ssh/config
    (miner,) = [e for e in annotate(exec_event(["./miner"], pid=20, ppid=10, cgroup_id=0)) if isinstance(e, ExecEvent)]
    assert miner.ssh_config == ()


def test_a_process_gone_before_it_was_read_brings_its_parent(tmp_path: Path) -> None:
    """An event from a pid /proc no longer has backfills the parent its record names."""
    annotate, _table, job_id = _setup(tmp_path)
    out = annotate(payload_event(b"x", pid=30, ppid=20, cgroup_id=job_id))
    assert [(type(e).__name__, e.pid) for e in out if not isinstance(e, CgroupEvent)] == [
        ("ProcEvent", 10),
        ("ProcEvent", 20),
        ("PayloadEvent", 30),
    ]


def test_a_failed_open_is_a_gpu_open_only_when_the_path_is_a_gpu_device(tmp_path: Path) -> None:
    """An ENXIO open of another path is kept, with the device number, when the file there is a char device of
    a GPU major (here /dev/null's major, 1, configured as one), and dropped otherwise."""
    proc = tmp_path / "proc"
    (proc / "30").mkdir(parents=True)
    os.symlink("/", proc / "30" / "root")
    os.symlink("/dev", proc / "30" / "cwd")
    table = ProcessTable()
    annotate = LiveAnnotator(table, CgroupResolver(tmp_path), proc, gpu_majors=(1,))

    def failed(path: str) -> GpuOpenEvent:
        return GpuOpenEvent(**common(pid=30, cgroup_id=0), how="failed", path=path, ret_raw=-6, major=0, minor=0)

    for path in ("/dev/null", "null"):  # absolute: in the process's root; relative: in its cwd
        (found,) = [e for e in annotate(failed(path)) if isinstance(e, GpuOpenEvent)]
        assert (found.major, found.minor) == (1, 3)
    for path in ("/dev/zero-not-there", "/etc/hostname", "/dev"):
        assert [e for e in annotate(failed(path)) if isinstance(e, GpuOpenEvent)] == []
    assert [e for e in LiveAnnotator(table, CgroupResolver(tmp_path), proc)(failed("/dev/null"))
            if isinstance(e, GpuOpenEvent)] == []  # fmt: skip
    gone = dataclasses.replace(failed("/dev/null"), pid=31, tgid=31, ppid=30)  # exited: its parent's root is read
    (found,) = [e for e in annotate(gone) if isinstance(e, GpuOpenEvent)]
    assert (found.major, found.minor) == (1, 3)
    orphan = dataclasses.replace(gone, ppid=32)  # nobody left to look through: kept, device unknown
    assert [(e.major, e.minor) for e in annotate(orphan) if isinstance(e, GpuOpenEvent)] == [(0, 0)]
