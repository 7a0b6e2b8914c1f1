# SPDX-License-Identifier: Apache-2.0
"""cgroup paths from real runtimes, kubelets and Slurm; id resolution on a real directory tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collector.enrich.cgroups import CgroupResolver, container_id, find_cgroup2_mount, pod_uid, slurm_job

CID = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809"
UID = "8c4e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"

PATHS = [
    # (path, container id, pod uid, slurm job)
    ("/", None, None, None),
    ("/user.slice/user-1000.slice/session-3.scope", None, None, None),
    (f"/system.slice/docker-{CID}.scope", CID, None, None),
    (f"/docker/{CID}", CID, None, None),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID.replace('-', '_')}.slice/"
     f"cri-containerd-{CID}.scope", CID, UID, None),
    (f"/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/crio-{CID}.scope", CID, UID, None),
    (f"/kubepods/besteffort/pod{UID}/{CID}", CID, UID, None),
    (f"/kubepods/pod{UID}/{CID}", CID, UID, None),
    (f"/system.slice/containerd.service/kubepods-burstable-pod{UID.replace('-', '_')}.slice:cri-containerd:{CID}",
     CID, UID, None),
    (f"/machine.slice/libpod-{CID}.scope/container", CID, None, None),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID.replace('-', '_')}.slice", None, UID, None),
    ("/system.slice/slurmstepd.scope/job_1392969/step_0/user/task_0", None, None, "1392969"),
    ("/system.slice/node7_slurmstepd.scope/job_280678/step_interactive/user/task_special", None, None, "280678"),
    ("/slurm/uid_2101171/job_280678/step_batch/task_0", None, None, "280678"),
    (f"/system.slice/docker-{CID[:-1]}.scope", None, None, None),  # 63 hex: not an id
]


@pytest.mark.parametrize(("path", "cid", "uid", "job"), PATHS, ids=[p[0][-50:] for p in PATHS])
def test_path_parsing(path: str, cid: str | None, uid: str | None, job: str | None) -> None:
    """Container id, pod UID and Slurm job come out of each layout, or None."""
    assert (container_id(path), pod_uid(path), slurm_job(path)) == (cid, uid, job)


def test_resolver_maps_inodes_to_paths(tmp_path: Path) -> None:
    """An id is the directory's inode; unknown ids trigger one rescan, then wait for the interval."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    now = [0.0]
    resolver = CgroupResolver(tmp_path, clock=lambda: now[0])
    ino = os.stat(tmp_path / "a" / "b").st_ino
    assert resolver.path(ino) == "/a/b"
    (tmp_path / "c").mkdir()
    late = os.stat(tmp_path / "c").st_ino
    assert resolver.path(late) is None  # within the rescan interval: no new walk
    now[0] = 5.0
    assert resolver.path(late) == "/c"
    assert resolver.id_of("/a/b") == ino
    assert resolver.id_of("/missing") == 0


def test_no_mount() -> None:
    """Without a cgroup v2 mount nothing resolves, and nothing raises."""
    resolver = CgroupResolver(None)
    assert resolver.path(1) is None and resolver.id_of("/") == 0


def test_find_mount(tmp_path: Path) -> None:
    """The cgroup2 line of mountinfo wins, hybrid hosts included."""
    info = tmp_path / "mountinfo"
    info.write_text(
        "35 24 0:30 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755\n"
        "36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate\n"
    )
    assert find_cgroup2_mount(info) == Path("/sys/fs/cgroup/unified")
    info.write_text("22 1 0:21 / /proc rw - proc proc rw\n")
    assert find_cgroup2_mount(info) is None
